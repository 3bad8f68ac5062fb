"""Request models (strict: what we send), the normalized ``Task`` (what tools return) and the parser between them.

The gateway documents two response dialects for the same task (upstream-api.md §5, §6, §12):

* ToAPIs style: ``object: "generation.task"``, ``status: queued``, media under ``result.data[].url``,
  characters under ``result.data.characters[]``, ``expires_at``;
* dashlyai style: ``object: "video.generation"``, ``status: submitted``, top-level ``url`` / ``thumbnail``,
  ``estimated_time``.

:func:`parse_task` accepts both (and the near variants other gateways of the family use) and never fails on an
unexpected value: an unknown status is reported as ``"unknown"`` with the gateway's own word kept in
``upstream_status``.
"""

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

# --------------------------------------------------------------------------------------------- vocabulary

VideoModel = Literal["sora-2", "sora-2-pro"]
Duration = Literal[10, 15, 25]
AspectRatio = Literal["16:9", "9:16", "1:1"]
Style = Literal["comic", "news", "anime", "selfie", "nostalgic", "thanksgiving"]
TaskKind = Literal["video", "character"]
TaskStatus = Literal["queued", "in_progress", "completed", "failed", "unknown"]

DURATIONS: dict[str, tuple[int, ...]] = {"sora-2": (10, 15), "sora-2-pro": (10, 15, 25)}
REMIX_DURATIONS: dict[str, tuple[int, ...]] = {"sora-2": (10, 15), "sora-2-pro": (15, 25)}
"""A remix has its own rule for sora-2-pro (15 s HD or 25 s), upstream-api.md §7."""
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed"})

TASK_ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,199}$"
"""Opaque gateway ids (``task_01K...``, ``video_<uuid>``): no slashes, spaces or dot-only names."""
_TASK_ID_RE = re.compile(TASK_ID_PATTERN)
_TIMESTAMPS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$")
_DATA_URI_RE = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,(.+)$", re.DOTALL)
MAX_PROMPT_CHARS = 10_000
MAX_IMAGES = 10

_STATUS_WORDS: dict[str, TaskStatus] = {
    **dict.fromkeys(("queued", "submitted", "pending", "waiting", "created", "not_start", "not_started"), "queued"),
    **dict.fromkeys(("in_progress", "in-progress", "processing", "running", "generating", "started"), "in_progress"),
    **dict.fromkeys(("completed", "complete", "succeeded", "success", "succeed", "done", "finished"), "completed"),
    **dict.fromkeys(("failed", "failure", "error", "cancelled", "canceled", "expired", "rejected"), "failed"),
}


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_argument", message)


def is_safe_task_id(value: str) -> bool:
    """Whether ``value`` can be put into a gateway URL path as a task id."""
    return bool(_TASK_ID_RE.match(value))


def check_task_id(value: str) -> str:
    """Validator for task ids given by the caller (``get_task``, ``from_task``)."""
    value = value.strip()
    if not is_safe_task_id(value):
        raise _invalid(
            "must be a task id as returned by create_video or create_character (letters, digits, '_', '-', "
            "'.', ':'; no slashes or spaces)"
        )
    return value


def _check_http_url(value: str) -> str:
    value = value.strip()
    if not re.match(r"^https?://[^\s/]+\S*$", value):
        raise _invalid("must be a public http:// or https:// URL")
    return value


# --------------------------------------------------------------------------------------------- requests


class _Request(BaseModel):
    # Built on first use: start-up (initialize, tools/list) never needs the request models.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class VideoRequest(_Request):
    """A text-to-video or image-to-video request (``POST /v1/videos/generations``)."""

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
            raise _invalid(f"has {len(value)} images; give at most {MAX_IMAGES}")
        return [_check_image(i, image) for i, image in enumerate(value)]

    @field_validator("duration")
    @classmethod
    def _check_duration_for_model(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _check_duration(value, info.data.get("model"), DURATIONS, "")

    def to_payload(self) -> dict[str, Any]:
        """The JSON body the gateway documents; unset optional fields are left out."""
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

    def to_payload(self) -> dict[str, Any]:
        """The JSON body the gateway documents; unset optional fields are left out."""
        payload: dict[str, Any] = {"model": self.model, "prompt": self.prompt}
        if self.size is not None:
            payload["size"] = self.size
        if self.duration is not None:
            payload["duration"] = self.duration
        return payload


def _check_prompt_text(value: str, empty: str) -> str:
    value = value.strip()
    if not value:
        raise _invalid(empty)
    if len(value) > MAX_PROMPT_CHARS:
        raise _invalid(f"is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}")
    return value


def _check_duration(value: int | None, model: Any, rules: dict[str, tuple[int, ...]], what: str) -> int | None:
    allowed = rules.get(model) if isinstance(model, str) else None
    if value is None or allowed is None or value in allowed:
        return value
    others = [name for name, durations in rules.items() if value in durations and name != model]
    extra = f" ({value} s needs model='{others[0]}')" if others else ""
    raise _invalid(f"{model} allows {_or(allowed)} seconds{what}{extra}")


def _check_image(index: int, image: str) -> str:
    image = image.strip()
    if image.startswith("data:"):
        match = _DATA_URI_RE.match(image)
        if match is None:
            raise _invalid(f"item {index} must be an http(s) URL or a data:image/<type>;base64,<data> URI")
        try:
            base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"item {index} is a data: URI whose base64 payload is not valid base64") from None
        return image
    if not re.match(r"^https?://[^\s/]+\S*$", image):
        raise _invalid(f"item {index} must be an http(s) URL or a data:image/<type>;base64,<data> URI")
    return image


def _or(values: tuple[int, ...]) -> str:
    words = [str(v) for v in values]
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


class CharacterRequest(_Request):
    """A character cut from 1-3 s of a video (same endpoint, ``url`` or ``from_task`` plus ``timestamps``)."""

    timestamps: str
    url: str | None = None
    from_task: str | None = None
    model: VideoModel = "sora-2"

    @field_validator("timestamps")
    @classmethod
    def _check_timestamps(cls, value: str) -> str:
        match = _TIMESTAMPS_RE.match(value)
        if match is None:
            raise _invalid("must be 'start,end' in seconds, for example '1,3'")
        start, end = float(match.group(1)), float(match.group(2))
        if end <= start:
            raise _invalid(f"end ({match.group(2)}) must be after start ({match.group(1)})")
        span = end - start
        if not 1 <= span <= 3:
            raise _invalid(f"span is {span:g} s; it must be between 1 and 3 seconds")
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
            raise _invalid("url, from_task: give exactly one of them, not both")
        if self.url is None and self.from_task is None:
            raise _invalid(
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


# --------------------------------------------------------------------------------------------- tool results


class Character(BaseModel):
    """A reusable character; put ``mention`` (``@username``) into a create_video prompt to cast it."""

    id: str | None = Field(None, description="Character id (ch_...).")
    username: str | None = Field(None, description="Username the gateway assigned.")
    display_name: str | None = Field(None, description="Human-readable name.")
    profile_picture_url: str | None = Field(None, description="Avatar image URL.")
    mention: str | None = Field(None, description="@username: the text to use in a prompt.")


class TaskError(BaseModel):
    """Why a task failed, as the gateway put it."""

    code: str | None = Field(None, description="Gateway error code, e.g. generation_failed.")
    message: str = Field(description="Gateway error message, passed through.")


class Task(BaseModel):
    """Normalized state of a video or character task, whatever dialect the gateway answered in."""

    task_id: str | None = Field(
        None,
        description="Id to pass to get_task; absent only when outcome_unknown (the gateway's answer never arrived).",
    )
    kind: TaskKind = Field(description="video or character.")
    status: TaskStatus = Field(
        description="queued, in_progress, completed, failed; unknown for a word we do not know or an unknown outcome."
    )
    progress: Annotated[int, Field(ge=0, le=100, description="0-100.")] = 0
    model: str | None = Field(None, description="Model that renders the task.")
    created_at: int | None = Field(None, description="Unix seconds.")
    completed_at: int | None = Field(None, description="Unix seconds, once completed.")
    expires_at: int | None = Field(None, description="Unix seconds after which the result URLs stop working.")
    eta_seconds: int | None = Field(None, description="Gateway's estimate of seconds left, when it gives one.")
    video_url: str | None = Field(None, description="The finished video (completed video tasks).")
    thumbnail_url: str | None = Field(None, description="Thumbnail image, when the gateway provides one.")
    characters: list[Character] = Field(
        default_factory=list, description="Created characters (completed character tasks)."
    )
    error: TaskError | None = Field(None, description="Reason for a failed task.")
    upstream_status: str | None = Field(None, description="The gateway's own status word, e.g. submitted.")
    next_poll_seconds: int | None = Field(
        None,
        description="Suggested pause before the next get_task call while the task is not finished; null once it is.",
    )
    hint: str = Field("", description="What to do next, in one sentence.")
    sandbox: bool | None = Field(
        None, description="True when the task comes from the built-in sandbox (simulated, nothing billed)."
    )
    prompt: str | None = Field(None, description="The prompt of the request (list_tasks and task resources).")
    submitted_at: int | None = Field(
        None, description="Unix seconds when this server sent the create request (list_tasks and task resources)."
    )
    outcome_unknown: bool | None = Field(
        None,
        description="True when a create was sent but its answer never arrived: a task may exist, and be "
        "billed, without an id.",
    )
    reused: bool | None = Field(
        None,
        description="True when create returned this earlier identical request instead of creating (and "
        "billing) another.",
    )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class DownloadResult(BaseModel):
    """A video saved by download_video on the machine that runs this server."""

    task_id: str = Field(description="The video task the file belongs to.")
    path: str = Field(description="Absolute path of the saved video file.")
    bytes: int = Field(description="File size in bytes.")
    sha256: str = Field(description="SHA-256 of the file, hex.")
    content_type: str | None = Field(None, description="Media type the media host gave, e.g. video/mp4.")
    thumbnail_path: str | None = Field(
        None,
        description="Absolute path of the saved thumbnail, when include_thumbnail was set and the gateway has one.",
    )
    already_downloaded: bool = Field(
        False, description="True when the same file was already there: nothing was fetched or rewritten."
    )
    hint: str = Field("", description="What to tell the user, in one sentence.")


# --------------------------------------------------------------------------------------------- parsing


def _int_or_none(value: Any) -> int | None:
    """Unix seconds from an int, float, numeric string or ISO 8601 string; milliseconds are scaled down."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp())
    else:
        return None
    if number > 1e11:  # milliseconds
        number /= 1000
    return int(number)


def _progress(value: Any) -> int:
    if isinstance(value, str):
        value = value.strip().rstrip("%")
        try:
            value = float(value)
        except ValueError:
            return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if 0 < value <= 1 and isinstance(value, float):  # a fraction
        value *= 100
    return max(0, min(100, int(value)))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_media(result: Any) -> Mapping[str, Any]:
    """The first item of ``result.data`` (list or single object), or an empty mapping."""
    if not isinstance(result, Mapping):
        return {}
    data = result.get("data")
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return data[0]
    if isinstance(data, Mapping):
        return data
    return {}


def _characters(result: Any) -> list[Character]:
    if not isinstance(result, Mapping):
        return []
    data = result.get("data")
    items = data.get("characters") if isinstance(data, Mapping) else None
    if items is None:
        items = result.get("characters")
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        return []
    characters = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        username = _str_or_none(item.get("username"))
        characters.append(
            Character(
                id=_str_or_none(item.get("id")) or _str_or_none(item.get("character_id")),
                username=username,
                display_name=_str_or_none(item.get("display_name")),
                profile_picture_url=_str_or_none(item.get("profile_picture_url"))
                or _str_or_none(item.get("avatar_url")),
                mention=f"@{username.lstrip('@')}" if username else None,
            )
        )
    return characters


def _error(value: Any, status: TaskStatus) -> TaskError | None:
    if isinstance(value, Mapping):
        message = _str_or_none(value.get("message")) or _str_or_none(value.get("msg"))
        code = value.get("code")
        if message or code is not None:
            return TaskError(
                code=None if code is None else str(code), message=message or "no message given by the gateway"
            )
    elif isinstance(value, str) and value:
        return TaskError(message=value)
    if status == "failed":
        return TaskError(message="the gateway reported the task as failed without giving a reason")
    return None


def parse_task(raw: Mapping[str, Any], kind: TaskKind, *, now: float, task_id: str | None = None) -> Task:
    """Normalize one gateway task body. ``kind`` is what the endpoint implies; the body can override it."""
    upstream_status = str(raw.get("status") or "").strip()
    status: TaskStatus = _STATUS_WORDS.get(upstream_status.lower(), "unknown")
    result = raw.get("result")
    media = _first_media(result)
    characters = _characters(result)
    if (isinstance(result, Mapping) and result.get("type") == "character") or characters:
        kind = "character"
    progress = 100 if status == "completed" else _progress(raw.get("progress"))
    created_at = _int_or_none(raw.get("created_at"))
    estimated = _int_or_none(raw.get("estimated_time"))
    eta = None
    if estimated is not None and status not in TERMINAL_STATUSES:
        eta = max(0, int(created_at + estimated - now)) if created_at is not None else estimated
    fail_reason = raw.get("error") or raw.get("fail_reason")
    return Task(
        task_id=_str_or_none(raw.get("id")) or _str_or_none(raw.get("task_id")) or task_id,
        kind=kind,
        status=status,
        progress=progress,
        model=_str_or_none(raw.get("model")),
        created_at=created_at,
        completed_at=_int_or_none(raw.get("completed_at")),
        expires_at=_int_or_none(raw.get("expires_at")),
        eta_seconds=eta,
        video_url=_str_or_none(raw.get("url")) or _str_or_none(raw.get("video_url")) or _str_or_none(media.get("url")),
        thumbnail_url=_str_or_none(raw.get("thumbnail"))
        or _str_or_none(raw.get("thumbnail_url"))
        or _str_or_none(media.get("thumbnail_url"))
        or _str_or_none(media.get("thumbnail")),
        characters=characters,
        error=_error(fail_reason, status),
        upstream_status=upstream_status or None,
    )


# --------------------------------------------------------------------------------------------- guidance

QUEUED_POLL_SECONDS = 10
RUNNING_POLL_SECONDS = 15
MIN_POLL_SECONDS = 5
MAX_POLL_SECONDS = 30
SUGGESTED_WAIT_SECONDS = 50


def suggest_next_poll(task: Task, now: float) -> int | None:
    """Seconds an agent polling without ``wait_seconds`` should pause; None once the task is finished."""
    if task.is_terminal:
        return None
    remaining: float | None = task.eta_seconds
    if remaining is None and task.progress > 0 and task.created_at is not None:
        elapsed = now - task.created_at
        if elapsed > 0:
            remaining = elapsed * (100 - task.progress) / task.progress
    if remaining is None:
        return QUEUED_POLL_SECONDS if task.status == "queued" else RUNNING_POLL_SECONDS
    return int(max(MIN_POLL_SECONDS, min(MAX_POLL_SECONDS, remaining)))


def format_utc(timestamp: float) -> str:
    """``2026-01-15 08:48 UTC``: a time for hints, unambiguous in every time zone."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def describe_next_step(task: Task) -> str:
    """The one-sentence ``hint`` telling the calling model what to do next."""
    if task.status == "completed" and task.kind == "video":
        keep = f" The URL expires at {format_utc(task.expires_at)}" if task.expires_at else " Result URLs expire (24 h)"
        return (
            "The video is ready: give the user video_url." + keep + ", so if the user wants to keep the file, "
            f"call download_video with task_id='{task.task_id}' before then."
        )
    if task.status == "completed":
        mentions = " ".join(c.mention for c in task.characters if c.mention)
        if mentions:
            return f"The character is ready: write {mentions} in a create_video prompt to cast it."
        return "The character task completed but the gateway returned no username; check the task on the gateway."
    if task.status == "failed":
        reason = task.error.message if task.error else "no reason given"
        return (
            f"The task failed ({reason}). Nothing more will happen to it. A new attempt is a new paid task: "
            "ask the user before creating one, adjusting the prompt or inputs if the reason points at them."
        )
    waiting = (
        f"Call get_task with task_id='{task.task_id}' and wait_seconds={SUGGESTED_WAIT_SECONDS} to wait for it "
        "(or poll again in next_poll_seconds); do not create it again."
    )
    if task.status == "unknown":
        return f"The gateway reports an unrecognized status '{task.upstream_status}'. " + waiting
    noun = "video" if task.kind == "video" else "character"
    state = "is queued" if task.status == "queued" else f"is rendering ({task.progress}%)"
    return f"The {noun} {state}. " + waiting


def with_guidance(task: Task, *, now: float, sandbox: bool = False) -> Task:
    """Fill ``next_poll_seconds`` and ``hint`` (and the sandbox marker) on a parsed task."""
    hint = describe_next_step(task)
    if sandbox:
        hint = "[Sandbox: simulated task, nothing was billed] " + hint
    return task.model_copy(
        update={"next_poll_seconds": suggest_next_poll(task, now), "hint": hint, "sandbox": True if sandbox else None}
    )
