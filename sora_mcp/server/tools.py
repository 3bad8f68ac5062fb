"""The tools, one module-level ``async def`` each, with their arguments, descriptions and annotations.

A tool validates its arguments into a request model (``server/errors.validated``), calls the task service it
finds in the lifespan state (``server/state.py``), has ``server/guidance.py`` render the outcome, and returns a
result built by ``server/results.py``; every error passes ``server/errors.tool_errors``. ``TOOLS`` collects them
for ``build_server``. Docstrings are the descriptions the calling model reads.
"""

from typing import Annotated, Any

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import AfterValidator, Field

from sora_mcp.config import redact
from sora_mcp.create_requests import CharacterRequest, RemixRequest, VideoRequest
from sora_mcp.errors import SoraError
from sora_mcp.models import (
    MAX_WAIT_SECONDS,
    TASK_ID_PATTERN,
    AspectRatio,
    DownloadResult,
    Duration,
    Spending,
    Style,
    Task,
    TaskKind,
    TaskStatus,
    VideoInspection,
    VideoModel,
    check_task_id,
)
from sora_mcp.server.errors import RequestT, describe_error, tool_errors, validated
from sora_mcp.server.local_images import LocalImages, sendable
from sora_mcp.server.money import (
    Approval,
    CharacterApproval,
    RemixApproval,
    VideoApproval,
    spend_gate,
    spending_report,
)
from sora_mcp.server.player import APP_ONLY_META, PLAYER_META
from sora_mcp.server.results import (
    TaskList,
    byte_reporter,
    data_result,
    download_result,
    inspection_result,
    list_result,
    task_result,
    wait_reporter,
    with_thumbnail,
)
from sora_mcp.server.state import ToolContext, app_state
from sora_mcp.server.toolset import ToolSet
from sora_mcp.tasks import TaskOutcome

MAX_LIST_LIMIT = 100
NO_WAIT = 0
"""``player_state`` reads without waiting: the player polls on its own timer."""


CREATE_ANNOTATIONS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
READ_ANNOTATIONS = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
LEDGER_ANNOTATIONS = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
DOWNLOAD_ANNOTATIONS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)

WaitSeconds = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Wait up to this many seconds on the server for the task to finish, reporting progress "
        "meanwhile; returns as soon as it completes or fails. 0 reads the status once.",
    ),
]
CreateWaitSeconds = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="After creating, wait up to this many seconds for the task to finish (as get_task does), "
        "reporting progress; the task_id comes back either way. 0 (default) returns at once.",
    ),
]
AllowDuplicate = Annotated[
    bool,
    Field(
        description="Create a new task even though an identical request was made in the last minutes (normally "
        "that earlier task is returned, marked reused). Costs money again: only when the user asks for another."
    ),
]

ConfirmQuote = Annotated[
    str | None,
    Field(
        max_length=100,
        description="Only after the user approved a quote: the quote_id of a result with confirmation_required, "
        "with the same arguments as that call.",
    ),
]

TaskId = Annotated[
    str,
    AfterValidator(check_task_id),
    Field(
        min_length=1,
        max_length=200,
        description="The task_id returned by create_video or create_character.",
        json_schema_extra={"pattern": TASK_ID_PATTERN},
    ),
]

TOOLS = ToolSet()


@TOOLS.tool(title="Create a video", meta=PLAYER_META, annotations=CREATE_ANNOTATIONS)
async def create_video(
    ctx: ToolContext,
    approval: VideoApproval,
    local_images: LocalImages,
    prompt: Annotated[
        str,
        Field(
            description="What the video shows: subject, action, setting, camera, style. Write @username to "
            "cast a character made with create_character."
        ),
    ],
    model: Annotated[
        VideoModel, Field(description="sora-2 (10 or 15 s) or sora-2-pro (higher quality; 10, 15 or 25 s).")
    ] = "sora-2",
    duration: Annotated[
        Duration | None,
        Field(description="Length in seconds: 10 or 15 with sora-2; 10, 15 or 25 with sora-2-pro."),
    ] = None,
    size: Annotated[AspectRatio | None, Field(description="Aspect ratio: 16:9, 9:16 or 1:1.")] = None,
    images: Annotated[
        list[str] | None,
        Field(
            description="Reference images for image-to-video (PNG, JPEG, WebP or GIF): public http(s) URLs, "
            "data:image/...;base64 URIs, or files on the computer running this server: absolute paths, ~/... "
            "or file:///... URIs, inside the folders SORA_FILE_ROOTS allows (by default the user's home folder "
            "on stdio, none over HTTP)."
        ),
    ] = None,
    style: Annotated[Style | None, Field(description="Visual style preset.")] = None,
    watermark: Annotated[bool | None, Field(description="Add the Sora watermark (gateway default: no).")] = None,
    private: Annotated[bool | None, Field(description="Do not publish the video; it then cannot be remixed.")] = None,
    storyboard: Annotated[bool | None, Field(description="Storyboard mode, for finer control of shots.")] = None,
    thumbnail: Annotated[bool | None, Field(description="Also generate a thumbnail image.")] = None,
    allow_duplicate: AllowDuplicate = False,
    wait_seconds: CreateWaitSeconds = 0,
    confirm_quote: ConfirmQuote = None,
) -> Annotated[CallToolResult, Task]:
    """Start generating a video with Sora-2 from a text prompt (and optional reference images).

    Costs the user money: call it only when the user asks for a video, once per video. Returns a task_id at
    once with status "queued" (or, with wait_seconds, after waiting up to that long); rendering takes
    minutes. Next, call get_task(task_id, wait_seconds=50) until the status is "completed" (then give the
    user video_url) or "failed". If a call fails or times
    out, do not simply call create_video again: the error says whether a task may already exist, and
    list_tasks shows every task created. The same request again within minutes returns the earlier task
    ("reused": true) instead of creating another.
    """
    arguments: dict[str, Any] = {
        "prompt": prompt,
        "model": model,
        "duration": duration,
        "size": size,
        "images": sendable(local_images),  # local entries read, as data: URIs
        "style": style,
        "watermark": watermark,
        "private": private,
        "storyboard": storyboard,
        "thumbnail": thumbnail,
    }
    return await create_task(
        ctx, VideoRequest, arguments, allow_duplicate, wait_seconds, approval=approval, confirm_quote=confirm_quote
    )


@TOOLS.tool(title="Create a character", meta=PLAYER_META, annotations=CREATE_ANNOTATIONS)
async def create_character(
    ctx: ToolContext,
    approval: CharacterApproval,
    timestamps: Annotated[
        str,
        Field(description="'start,end' in seconds of the clip that shows the character, 1 to 3 s long, e.g. '1,3'."),
    ],
    url: Annotated[
        str | None,
        Field(description="Public URL of a video (with audio) showing the character. Give this or from_task."),
    ] = None,
    from_task: Annotated[
        str | None,
        Field(description="task_id of a video made earlier that shows the character. Give this or url."),
    ] = None,
    model: Annotated[VideoModel, Field(description="sora-2 or sora-2-pro.")] = "sora-2",
    allow_duplicate: AllowDuplicate = False,
    wait_seconds: CreateWaitSeconds = 0,
    confirm_quote: ConfirmQuote = None,
) -> Annotated[CallToolResult, Task]:
    """Create a reusable character (a "cameo") from 1-3 seconds of a video, to cast it in later videos.

    Costs the user money: call it only when the user asks. Give exactly one of url or from_task, plus
    timestamps. Returns a task_id at once (or after wait_seconds; characters are often ready within a
    minute); then call get_task(task_id, wait_seconds=50) until it is
    "completed" and read characters[].mention (like "@name"): writing that mention in a create_video prompt
    puts the character in the video. The same request again within minutes returns the earlier task.
    """
    arguments = {"timestamps": timestamps, "url": url, "from_task": from_task, "model": model}
    return await create_task(
        ctx, CharacterRequest, arguments, allow_duplicate, wait_seconds, approval=approval, confirm_quote=confirm_quote
    )


@TOOLS.tool(title="Remix a video", meta=PLAYER_META, annotations=CREATE_ANNOTATIONS)
async def remix_video(
    ctx: ToolContext,
    approval: RemixApproval,
    task_id: TaskId,
    prompt: Annotated[str, Field(description="How to change the video, e.g. 'make it night and add falling snow'.")],
    model: Annotated[VideoModel, Field(description="sora-2 (10 or 15 s) or sora-2-pro (15 s HD or 25 s).")] = "sora-2",
    size: Annotated[AspectRatio | None, Field(description="Aspect ratio: 16:9, 9:16 or 1:1.")] = None,
    duration: Annotated[
        Duration | None,
        Field(description="Length in seconds: 10 or 15 with sora-2; 15 or 25 with sora-2-pro."),
    ] = None,
    allow_duplicate: AllowDuplicate = False,
    wait_seconds: CreateWaitSeconds = 0,
    confirm_quote: ConfirmQuote = None,
) -> Annotated[CallToolResult, Task]:
    """Make a new video from a completed one (task_id from create_video), changed as the prompt says.

    Costs the user money like create_video: call it only when the user asks, once per remix. Private
    videos cannot be remixed. Returns a new task_id at once; then call get_task(task_id, wait_seconds=50)
    with that new id. If a call fails or times out, do not simply call it again: the error says whether a
    task may already exist.
    """
    arguments = {"source_task_id": task_id, "prompt": prompt, "model": model, "size": size, "duration": duration}
    return await create_task(
        ctx,
        RemixRequest,
        arguments,
        allow_duplicate,
        wait_seconds,
        approval=approval,
        confirm_quote=confirm_quote,
        remix_of=task_id,
    )


@TOOLS.tool(title="Download a video", annotations=DOWNLOAD_ANNOTATIONS)
async def download_video(
    ctx: ToolContext,
    task_id: TaskId,
    include_thumbnail: Annotated[
        bool, Field(description="Also save the thumbnail image next to the video, when the gateway has one.")
    ] = False,
    filename: Annotated[
        str | None,
        Field(
            max_length=200,
            description="File name for the video, e.g. 'beach-sunset.mp4' (a plain name, saved in the "
            "output folder; '.mp4' is added if missing). Default: '<task_id>.mp4'.",
        ),
    ] = None,
) -> Annotated[CallToolResult, DownloadResult]:
    """Save a completed video to a file on the computer running this server and return its path.

    Use it when the user wants to keep or open the video: result URLs expire about 24 h after completion.
    Free and safe to repeat: an already saved video is not downloaded again, and an existing file with
    other content is never overwritten. Files go to SORA_OUTPUT_DIR (by default a 'sora-mcp' folder in the
    user's Videos or Downloads folder). Reports progress while downloading. Tell the user the returned path.
    """
    from sora_mcp.download import download_task_video  # on first use: start-up does not need it

    state = app_state(ctx)
    with tool_errors(state.secret, task_id=task_id):
        saved = await download_task_video(
            state.tasks.client,
            state.settings,
            task_id,
            filename=filename,
            include_thumbnail=include_thumbnail,
            now=state.clock(),
            on_progress=byte_reporter(ctx),
        )
        return download_result(saved)


@TOOLS.tool(title="Get task status", meta=PLAYER_META, annotations=READ_ANNOTATIONS)
async def get_task(
    ctx: ToolContext,
    task_id: TaskId,
    wait_seconds: WaitSeconds = 0,
) -> Annotated[CallToolResult, Task]:
    """Read the status of a video or character task, optionally waiting for it to finish.

    Free and safe to repeat. Use wait_seconds=50 to wait efficiently instead of polling in a loop; while
    the task is still running, call it again (the result's hint and next_poll_seconds say when). A
    completed video has video_url (and expires_at; call download_video to keep the file) and, when the
    gateway has one, its thumbnail as an image; a completed character has characters[].mention; a failed
    task has error.message.
    """
    state = app_state(ctx)
    with tool_errors(state.secret, task_id=task_id):
        report = wait_reporter(ctx, wait_seconds) if wait_seconds > 0 else None
        found = await state.tasks.get_task(task_id, wait_seconds=wait_seconds, on_progress=report)
        task = state.render(found)
        return await with_thumbnail(task_result(task), task, state)


@TOOLS.tool(title="List recent tasks", meta=PLAYER_META, annotations=READ_ANNOTATIONS)
async def list_tasks(
    ctx: ToolContext,
    limit: Annotated[int, Field(ge=1, le=MAX_LIST_LIMIT, description="How many tasks to return, newest first.")] = 20,
    kind: Annotated[TaskKind | None, Field(description="Only video or only character tasks.")] = None,
    status: Annotated[
        TaskStatus | None,
        Field(description="Only tasks whose last known status is this (unknown: includes lost submissions)."),
    ] = None,
    refresh: Annotated[
        bool, Field(description="Read unfinished tasks from the gateway first, instead of the last known state.")
    ] = False,
) -> Annotated[CallToolResult, TaskList]:
    """List the tasks this server created (from any chat or process on this machine), newest first.

    Free. Use it to find a task_id you lost (a new chat, a timeout, a restart) instead of creating the video
    again, or to see what is still rendering. Each task has its last known state and a hint; a submission
    whose outcome is unknown (outcome_unknown: true, no task_id) may have been billed without an id: tell
    the user rather than creating it again. Finished tasks older than the journal's retention (90 days by
    default) are no longer listed; unfinished ones and unknown outcomes always are.
    """
    state = app_state(ctx)
    with tool_errors(state.secret):
        found = await state.tasks.list_tasks(limit=limit, kind=kind, status=status, refresh=refresh)
        return list_result([state.render(outcome) for outcome in found])


@TOOLS.tool(title="Get spending", annotations=LEDGER_ANNOTATIONS)
async def get_spending(ctx: ToolContext) -> Annotated[CallToolResult, Spending]:
    """Show what video and character tasks created through this server are estimated to have cost today and this
    month (local calendar), by model, against the budgets, with the price table.

    Free and read-only; the gateway is not called. Use it before a create when the user cares about cost, or
    when a create was refused by a budget. Figures are estimates from the configured prices, not the gateway's
    bill; failed tasks do not count.
    """
    state = app_state(ctx)
    with tool_errors(state.secret):
        report = spending_report(state.settings, await state.tasks.spending())
        return data_result(report.model_dump(mode="json", exclude_none=True))


async def create_task(
    ctx: ToolContext,
    request_type: type[RequestT],
    arguments: dict[str, Any],
    allow_duplicate: bool,
    wait_seconds: int,
    *,
    approval: Approval | None,
    confirm_quote: str | None,
    remix_of: str | None = None,
) -> CallToolResult:
    """What every paid tool does: validate its arguments into a request (nothing is sent if they are wrong), pass
    the spend gate (the user's yes or a quote, ``server/money.py``), create the task through the journal (budgets
    checked there), and answer as :func:`after_create` does. ``remix_of`` names the video a remix starts from, so
    that a 404 names it."""
    state = app_state(ctx)
    with tool_errors(state.secret, remix_of=remix_of):
        request = validated(request_type, state.settings, **arguments)
        quoted = await spend_gate(ctx, request, approval, confirm_quote, allow_duplicate)
        if quoted is not None:
            return quoted
        created = await state.tasks.create(request, allow_duplicate=allow_duplicate, quote_id=confirm_quote)
        return await after_create(ctx, created, wait_seconds)


async def after_create(ctx: ToolContext, created: TaskOutcome, wait_seconds: int) -> CallToolResult:
    """A create's result; with ``wait_seconds``, the new task's state after waiting for it.

    The task_id must reach the agent whatever happens while waiting: a failed wait returns the created task
    with a note. A reused task comes back at once, so the agent learns that nothing new was created.
    """
    state = app_state(ctx)
    task = created.task
    if wait_seconds <= 0 or task.task_id is None or task.is_terminal or created.reused:
        return task_result(state.render(created))
    try:
        waited = await state.tasks.get_task(
            task.task_id, wait_seconds=wait_seconds, on_progress=wait_reporter(ctx, wait_seconds)
        )
    except SoraError as exc:
        problem = redact(describe_error(exc, task_id=task.task_id), state.secret)
        return task_result(state.render(created._replace(wait_error=problem)))
    rendered = state.render(waited._replace(estimate=created.estimate))
    return await with_thumbnail(task_result(rendered), rendered, state)


@TOOLS.tool(title="Player: task state", meta=APP_ONLY_META, annotations=READ_ANNOTATIONS)
async def player_state(ctx: ToolContext, task_id: TaskId) -> Annotated[CallToolResult, Task]:
    """For the in-chat player only (hidden from the model by hosts that show the player): the task's current
    state, read from the gateway, as get_task returns it without waiting. Free. Models: use get_task."""
    state = app_state(ctx)
    with tool_errors(state.secret, task_id=task_id):
        found = await state.tasks.get_task(task_id, wait_seconds=NO_WAIT, on_progress=None)
        return task_result(state.render(found))


@TOOLS.tool(title="Inspect a video", annotations=READ_ANNOTATIONS)
async def inspect_video(ctx: ToolContext, task_id: TaskId) -> Annotated[CallToolResult, VideoInspection]:
    """Look at a completed video: returns a contact sheet (an image of 6 frames, each labelled with its time), the
    file's facts (duration, width, height, frame rate, codec, audio) and findings.

    Free: the gateway does not charge for it (it reads the task and fetches the video, or uses the file
    download_video saved); nothing is saved. Call it once get_task says "completed", before telling the user the
    video is done, and judge the contact sheet against what the user asked for. Findings: "black" (black or
    near-black frames), "frozen" (no visible motion), "duration_mismatch" and "aspect_ratio_mismatch" (other
    than the create request asked); they come from frames sampled a few times per second (samples_per_second),
    so a shorter glitch can be missed, a black moment at the very start or end may be a fade and a frozen one a
    deliberately still shot. Tell the user about real problems; a new video costs money: only if they ask.
    """
    from sora_mcp.inspect_video import inspect_task_video  # on first use: start-up does not import PyAV

    state = app_state(ctx)
    with tool_errors(state.secret, task_id=task_id):
        inspection = await inspect_task_video(
            state.tasks.client,
            state.settings,
            state.tasks.journal,
            task_id,
            now=state.clock(),
            on_progress=byte_reporter(ctx),
        )
        return inspection_result(inspection, sandbox=state.settings.sandbox)
