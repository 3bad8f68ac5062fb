"""The vocabulary of the gateway, the normalized ``Task`` (what tools return) and the parser of task answers.

The requests that create tasks are in ``create_requests.py``.

The gateway documents two response dialects for the same task (upstream-api.md §5, §6, §12):

* ToAPIs style: ``object: "generation.task"``, ``status: queued``, media under ``result.data[].url``,
  characters under ``result.data.characters[]``, ``expires_at``;
* dashlyai style: ``object: "video.generation"``, ``status: submitted``, top-level ``url`` / ``thumbnail``,
  ``estimated_time``.

:func:`parse_task` accepts both (and the near variants other gateways of the family use) and never fails on an
unexpected value: an unknown status is reported as ``"unknown"`` with the gateway's own word kept in
``upstream_status``.
"""

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

# --------------------------------------------------------------------------------------------- vocabulary

VideoModel = Literal["sora-2", "sora-2-pro"]
Duration = Literal[10, 15, 25]
AspectRatio = Literal["16:9", "9:16", "1:1"]
Style = Literal["comic", "news", "anime", "selfie", "nostalgic", "thanksgiving"]
TaskKind = Literal["video", "character"]
TaskStatus = Literal["queued", "in_progress", "completed", "failed", "unknown"]

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed"})
MAX_WAIT_SECONDS = 50
"""Longest server-side wait of one tool call (``wait_seconds``): well inside every client's tool timeout."""

STATUS_PATHS: dict[TaskKind, str] = {"video": "/v1/videos/generations/{}", "character": "/v1/characters_tasks/{}"}

TASK_ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,199}$"
"""Opaque gateway ids (``task_01K...``, ``video_<uuid>``): no slashes, spaces or dot-only names."""
_TASK_ID_RE = re.compile(TASK_ID_PATTERN)

_STATUS_WORDS: dict[str, TaskStatus] = {
    **dict.fromkeys(("queued", "submitted", "pending", "waiting", "created", "not_start", "not_started"), "queued"),
    **dict.fromkeys(("in_progress", "in-progress", "processing", "running", "generating", "started"), "in_progress"),
    **dict.fromkeys(("completed", "complete", "succeeded", "success", "succeed", "done", "finished"), "completed"),
    **dict.fromkeys(("failed", "failure", "error", "cancelled", "canceled", "expired", "rejected"), "failed"),
}


def invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_argument", message)


def is_safe_task_id(value: str) -> bool:
    """Whether ``value`` can be put into a gateway URL path as a task id."""
    return bool(_TASK_ID_RE.match(value))


def check_task_id(value: str) -> str:
    """Validator for task ids given by the caller (``get_task``, ``from_task``)."""
    value = value.strip()
    if not is_safe_task_id(value):
        raise invalid(
            "must be a task id as returned by create_video or create_character (letters, digits, '_', '-', "
            "'.', ':'; no slashes or spaces)"
        )
    return value


# --------------------------------------------------------------------------------------------- tool results


class Character(BaseModel):
    """A reusable character; put ``mention`` (``@username``) into a create_video prompt to cast it."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    id: str | None = Field(None, description="Character id (ch_...).")
    username: str | None = Field(None, description="Username the gateway assigned.")
    display_name: str | None = Field(None, description="Human-readable name.")
    profile_picture_url: str | None = Field(None, description="Avatar image URL.")
    mention: str | None = Field(None, description="@username: the text to use in a prompt.")


class TaskError(BaseModel):
    """Why a task failed, as the gateway put it."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    code: str | None = Field(None, description="Gateway error code, e.g. generation_failed.")
    message: str = Field(description="Gateway error message, passed through.")


class Task(BaseModel):
    """Normalized state of a video or character task, whatever dialect the gateway answered in; for a paid call
    that awaits the user's yes, the quote to confirm (``confirmation_required``), with nothing created."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    task_id: str | None = Field(
        None,
        description="Id to pass to get_task; absent only when outcome_unknown (the gateway's answer never arrived).",
    )
    kind: TaskKind = Field(description="video or character.")
    status: TaskStatus | Literal["awaiting_confirmation"] = Field(
        description="queued, in_progress, completed, failed; unknown for a word we do not know or an unknown "
        "outcome; awaiting_confirmation for a paid call's quote (nothing created yet)."
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
    cost_estimate_usd: float | None = Field(
        None,
        description="Estimated cost in USD from the server's configured prices (SORA_PRICES), not the gateway's "
        "bill; absent when no price is configured.",
    )
    confirmation_required: bool | None = Field(
        None,
        description="Paid tools: true when nothing was created because the user must approve the cost first: ask "
        "them, then call the same tool with the same arguments plus confirm_quote=quote_id.",
    )
    quote_id: str | None = Field(None, description="The quote to pass as confirm_quote once the user agrees.")
    quote_expires_at: int | None = Field(None, description="Unix seconds after which the quote cannot be used.")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class ModelSpending(BaseModel):
    """One model's share of this month's estimated spend."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    model: str
    tasks: int = Field(description="Tasks created this month with this model (failed ones excluded).")
    usd: float = Field(description="Their estimated cost.")


class Spending(BaseModel):
    """Estimated spend of the tasks created through sora-mcp (every process sharing the journal)."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    today_usd: float = Field(description="Today, local calendar day.")
    month_usd: float = Field(description="This local calendar month.")
    budget_daily_usd: float | None = Field(None, description="SORA_BUDGET_DAILY_USD, when set.")
    budget_monthly_usd: float | None = Field(None, description="SORA_BUDGET_MONTHLY_USD, when set.")
    remaining_today_usd: float | None = Field(None, description="What the daily budget still allows.")
    remaining_month_usd: float | None = Field(None, description="What the monthly budget still allows.")
    by_model: list[ModelSpending] = Field(description="This month's spend by model.")
    prices: dict[str, float] = Field(
        description="The price table: USD per second of video by model; 'character' is USD per character task."
    )
    confirm_above_usd: float | None = Field(
        None, description="Paid calls estimated at this or more wait for the user's yes (SORA_CONFIRM_ABOVE_USD)."
    )
    estimate_note: str = Field(description="What these figures are and are not.")


class DownloadResult(BaseModel):
    """A video saved by download_video on the machine that runs this server."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

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
        number = float(value) if abs(value) < 1e300 else math.inf
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
    if not math.isfinite(number):
        return None
    if number > 1e11:  # milliseconds
        number /= 1000
    return int(number) if 0 <= number < 1e11 else None  # outside years 1970-5138: not a time


def _progress(value: Any) -> int:
    if isinstance(value, str):
        value = value.strip().rstrip("%")
        try:
            value = float(value)
        except ValueError:
            return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
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
    """Normalize one gateway task body. ``kind`` is what the endpoint implies; the body can override it.

    ``task_id``, when given (the id that was read, or a create answer's id already checked), is the task's id
    whatever the body says. A value of the wrong type or out of range is left out, never a crash.
    """
    word = raw.get("status")
    upstream_status = word.strip()[:100] if isinstance(word, str) else ""
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
        task_id=task_id or _str_or_none(raw.get("id")) or _str_or_none(raw.get("task_id")),
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


# --------------------------------------------------------------------------------------------- inspect_video


class VideoFinding(BaseModel):
    """Something in the video worth a look before it is reported as done."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    kind: Literal["black", "frozen", "duration_mismatch", "aspect_ratio_mismatch"] = Field(
        description="black: black or near-black frames; frozen: no visible motion; duration_mismatch, "
        "aspect_ratio_mismatch: the video differs from what the create request asked for."
    )
    start_seconds: float | None = Field(None, description="black, frozen: time of the first sample in the stretch.")
    end_seconds: float | None = Field(None, description="black, frozen: time of the last sample in the stretch.")
    expected: str | None = Field(None, description="Mismatches: what the request asked for, e.g. '10 s', '16:9'.")
    actual: str | None = Field(None, description="Mismatches: what the video is, e.g. '5 s', '720x1280 (9:16)'.")
    note: str = Field(description="What the finding means, in one sentence.")


class ContactSheet(BaseModel):
    """The image in this result: frames of the video on a grid, each labelled with its time in seconds."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    frame_times_seconds: list[float] = Field(description="Time of each frame, left to right, top to bottom.")
    columns: int
    rows: int
    width: int = Field(description="Width of the image in pixels.")
    height: int = Field(description="Height of the image in pixels.")
    bytes: int = Field(description="Size of the JPEG image.")


class VideoInspection(BaseModel):
    """What inspect_video saw in a completed video: its facts, a contact sheet (the image) and findings."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    task_id: str = Field(description="The video task inspected.")
    source: Literal["downloaded_file", "streamed"] = Field(
        description="downloaded_file: the file download_video saved (path); streamed: fetched from video_url into "
        "a temporary file, deleted afterwards."
    )
    path: str | None = Field(None, description="The downloaded file inspected, when source is downloaded_file.")
    duration_seconds: float
    width: int = Field(description="Frame width in pixels.")
    height: int = Field(description="Frame height in pixels.")
    frame_rate: float | None = Field(None, description="Frames per second, when the file declares it.")
    codec: str = Field(description="Video codec, e.g. h264.")
    has_audio: bool = Field(description="Whether the file has an audio track.")
    audio_codec: str | None = Field(None, description="Audio codec, e.g. aac, when there is audio.")
    requested_duration_seconds: int | None = Field(
        None, description="The duration the create request asked for (or its default), from the task journal."
    )
    requested_aspect_ratio: str | None = Field(None, description="The size the create request asked for, e.g. 16:9.")
    findings: list[VideoFinding] = Field(description="Empty when nothing was found.")
    samples_per_second: float = Field(
        description="How often frames were sampled for the black and frozen findings: shorter glitches can be missed."
    )
    samples: int = Field(description="How many frames were sampled (at 64x36 grey levels).")
    contact_sheet: ContactSheet
    hint: str = Field("", description="What the findings mean and what to do next.")
