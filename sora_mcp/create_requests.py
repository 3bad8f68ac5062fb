"""The requests that create, and bill, a task: strict models of what we send, checked before anything is sent.

Each request knows its task ``kind``, its ``tool`` and its ``endpoint``, and builds its gateway body with
``to_payload()``; nothing downstream (task service, journal, client) dispatches on the request's type. Every rule
the gateway documents is checked here (upstream-api.md §4, §7), with messages that name the argument and the
allowed values.
"""

import base64
import binascii
import re
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

from sora_mcp.models import AspectRatio, Duration, Style, TaskKind, VideoModel, check_task_id, invalid

DURATIONS: dict[str, tuple[int, ...]] = {"sora-2": (10, 15), "sora-2-pro": (10, 15, 25)}
REMIX_DURATIONS: dict[str, tuple[int, ...]] = {"sora-2": (10, 15), "sora-2-pro": (15, 25)}
"""A remix has its own rule for sora-2-pro (15 s HD or 25 s), upstream-api.md §7."""
CREATE_PATH = "/v1/videos/generations"
REMIX_PATH = "/v1/videos/{}/remix"
MAX_PROMPT_CHARS = 10_000
MAX_IMAGES = 10
_TIMESTAMPS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$")
_DATA_URI_RE = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,(.+)$", re.DOTALL)


def _check_http_url(value: str) -> str:
    value = value.strip()
    if not re.match(r"^https?://[^\s/]+\S*$", value):
        raise invalid("must be a public http:// or https:// URL")
    return value


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
        return _check_prompt_text(value, "must describe the video; it is empty")

    @field_validator("images")
    @classmethod
    def _check_images(cls, value: list[str] | None) -> list[str] | None:
        if not value:
            return None
        if len(value) > MAX_IMAGES:
            raise invalid(f"has {len(value)} images; give at most {MAX_IMAGES}")
        return [_check_image(i, image) for i, image in enumerate(value)]

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
        return _check_prompt_text(value, "must say how to change the video; it is empty")

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


def _check_prompt_text(value: str, empty: str) -> str:
    value = value.strip()
    if not value:
        raise invalid(empty)
    if len(value) > MAX_PROMPT_CHARS:
        raise invalid(f"is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}")
    return value


def _check_duration(value: int | None, model: Any, rules: dict[str, tuple[int, ...]], what: str) -> int | None:
    allowed = rules.get(model) if isinstance(model, str) else None
    if value is None or allowed is None or value in allowed:
        return value
    others = [name for name, durations in rules.items() if value in durations and name != model]
    extra = f" ({value} s needs model='{others[0]}')" if others else ""
    raise invalid(f"{model} allows {_or(allowed)} seconds{what}{extra}")


def _check_image(index: int, image: str) -> str:
    image = image.strip()
    if image.startswith("data:"):
        match = _DATA_URI_RE.match(image)
        if match is None:
            raise invalid(f"item {index} must be an http(s) URL or a data:image/<type>;base64,<data> URI")
        try:
            base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"item {index} is a data: URI whose base64 payload is not valid base64") from None
        return image
    if not re.match(r"^https?://[^\s/]+\S*$", image):
        raise invalid(f"item {index} must be an http(s) URL or a data:image/<type>;base64,<data> URI")
    return image


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
        return None if value is None else _check_http_url(value)

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
