"""The requests that create, and bill, a task: strict models of what we send, checked before anything is sent.

Each request knows its task ``kind``, its ``tool`` and its ``endpoint``, and builds its gateway body with
``to_payload()``; nothing downstream (task service, journal, client) dispatches on the request's type. Every rule
the gateway documents is checked here (upstream-api.md §4, §7), with messages that name the argument and the
allowed values.
"""

import re
import unicodedata
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    import ipaddress

from sora_mcp.images import DEFAULT_MAX_IMAGE_BYTES, ImageProblem, check_data_uri
from sora_mcp.local_files import is_local
from sora_mcp.models import AspectRatio, Duration, Style, TaskKind, VideoModel, check_task_id, invalid

DURATIONS: dict[str, tuple[int, ...]] = {"sora-2": (10, 15), "sora-2-pro": (10, 15, 25)}
REMIX_DURATIONS: dict[str, tuple[int, ...]] = {"sora-2": (10, 15), "sora-2-pro": (15, 25)}
"""A remix has its own rule for sora-2-pro (15 s HD or 25 s), upstream-api.md §7."""
CREATE_PATH = "/v1/videos/generations"
REMIX_PATH = "/v1/videos/{}/remix"
MAX_PROMPT_CHARS = 10_000
MAX_IMAGES = 10
_TIMESTAMPS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$", re.ASCII)
"""ASCII digits only: '１,３' or '١,٣' would be forwarded as they are, and the gateway reads them as nothing."""
_HTTP_URL_RE = re.compile(r"^https?://[^\s/]+\S*$", re.IGNORECASE)
_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".lan", ".home.arpa")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn"})
"""Characters that show nothing on their own: controls, format (zero-width), spaces, combining marks."""
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def _check_public_url(value: str) -> str:
    """An http(s) URL the gateway can fetch: not loopback, private-range, link-local or a local-only name."""
    value = value.strip()
    if not _HTTP_URL_RE.match(value):
        raise invalid("must be a public http:// or https:// URL")
    try:
        host = (urlsplit(value).hostname or "").rstrip(".").lower()
    except ValueError:
        raise invalid("must be a public http:// or https:// URL (this one cannot be parsed)") from None
    address = _ip_address(host)
    if address is not None and not address.is_global:
        raise invalid(
            f"points at {host}, a loopback, private-range or link-local address the gateway cannot reach; "
            "give a public URL (upload the file somewhere public first)"
        )
    if host == "localhost" or host.endswith(_LOCAL_NAMES):
        raise invalid(
            f"points at {host}, a name only this network knows; the gateway fetches the URL itself, so give a "
            "public URL"
        )
    return value


def _ip_address(host: str) -> "ipaddress.IPv4Address | ipaddress.IPv6Address | None":
    """``host`` as an IP address, including the shorthand forms fetchers accept (``127.1``, ``2130706433``)."""
    import ipaddress  # on first use (a create with a URL): start-up does not need it
    import socket

    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(part.isascii() and part.isalnum() for part in host.split(".")) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _max_image_bytes(info: ValidationInfo) -> int:
    context = info.context if isinstance(info.context, dict) else {}
    value = context.get("max_image_bytes", DEFAULT_MAX_IMAGE_BYTES)
    return value if isinstance(value, int) else DEFAULT_MAX_IMAGE_BYTES


class _Request(BaseModel):
    """A request that creates, and bills, a task. Each kind knows its task kind, its tool and its endpoint, so
    that nothing downstream (task service, journal, client) dispatches on the request's type."""

    # Built on first use: start-up (initialize, tools/list) never needs the request models.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: ClassVar[TaskKind]
    tool: ClassVar[str]
    """The MCP tool that sends it."""

    @property
    def endpoint(self) -> str:
        """The gateway path the create is POSTed to."""
        return CREATE_PATH

    @property
    def prompt_text(self) -> str | None:
        """The prompt, for the journal and ``list_tasks`` (a character request has none)."""
        return None

    def path_arguments(self) -> dict[str, Any]:
        """Arguments that travel in the URL path, not the body; part of the request's identity all the same."""
        return {}

    def to_payload(self) -> dict[str, Any]:
        """The JSON body the gateway documents; unset optional fields are left out."""
        raise NotImplementedError


class VideoRequest(_Request):
    """A text-to-video or image-to-video request (``POST /v1/videos/generations``)."""

    kind: ClassVar[TaskKind] = "video"
    tool: ClassVar[str] = "create_video"

    prompt: str
    model: VideoModel = "sora-2"
    duration: Duration | None = None
    size: AspectRatio | None = None
    images: list[str] | None = None
    style: Style | None = None
    watermark: bool | None = None
    private: bool | None = None
    storyboard: bool | None = None
    thumbnail: bool | None = None

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        return _check_prompt_text(value, "must describe the video")

    @field_validator("images")
    @classmethod
    def _check_images(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if not value:
            return None
        if len(value) > MAX_IMAGES:
            raise invalid(f"has {len(value)} images; give at most {MAX_IMAGES}")
        max_bytes = _max_image_bytes(info)
        return [_check_image(i, image, max_bytes) for i, image in enumerate(value)]

    @field_validator("duration")
    @classmethod
    def _check_duration_for_model(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _check_duration(value, info.data.get("model"), DURATIONS, "")

    @property
    def prompt_text(self) -> str | None:
        return self.prompt

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "prompt": self.prompt}
        for key in ("duration", "size", "images"):
            value = getattr(self, key)
            if value is not None:
                payload[key] = value
        metadata = {
            key: getattr(self, key)
            for key in ("style", "watermark", "private", "storyboard", "thumbnail")
            if getattr(self, key) is not None
        }
        if metadata:
            payload["metadata"] = metadata
        return payload


class RemixRequest(_Request):
    """A remix of a completed video (``POST /v1/videos/{source_task_id}/remix``): a new video task from an old one.

    ``source_task_id`` goes into the path, not the body, but belongs to the request: the same remix of another
    video is another request (the journal's duplicate check relies on that).
    """

    kind: ClassVar[TaskKind] = "video"
    tool: ClassVar[str] = "remix_video"

    source_task_id: str
    prompt: str
    model: VideoModel = "sora-2"
    duration: Duration | None = None
    size: AspectRatio | None = None

    @field_validator("source_task_id")
    @classmethod
    def _check_source(cls, value: str) -> str:
        return check_task_id(value)

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        return _check_prompt_text(value, "must say how to change the video")

    @field_validator("duration")
    @classmethod
    def _check_duration_for_model(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _check_duration(value, info.data.get("model"), REMIX_DURATIONS, " for a remix")

    @property
    def endpoint(self) -> str:
        return REMIX_PATH.format(self.source_task_id)

    @property
    def prompt_text(self) -> str | None:
        return self.prompt

    def path_arguments(self) -> dict[str, Any]:
        return {"remix_of": self.source_task_id}

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "prompt": self.prompt}
        if self.size is not None:
            payload["size"] = self.size
        if self.duration is not None:
            payload["duration"] = self.duration
        return payload


def _check_prompt_text(value: str, purpose: str) -> str:
    value = value.strip()
    if all(unicodedata.category(c) in _INVISIBLE_CATEGORIES or c.isspace() for c in value):
        shown = "it is empty" if not value else "it shows no text (only spaces, zero-width or control characters)"
        raise invalid(f"{purpose}; {shown}")
    for position, character in enumerate(value):
        if unicodedata.category(character) == "Cc" and character not in _ALLOWED_CONTROLS:
            raise invalid(f"contains the control character U+{ord(character):04X} at position {position}; remove it")
    if len(value) > MAX_PROMPT_CHARS:
        raise invalid(f"is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}")
    return value


def _check_duration(value: int | None, model: Any, rules: dict[str, tuple[int, ...]], what: str) -> int | None:
    problem = duration_problem(value, model, rules, what)
    if problem is not None:
        raise invalid(problem)
    return value


def duration_problem(value: Any, model: Any, rules: dict[str, tuple[int, ...]], what: str = "") -> str | None:
    """What is wrong with ``value`` seconds for ``model`` under ``rules`` (None when nothing is, or when the
    model itself is wrong: that has its own message)."""
    allowed = rules.get(model) if isinstance(model, str) else None
    if value is None or allowed is None or value in allowed:
        return None
    others = [name for name, durations in rules.items() if value in durations and name != model]
    extra = f" ({value} s needs model='{others[0]}')" if others else ""
    return f"{model} allows {_or(allowed)} seconds{what}{extra}"


def _check_image(index: int, image: str, max_bytes: int) -> str:
    image = image.strip()
    try:
        if image[:5].lower() == "data:":
            return check_data_uri(image, max_bytes=max_bytes)
    except ImageProblem as exc:
        raise invalid(f"item {index} {exc}") from None
    if is_local(image):  # the tool layer reads these first (local_files.py): never a path in a request
        raise invalid(f"item {index} is a local file; create_video reads it into a data: URI before the request")
    if not _HTTP_URL_RE.match(image):
        raise invalid(
            f"item {index} must be an http(s) URL, a data:image/<type>;base64,<data> URI or a local file "
            "(an absolute path, ~/... or file:///...)"
        )
    try:
        return _check_public_url(image)
    except PydanticCustomError as exc:
        raise invalid(f"item {index} {exc.message()}") from None


def _or(values: tuple[int, ...]) -> str:
    words = [str(v) for v in values]
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


class CharacterRequest(_Request):
    """A character cut from 1-3 s of a video (same endpoint, ``url`` or ``from_task`` plus ``timestamps``)."""

    kind: ClassVar[TaskKind] = "character"
    tool: ClassVar[str] = "create_character"

    timestamps: str
    url: str | None = None
    from_task: str | None = None
    model: VideoModel = "sora-2"

    @field_validator("timestamps")
    @classmethod
    def _check_timestamps(cls, value: str) -> str:
        match = _TIMESTAMPS_RE.match(value)
        if match is None:
            raise invalid("must be 'start,end' in seconds, for example '1,3'")
        start, end = float(match.group(1)), float(match.group(2))
        if end <= start:
            raise invalid(f"end ({match.group(2)}) must be after start ({match.group(1)})")
        span = end - start
        if not 1 <= span <= 3:
            raise invalid(f"span is {span:g} s; it must be between 1 and 3 seconds")
        return f"{match.group(1)},{match.group(2)}"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_public_url(value)

    @field_validator("from_task")
    @classmethod
    def _check_from_task(cls, value: str | None) -> str | None:
        return None if value is None else check_task_id(value)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        if self.url is not None and self.from_task is not None:
            raise invalid("url, from_task: give exactly one of them, not both")
        if self.url is None and self.from_task is None:
            raise invalid(
                "url, from_task: give exactly one: url (a video URL) or from_task (the task_id of a video made earlier)"
            )
        return self

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "timestamps": self.timestamps}
        if self.url is not None:
            payload["url"] = self.url
        else:
            payload["from_task"] = self.from_task
        return payload


CreateRequest = VideoRequest | CharacterRequest | RemixRequest
"""Every request that creates, and bills, a task."""


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the argument, e.g. ``duration: sora-2 allows 10 or 15 seconds``."""
    lines = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        lines.append(f"{field}: {item['msg']}" if field else item["msg"])
    return "; ".join(lines)
