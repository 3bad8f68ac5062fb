"""MCP wiring: ``build_server(settings)`` returns an ``MCPServer`` whose tools proxy the gateway.

Tools take flat, schema-validated arguments, call the ``TaskService`` (the gateway client plus the task journal,
``tasks.py``), and return one structured ``Task`` (``list_tasks``: a list of them). Errors are turned into tool
errors in exactly one place, :func:`tool_errors`, with text the calling model can act on. Resources
``task://{task_id}`` and ``tasks://recent`` serve the same ``Task`` JSON. Nothing happens at import time: no
environment reads, no sockets, no files. ``sora_mcp.download`` is imported on first use (``download_video``, inline
thumbnails), as start-up does not need it (``docs/benchmarks.md``).
"""

import base64
import inspect
import json
import logging
import mimetypes
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import anyio
import httpx2
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.types import (
    CallToolResult,
    ContentBlock,
    ImageContent,
    ResourceLink,
    TextContent,
    ToolAnnotations,
)
from pydantic import AfterValidator, BaseModel, Field, ValidationError
from pydantic.json_schema import models_json_schema

from sora_mcp import __version__
from sora_mcp.client import ProgressCallback, SoraClient
from sora_mcp.config import Settings, redact
from sora_mcp.errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    CreateOutcomeUnknownError,
    DownloadError,
    InvalidArgumentError,
    JournalError,
    MissingAPIKeyError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SoraError,
    TaskNotReadyError,
)
from sora_mcp.journal import Journal, journal_path
from sora_mcp.models import (
    TASK_ID_PATTERN,
    AspectRatio,
    CharacterRequest,
    DownloadResult,
    Duration,
    RemixRequest,
    Style,
    Task,
    TaskKind,
    TaskStatus,
    VideoModel,
    VideoRequest,
    check_task_id,
    describe_validation_error,
)
from sora_mcp.prompts import register_prompts
from sora_mcp.tasks import TaskBook, TaskService

logger = logging.getLogger(__name__)

SERVER_NAME = "sora-mcp"
MAX_WAIT_SECONDS = 50
MAX_LIST_LIMIT = 100
RECENT_LIMIT = 20

INSTRUCTIONS = """\
Make videos with the Sora-2 models. Creating costs the user real money and takes minutes, so:
1. Call create_video (text or image to video) or create_character (a reusable @character cut from 1-3 s of a
   video) only when the user asks for it. Each returns a task_id at once.
2. Call get_task(task_id, wait_seconds=50) until status is "completed" or "failed"; each call waits on the
   server and reports progress. Follow the result's "hint".
3. Give the user video_url (it expires, about 24 h) or the character's "@username" mention, which casts the
   character when written into a create_video prompt. If the user wants to keep a video, call
   download_video(task_id) before it expires: it saves the file on this computer and returns its path.
4. remix_video(task_id, prompt) makes a new (paid) video from a completed one, when the user asks for changes.
Never create a task again because a call timed out or a task is slow: poll the task_id you have. Lost a task_id
(new chat, timeout, restart)? list_tasks shows every task this server created, newest first. An identical create
within minutes returns the earlier task ("reused": true) instead of paying twice."""


@dataclass
class AppState:
    """What every tool call can reach through ``ctx.request_context.lifespan_context``."""

    tasks: TaskService

    @property
    def client(self) -> SoraClient:
        return self.tasks.client


class TaskList(BaseModel):
    """Tasks from the journal, newest first."""

    tasks: list[Task]
    """Each with its last known state; submissions whose outcome is unknown have no task_id."""


ToolContext = Context[AppState, Any]

CREATE_ANNOTATIONS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
READ_ANNOTATIONS = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
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


F = TypeVar("F", bound=Callable[..., Any])


class ToolSet:
    """The server's tools, built before the server so that the JSON schemas of their results are generated once.

    ``MCPServer`` derives every tool's output schema from its return annotation on its own: ``Task`` five times,
    and once more inside ``TaskList``, which was a large share of sora-mcp's start-up cost over the SDK floor
    (``docs/benchmarks.md``). Here the SDK builds each tool without an output schema; :meth:`build` then
    generates the schemas of all result models in one pass and gives each tool the ``FuncMetadata`` the SDK
    would have built. A test checks every tool equals the SDK's own registration of the same function.

    Descriptions are the docstrings with their indentation removed (Python before 3.13 keeps it, and it would
    reach the calling model verbatim).
    """

    def __init__(self) -> None:
        self._tools: list[tuple[Tool, type[BaseModel]]] = []

    def tool(self, *, title: str, annotations: ToolAnnotations) -> Callable[[F], F]:
        """Decorator: add the function as a tool. It must return ``Annotated[CallToolResult, Model]``."""

        def add(fn: F) -> F:
            output_model = result_model(fn)
            tool = Tool.from_function(
                fn,
                title=title,
                description=inspect.cleandoc(fn.__doc__ or ""),
                annotations=annotations,
                structured_output=False,
            )
            self._tools.append((tool, output_model))
            return fn

        return add

    def build(self) -> list[Tool]:
        """The tools, each with its structured output: the result model, and that model's JSON schema."""
        schemas = result_schemas({model for _, model in self._tools})
        for tool, model in self._tools:
            arg_model = tool.fn_metadata.arg_model
            tool.fn_metadata = FuncMetadata(arg_model=arg_model, output_model=model, output_schema=schemas[model])
        return [tool for tool, _ in self._tools]


DEFS = "#/$defs/"
"""How pydantic's JSON schemas refer to a shared definition."""


def result_schemas(models: Iterable[type[BaseModel]]) -> dict[type[BaseModel], dict[str, Any]]:
    """Each model's JSON schema (validation mode, as the SDK publishes it), generated together so that a model
    nested in several (``Task`` in ``TaskList``) is generated once. Each schema carries the ``$defs`` it uses."""
    ordered = sorted(models, key=lambda model: model.__name__)
    references, generated = models_json_schema([(model, "validation") for model in ordered])
    definitions: dict[str, Any] = generated.get("$defs", {})
    schemas: dict[type[BaseModel], dict[str, Any]] = {}
    for model in ordered:
        name = references[(model, "validation")]["$ref"].removeprefix(DEFS)
        schema = definitions[name]
        used = _referenced(schema, definitions)
        schemas[model] = {"$defs": {key: definitions[key] for key in sorted(used)}, **schema} if used else schema
    return schemas


def _referenced(node: Any, definitions: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """Names of the definitions ``node`` refers to, directly or through other definitions."""
    found = set() if found is None else found
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(DEFS):
            name = reference.removeprefix(DEFS)
            if name not in found:
                found.add(name)
                _referenced(definitions[name], definitions, found)
        for value in node.values():
            _referenced(value, definitions, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, definitions, found)
    return found


def result_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """``Model`` from a tool's ``-> Annotated[CallToolResult, Model]`` (the SDK's spelling of "returns a
    ``CallToolResult`` whose structured content is a ``Model``")."""
    annotation = fn.__annotations__.get("return")
    arguments = get_args(annotation) if get_origin(annotation) is Annotated else ()
    model = arguments[1] if len(arguments) == 2 and arguments[0] is CallToolResult else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"tool {fn.__name__} must return Annotated[CallToolResult, <a pydantic model>]")
    return model


def build_server(
    settings: Settings,
    *,
    http_client: httpx2.AsyncClient | None = None,
    client: SoraClient | Callable[[], SoraClient] | None = None,
    journal: Journal | None = None,
    clock: Callable[[], float] = time.time,
) -> MCPServer[AppState]:
    """Create the MCP server.

    By default its lifespan opens one ``SoraClient`` (and, with ``settings.sandbox``, the simulated gateway)
    and closes it on shutdown. ``client`` hands in a process-wide client instead, which is then left open: a
    ``SoraClient``, or a function returning the one that the host application opened (the HTTP app does this,
    as the SSE transport enters this lifespan once per connection). ``http_client`` is passed to a client
    created here (tests use ``httpx2.ASGITransport``). The task journal (``SORA_STATE_DIR``, or ``journal``) is
    opened at start-up; if it cannot be, a warning goes to the log and the tools that need it say why, while
    ``get_task`` keeps working.
    """
    journal = journal or Journal(journal_path(settings.state_dir), clock=clock)
    book = TaskBook.for_settings(journal, settings, clock=clock)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        try:
            await journal.open()
        except JournalError as exc:
            logger.warning("%s Until then tasks are not recorded, and list_tasks cannot answer.", exc)
        try:
            if client is not None:
                shared = client() if callable(client) else client
                yield AppState(tasks=TaskService(shared, book, duplicate_window=settings.duplicate_window))
                return
            async with open_client(settings, http_client=http_client, clock=clock) as sora:
                yield AppState(tasks=TaskService(sora, book, duplicate_window=settings.duplicate_window))
        finally:
            with anyio.CancelScope(shield=True):
                await journal.close()

    secret = settings.maskable_key
    tools = ToolSet()

    @tools.tool(title="Create a video", annotations=CREATE_ANNOTATIONS)
    async def create_video(
        ctx: ToolContext,
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
            Field(description="Reference images for image-to-video: http(s) URLs or data:image/...;base64 URIs."),
        ] = None,
        style: Annotated[Style | None, Field(description="Visual style preset.")] = None,
        watermark: Annotated[bool | None, Field(description="Add the Sora watermark (gateway default: no).")] = None,
        private: Annotated[
            bool | None, Field(description="Do not publish the video; it then cannot be remixed.")
        ] = None,
        storyboard: Annotated[bool | None, Field(description="Storyboard mode, for finer control of shots.")] = None,
        thumbnail: Annotated[bool | None, Field(description="Also generate a thumbnail image.")] = None,
        allow_duplicate: AllowDuplicate = False,
        wait_seconds: CreateWaitSeconds = 0,
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
        with tool_errors(secret):
            request = _validated(
                VideoRequest,
                prompt=prompt,
                model=model,
                duration=duration,
                size=size,
                images=images,
                style=style,
                watermark=watermark,
                private=private,
                storyboard=storyboard,
                thumbnail=thumbnail,
            )
            task = await _tasks(ctx).create(request, allow_duplicate=allow_duplicate)
            return await after_create(ctx, task, wait_seconds)

    @tools.tool(title="Create a character", annotations=CREATE_ANNOTATIONS)
    async def create_character(
        ctx: ToolContext,
        timestamps: Annotated[
            str,
            Field(
                description="'start,end' in seconds of the clip that shows the character, 1 to 3 s long, e.g. '1,3'."
            ),
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
    ) -> Annotated[CallToolResult, Task]:
        """Create a reusable character (a "cameo") from 1-3 seconds of a video, to cast it in later videos.

        Costs the user money: call it only when the user asks. Give exactly one of url or from_task, plus
        timestamps. Returns a task_id at once (or after wait_seconds; characters are often ready within a
        minute); then call get_task(task_id, wait_seconds=50) until it is
        "completed" and read characters[].mention (like "@name"): writing that mention in a create_video prompt
        puts the character in the video. The same request again within minutes returns the earlier task.
        """
        with tool_errors(secret):
            request = _validated(CharacterRequest, timestamps=timestamps, url=url, from_task=from_task, model=model)
            task = await _tasks(ctx).create(request, allow_duplicate=allow_duplicate)
            return await after_create(ctx, task, wait_seconds)

    @tools.tool(title="Remix a video", annotations=CREATE_ANNOTATIONS)
    async def remix_video(
        ctx: ToolContext,
        task_id: TaskId,
        prompt: Annotated[
            str, Field(description="How to change the video, e.g. 'make it night and add falling snow'.")
        ],
        model: Annotated[
            VideoModel, Field(description="sora-2 (10 or 15 s) or sora-2-pro (15 s HD or 25 s).")
        ] = "sora-2",
        size: Annotated[AspectRatio | None, Field(description="Aspect ratio: 16:9, 9:16 or 1:1.")] = None,
        duration: Annotated[
            Duration | None,
            Field(description="Length in seconds: 10 or 15 with sora-2; 15 or 25 with sora-2-pro."),
        ] = None,
        allow_duplicate: AllowDuplicate = False,
        wait_seconds: CreateWaitSeconds = 0,
    ) -> Annotated[CallToolResult, Task]:
        """Make a new video from a completed one (task_id from create_video), changed as the prompt says.

        Costs the user money like create_video: call it only when the user asks, once per remix. Private
        videos cannot be remixed. Returns a new task_id at once; then call get_task(task_id, wait_seconds=50)
        with that new id. If a call fails or times out, do not simply call it again: the error says whether a
        task may already exist.
        """
        with tool_errors(secret):
            request = _validated(
                RemixRequest, source_task_id=task_id, prompt=prompt, model=model, size=size, duration=duration
            )
            task = await _tasks(ctx).create(request, allow_duplicate=allow_duplicate)
            return await after_create(ctx, task, wait_seconds)

    @tools.tool(title="Download a video", annotations=DOWNLOAD_ANNOTATIONS)
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
        from sora_mcp.download import (
            default_output_dir,
            download_task_video,
            human_size,
        )  # on first use: see the module docstring

        with tool_errors(secret, task_id=task_id):
            last_reported = 0

            async def report(done: int, total: int | None) -> None:
                nonlocal last_reported
                if done > last_reported:
                    last_reported = done
                    of = f" of {human_size(total)}" if total else ""
                    await ctx.report_progress(done, total, f"downloaded {human_size(done)}{of}")

            result = await download_task_video(
                _tasks(ctx).client,
                task_id,
                output_dir=settings.output_dir or default_output_dir(),
                filename=filename,
                include_thumbnail=include_thumbnail,
                max_bytes=settings.max_download_bytes,
                read_timeout=settings.timeout,
                now=clock(),
                on_progress=report,
            )
            return download_result(result)

    @tools.tool(title="Get task status", annotations=READ_ANNOTATIONS)
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
        with tool_errors(secret, task_id=task_id):
            tasks = _tasks(ctx)
            if wait_seconds <= 0:
                task = await tasks.get_task(task_id)
                return await with_thumbnail(task_result(task), task, tasks.client)
            report = wait_reporter(ctx, wait_seconds)
            task = await tasks.get_task(task_id, wait_seconds=wait_seconds, on_progress=report)
            return await with_thumbnail(task_result(task), task, tasks.client)

    async def after_create(ctx: ToolContext, task: Task, wait_seconds: int) -> CallToolResult:
        """A create's result; with ``wait_seconds``, the new task's state after waiting for it.

        The task_id must reach the agent whatever happens while waiting: a failed wait returns the created task
        with a note. A reused task comes back at once, so the agent learns that nothing new was created.
        """
        if wait_seconds <= 0 or task.task_id is None or task.is_terminal or task.reused:
            return task_result(task)
        tasks = _tasks(ctx)
        try:
            waited = await tasks.get_task(
                task.task_id, wait_seconds=wait_seconds, on_progress=wait_reporter(ctx, wait_seconds)
            )
        except SoraError as exc:
            problem = redact(describe_error(exc, task_id=task.task_id), secret)
            note = f" Waiting for it failed ({problem}); the task exists: poll it with get_task."
            return task_result(task.model_copy(update={"hint": task.hint + note}))
        return await with_thumbnail(task_result(waited), waited, tasks.client)

    async def with_thumbnail(result: CallToolResult, task: Task, sora: SoraClient) -> CallToolResult:
        """Add a completed video's thumbnail as an image, when there is a small one; never fails the call."""
        url = task.thumbnail_url
        if not settings.inline_thumbnails or task.kind != "video" or task.status != "completed" or not url:
            return result
        from sora_mcp.download import fetch_small_image  # on first use: see the module docstring

        try:
            data, media_type = await fetch_small_image(sora, url)
        except DownloadError as exc:
            logger.debug("No inline thumbnail for %s: %s", task.task_id, exc)
            return result
        image = ImageContent(type="image", data=base64.b64encode(data).decode("ascii"), mime_type=media_type)
        return result.model_copy(update={"content": [*result.content, image]})

    @tools.tool(title="List recent tasks", annotations=READ_ANNOTATIONS)
    async def list_tasks(
        ctx: ToolContext,
        limit: Annotated[
            int, Field(ge=1, le=MAX_LIST_LIMIT, description="How many tasks to return, newest first.")
        ] = 20,
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
        the user rather than creating it again.
        """
        with tool_errors(secret):
            found = await _tasks(ctx).list_tasks(limit=limit, kind=kind, status=status, refresh=refresh)
            return list_result(found)

    server = MCPServer(
        SERVER_NAME,
        title="Sora video generation",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/sora-mcp/sora-mcp",
        lifespan=lifespan,
        tools=tools.build(),
    )

    @server.resource(
        "task://{task_id}",
        name="task",
        title="Task",
        description="A video or character task as JSON (the Task that get_task returns), read from the gateway; "
        "its last known state from the journal when the gateway cannot be read.",
        mime_type="application/json",
    )
    async def task_resource(task_id: str, ctx: ToolContext) -> str:
        try:
            checked = check_task_id(task_id)
        except ValueError as exc:
            raise ResourceError(f"task_id: {exc}") from None
        try:
            task = await _tasks(ctx).task_state(checked)
        except SoraError as exc:
            raise ResourceError(redact(describe_error(exc, task_id=checked), secret)) from exc
        return _json(_task_data(task))

    @server.resource(
        "tasks://recent",
        name="recent_tasks",
        title="Recent tasks",
        description=f"The {RECENT_LIMIT} latest tasks of the task journal, newest first, with their last known "
        "state (the list_tasks result as JSON).",
        mime_type="application/json",
    )
    async def recent_tasks() -> str:
        try:
            found = await book.recent(limit=RECENT_LIMIT)
        except JournalError as exc:
            raise ResourceError(str(exc)) from exc
        return _json({"tasks": [_task_data(task) for task in found]})

    register_prompts(server)
    return server


@asynccontextmanager
async def open_client(
    settings: Settings, *, http_client: httpx2.AsyncClient | None = None, clock: Callable[[], float] = time.time
) -> AsyncIterator[SoraClient]:
    """Open the gateway client ``settings`` describe, in front of the simulated gateway when ``settings.sandbox``.

    The MCP lifespan uses it, and so does the HTTP app, which opens one client for the whole process.
    """
    async with AsyncExitStack() as stack:
        base_url = None
        if settings.sandbox:
            # Only sandbox runs pay for the simulator's imports.
            from sora_mcp.sandbox import SandboxGateway, serve_sandbox

            gateway = SandboxGateway(
                video_seconds=settings.sandbox_seconds, character_seconds=settings.sandbox_seconds / 2
            )
            base_url = await stack.enter_async_context(serve_sandbox(gateway))
            logger.info("Sandbox gateway at %s: simulated tasks, nothing is billed", base_url)
        yield await stack.enter_async_context(
            SoraClient(settings, http_client=http_client, base_url=base_url, sandbox=settings.sandbox, clock=clock)
        )


def wait_reporter(ctx: ToolContext, wait_seconds: int) -> ProgressCallback:
    """Progress notifications for a wait: the gateway's percentage, nudged so values strictly increase (the
    spec requires it, and clients that reset their timeout on progress need a fresh value every time)."""
    last_reported = -1.0

    async def report(task: Task | None, waited: float) -> None:
        nonlocal last_reported
        progress = task.progress if task else 0
        value = float(progress) if progress > last_reported else round(last_reported + 0.01, 2)
        last_reported = value
        state = f"{task.status} {progress}%" if task else "asking the gateway"
        await ctx.report_progress(value, 100, f"{state} (waited {waited:.0f}s of {wait_seconds}s)")

    return report


def _tasks(ctx: ToolContext) -> TaskService:
    return ctx.request_context.lifespan_context.tasks


RequestT = TypeVar("RequestT", VideoRequest, CharacterRequest, RemixRequest)


def _validated(request_type: type[RequestT], /, **arguments: Any) -> RequestT:
    """Build a request model, turning its validation errors into one tool error that names each argument."""
    try:
        return request_type(**arguments)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise ToolError(f"Invalid arguments, nothing was sent to the gateway: {problems}") from None


def task_result(task: Task) -> CallToolResult:
    """A ``Task`` as structured content plus the same compact JSON as text (for clients that show only text)."""
    return _result(_task_data(task))


def list_result(tasks: list[Task]) -> CallToolResult:
    """``{"tasks": [...]}`` as structured content plus the same compact JSON as text."""
    return _result({"tasks": [_task_data(task) for task in tasks]})


def _task_data(task: Task) -> dict[str, Any]:
    """A ``Task`` as compact JSON data: fields without a value, and an empty characters list, are left out."""
    data = task.model_dump(mode="json", exclude_none=True)
    if not data.get("characters"):
        data.pop("characters", None)
    return data


def _result(data: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=_json(data))], structured_content=data)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def download_result(result: DownloadResult) -> CallToolResult:
    """A ``DownloadResult`` as structured content, compact JSON text, and a ``resource_link`` per saved file
    (a ``file://`` URI), so that clients that show files can offer them."""
    data = result.model_dump(mode="json", exclude_none=True)
    content: list[ContentBlock] = [
        TextContent(type="text", text=json.dumps(data, ensure_ascii=False, separators=(",", ":"))),
        _file_link(Path(result.path), result.content_type or "video/mp4", result.bytes, "The downloaded video"),
    ]
    if result.thumbnail_path:
        thumbnail = Path(result.thumbnail_path)
        media_type = mimetypes.guess_type(thumbnail.name)[0] or "image/jpeg"
        content.append(_file_link(thumbnail, media_type, None, "The video's thumbnail"))
    return CallToolResult(content=content, structured_content=data)


def _file_link(path: Path, media_type: str, size: int | None, description: str) -> ResourceLink:
    return ResourceLink(
        type="resource_link",
        name=path.name,
        uri=path.as_uri(),
        mime_type=media_type,
        size=size,
        description=description,
    )


@contextmanager
def tool_errors(secret: str | None, *, task_id: str | None = None) -> Iterator[None]:
    """Turn every ``SoraError`` raised inside into a ``ToolError`` with actionable text (never the API key)."""
    try:
        yield
    except SoraError as exc:
        raise ToolError(redact(describe_error(exc, task_id=task_id), secret)) from exc


def describe_error(exc: SoraError, *, task_id: str | None = None) -> str:
    """The tool-error text for a client error: what happened, what it means for money, what to do next."""
    if isinstance(exc, CreateOutcomeUnknownError):
        recorded = (
            " The submission is recorded in the task journal: list_tasks shows it (outcome_unknown), and the same "
            "request again within the duplicate window returns it instead of paying twice."
            if exc.journaled
            else ""
        )
        return (
            f"The gateway may have created this {exc.kind} task, and may bill it, but its answer was lost "
            f"({_cause(exc.cause)}). Do not call create again right away: that could pay for a second one. Tell "
            "the user the outcome is unknown; they can check the gateway dashboard for a new task (get_task with "
            f"its id links it to this request), or decide to try again knowingly with allow_duplicate=true.{recorded}"
        )
    if isinstance(exc, MissingAPIKeyError | JournalError | TaskNotReadyError | DownloadError):
        return str(exc)  # written for the calling model already
    if isinstance(exc, InvalidArgumentError):
        return f"Invalid argument {exc}"
    nothing = "" if task_id else " Nothing was created."
    if isinstance(exc, APIStatusError):
        detail = _status_detail(exc)
        if isinstance(exc, AuthenticationError):
            return f"The gateway rejected the API key ({detail}). Check SORA_API_KEY in this server's env.{nothing}"
        if isinstance(exc, PaymentRequiredError):
            return f"The gateway account balance is too low ({detail}). Top up the account, then try again.{nothing}"
        if isinstance(exc, PermissionDeniedError):
            return f"This API key may not use that model or endpoint ({detail}).{nothing}"
        if isinstance(exc, NotFoundError):
            if task_id:
                return (
                    f"No task '{task_id}' exists for this API key ({detail}). Check the task_id: use the one "
                    "returned by create_video or create_character."
                )
            return f"The gateway does not serve this endpoint ({detail}). Check SORA_BASE_URL.{nothing}"
        if isinstance(exc, ContentPolicyError):
            return f"The content policy refused this request ({detail}). Change the prompt or inputs.{nothing}"
        if isinstance(exc, BadRequestError):
            return f"The gateway rejected the request ({detail}). Fix what it names and try again.{nothing}"
        if isinstance(exc, RateLimitError):
            wait = f"{exc.retry_after:.0f} s" if exc.retry_after is not None else "about 30 s"
            return f"The gateway is rate limiting requests ({detail}). Wait {wait}, then try again.{nothing}"
        if isinstance(exc, ServerError):
            return f"The gateway failed ({detail}), also on retry. Try again in a minute.{nothing}"
        return f"The gateway refused the request ({detail}).{nothing}"
    if isinstance(exc, APITimeoutError):
        return f"{_sentence(_cause(exc))}, also on retry. Try again shortly; raise SORA_TIMEOUT if it persists."
    if isinstance(exc, APIConnectionError):
        return f"{_sentence(_cause(exc))}. Check the network connection and SORA_BASE_URL, then try again."
    if isinstance(exc, APIResponseError):
        return f"{_sentence(_cause(exc))}, also on retry: the gateway may be failing. Try again in a minute."
    return str(exc)


def _status_detail(exc: APIStatusError) -> str:
    text = f"HTTP {exc.status_code}: {exc.message}"
    if exc.request_id:
        text += f"; request id {exc.request_id}"
    return text


def _cause(exc: Exception) -> str:
    return _status_detail(exc) if isinstance(exc, APIStatusError) else str(exc)


def _sentence(text: str) -> str:
    """``text`` with its first letter upper-cased; unlike ``str.capitalize`` it keeps "HTTP", URLs, class names."""
    return text[:1].upper() + text[1:]
