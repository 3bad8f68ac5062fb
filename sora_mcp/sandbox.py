"""An in-memory simulation of the dashlyai Sora-2 gateway: no key, no network, no cost.

`sora-mcp --sandbox` serves it on a loopback port with `serve_sandbox`, and the test suite
builds its fake gateway on it. `SandboxGateway` answers the documented endpoints with the
documented shapes and error envelope (`{"error": {"code", "message", "type"}}`):

- `POST /v1/videos/generations`: a video task (with `prompt`) or a character task (with
  `url` or `from_task`, plus `timestamps`), validated as the gateway documents;
- `GET /v1/videos/generations/{task_id}` and `GET /v1/characters_tasks/{task_id}`: task status,
  in the `"toapis"` (current) or `"dashlyai"` (older) response dialect;
- `POST /v1/videos/{task_id}/remix`: a new video task from a completed one;
- `GET /files/{task_id}.mp4` and `.jpg`: the media that completed tasks link to, a tiny real
  MP4 and JPEG. Like the real media host, this route needs no API key, and its links expire
  24 h after completion (then it answers 403, as an expired signed URL does).

A completed video links its thumbnail (`result.data[0].thumbnail_url` in the "toapis" dialect,
`thumbnail` in "dashlyai") unless its request said `metadata.thumbnail: false`. The real
gateway's toapis-style answers document no thumbnail field; the sandbox shows one by default so
that trying it shows everything a client can meet.

Tasks advance with the injected clock: queued for the first 15% of their duration, then
in_progress with rising progress, then completed. With a `SandboxStore` (what `sora-mcp --sandbox`
uses: a file in the state directory) tasks outlive the process: a server started per call, as the
MCP Inspector's command-line mode does, still finds the tasks of the one before, and their status
follows from their creation time. Media links name the serving process's port, so a restarted
server's `get_task` gives a link that works again.

To try error handling, put the token `[fail]` in a prompt: that video task ends `failed` with
`error: {"code": "generation_failed", "message": "Generation failed: Content violates the
content policy"}`, as a content-policy rejection does.
"""

import json
import logging
import secrets
import string
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache
from importlib import resources
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sora_mcp.embedded import serve_app
from sora_mcp.sandbox_rules import (
    SandboxError,
    check_duration,
    check_images,
    check_metadata,
    check_model,
    check_prompt,
    check_size,
    check_timestamps,
    invalid,
    is_http_url,
)
from sora_mcp.sandbox_store import SandboxStore, SandboxTask, TaskKind

__all__ = [
    "FAIL_TOKEN",
    "Dialect",
    "SandboxError",
    "SandboxGateway",
    "SandboxStore",
    "SandboxTask",
    "TaskKind",
    "TaskStatus",
    "serve_sandbox",
]

JSON = dict[str, Any]
Dialect = Literal["toapis", "dashlyai"]
TaskStatus = Literal["queued", "in_progress", "completed", "failed"]

FAIL_TOKEN = "[fail]"
"""A prompt containing this token makes its video task fail."""

_FAILURE = {"code": "generation_failed", "message": "Generation failed: Content violates the content policy"}
_DURATIONS: dict[str, tuple[int, ...]] = {"sora-2": (10, 15), "sora-2-pro": (10, 15, 25)}
_REMIX_DURATIONS: dict[str, tuple[int, ...]] = {"sora-2": (10, 15), "sora-2-pro": (15, 25)}
_QUEUED_FRACTION = 0.15
_RESULT_TTL_S = 86400
_MEDIA_TYPES = {"mp4": "video/mp4", "jpg": "image/jpeg"}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CHARACTER_NAMES = ("Turbo Whiskers", "Captain Pixel", "Luna Sprocket", "Baron Barkley", "Cruising Kitty")


logger = logging.getLogger(__name__)


def _task_not_found() -> SandboxError:
    return SandboxError(404, "Task not found", "not_found_error")


class SandboxGateway:
    """The simulated gateway: a task store, its status rules and the HTTP routes serving them.

    The simulation is plain methods (`create`, `remix`, `video_status`, `character_status`,
    `media`) that take parsed bodies and raise `SandboxError`; `app` is the HTTP layer over them.
    Media URLs start with `public_url`, or with the request's own base URL while it is empty.
    With a `store`, tasks are also written there and looked up there when this process does not know them.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        video_seconds: float = 8.0,
        character_seconds: float = 4.0,
        dialect: Dialect = "toapis",
        api_key: str | None = None,
        public_url: str = "",
        store: SandboxStore | None = None,
    ) -> None:
        if video_seconds < 0 or character_seconds < 0:
            raise ValueError("task durations must not be negative")
        self.clock = clock
        self.video_seconds = video_seconds
        self.character_seconds = character_seconds
        self.dialect = dialect
        self.api_key = api_key
        self.public_url = public_url
        self.store = store
        self.tasks: dict[str, SandboxTask] = {}
        self.app = self.build_app()

    # Simulation

    def create(self, body: Any) -> JSON:
        """Validate a `POST /v1/videos/generations` body and start a video or character task.

        With a `prompt` it is a video; without one, `url` or `from_task` plus `timestamps` ask for a character.
        """
        if not isinstance(body, dict):
            raise invalid("request body must be a JSON object")
        model = check_model(body)
        if "prompt" not in body and ("url" in body or "from_task" in body):
            self._check_character_source(body)
            check_timestamps(body.get("timestamps"))
            return self._start("character", model, body)
        prompt = check_prompt(body, "prompt is required (or url/from_task with timestamps to create a character)")
        check_duration(body, model, _DURATIONS)
        check_size(body)
        check_images(body)
        check_metadata(body)
        return self._start("video", model, body, fails=FAIL_TOKEN in prompt.lower())

    def remix(self, source_id: str, body: Any) -> JSON:
        """Validate a `POST /v1/videos/{source_id}/remix` body and start a new video task."""
        if not isinstance(body, dict):
            raise invalid("request body must be a JSON object")
        source = self._find(source_id, "video")
        status, _ = self.status_of(source)
        if status != "completed":
            raise invalid(f"only completed videos can be remixed, task {source_id} is {status}")
        if (source.request.get("metadata") or {}).get("private") is True:
            raise invalid("private videos cannot be remixed")
        model = check_model(body)
        prompt = check_prompt(body, "prompt is required")
        check_duration(body, model, _REMIX_DURATIONS)
        check_size(body)
        return self._start("video", model, body, fails=FAIL_TOKEN in prompt.lower())

    def video_status(self, task_id: str, media_base: str) -> JSON:
        """`GET /v1/videos/generations/{task_id}`: a video task as the status endpoint shows it."""
        return self.describe(self._find(task_id, "video"), media_base)

    def character_status(self, task_id: str, media_base: str) -> JSON:
        """`GET /v1/characters_tasks/{task_id}`: a character task as the status endpoint shows it."""
        return self.describe(self._find(task_id, "character"), media_base)

    def media(self, task_id: str, suffix: Literal["mp4", "jpg"]) -> bytes:
        """The video (`mp4`) or thumbnail/avatar (`jpg`) of a completed task, until its link expires."""
        task = self.lookup(task_id)
        if task is None or self.status_of(task)[0] != "completed" or (suffix == "mp4" and task.kind != "video"):
            raise SandboxError(404, "File not found", "not_found_error")
        if self.clock() >= task.created_at + task.seconds + _RESULT_TTL_S:
            raise SandboxError(403, "Request has expired", "expired")
        return _asset(f"sandbox.{suffix}")

    def status_of(self, task: SandboxTask) -> tuple[TaskStatus, int]:
        """The task's status and progress (0-100) at the clock's current time."""
        elapsed = self.clock() - task.created_at
        if elapsed >= task.seconds:
            return ("failed", 0) if task.fails else ("completed", 100)
        queued_for = task.seconds * _QUEUED_FRACTION
        if elapsed < queued_for:
            return "queued", 0
        return "in_progress", min(99, int(100 * (elapsed - queued_for) / (task.seconds - queued_for)))

    def describe(self, task: SandboxTask, media_base: str) -> JSON:
        """The status document of a task, in the gateway's dialect; media URLs start with `media_base`."""
        status, progress = self.status_of(task)
        created_at, completed_at = int(task.created_at), int(task.created_at + task.seconds)
        media = f"{media_base}/files/{task.id}"
        doc: JSON
        if task.kind == "character" or self.dialect == "toapis":
            doc = {
                "id": task.id,
                "object": "generation.task",
                "model": task.model,
                "status": status,
                "progress": progress,
                "created_at": created_at,
            }
        else:
            doc = {
                "id": task.id,
                "object": "video.generation",
                "status": "submitted" if status == "queued" else status,
                "progress": progress,
                "model": task.model,
                "created_at": created_at,
                "estimated_time": round(task.seconds),
            }
        if status == "failed":
            doc["error"] = dict(_FAILURE)
        elif status == "completed":
            doc["completed_at"] = completed_at
            if task.character is not None:
                character = task.character | {"profile_picture_url": f"{media}.jpg"}
                doc["result"] = {"type": "character", "data": {"characters": [character]}}
            elif self.dialect == "toapis":
                doc["expires_at"] = completed_at + _RESULT_TTL_S
                item = {"url": f"{media}.mp4", "format": "mp4"}
                if _wants_thumbnail(task):
                    item["thumbnail_url"] = f"{media}.jpg"
                doc["result"] = {"type": "video", "data": [item]}
            else:
                doc["url"] = f"{media}.mp4"
                if _wants_thumbnail(task):
                    doc["thumbnail"] = f"{media}.jpg"
        if task.kind == "character":
            doc["metadata"] = {}
        return doc

    def _start(self, kind: TaskKind, model: str, body: JSON, *, fails: bool = False) -> JSON:
        now = self.clock()
        task = SandboxTask(
            id=f"task_{_ulid(now)}",
            kind=kind,
            model=model,
            created_at=now,
            seconds=self.video_seconds if kind == "video" else self.character_seconds,
            request=body,
            fails=fails,
            character=_new_character() if kind == "character" else None,
        )
        self.tasks[task.id] = task
        if self.store is not None:
            self.store.put(task)
        return {
            "id": task.id,
            "object": "generation.task",
            "model": model,
            "status": "queued",
            "progress": 0,
            "created_at": int(now),
            "metadata": {},
        }

    def _check_character_source(self, body: JSON) -> None:
        if "url" in body and "from_task" in body:
            raise invalid("give exactly one of url or from_task")
        if "url" in body and not is_http_url(body["url"]):
            raise invalid("url must be the http(s) URL of a video")
        if "from_task" in body:
            source = self.lookup(body["from_task"]) if isinstance(body["from_task"], str) else None
            if source is None or source.kind != "video" or self.status_of(source)[0] != "completed":
                raise invalid(f"from_task must name a completed video task, got {json.dumps(body['from_task'])}")

    def lookup(self, task_id: str) -> SandboxTask | None:
        """The task with ``task_id``: from this process's memory, else from the store."""
        task = self.tasks.get(task_id)
        if task is None and self.store is not None:
            task = self.store.get(task_id)
            if task is not None:
                self.tasks[task_id] = task
        return task

    def _find(self, task_id: str, kind: TaskKind) -> SandboxTask:
        task = self.lookup(task_id)
        if task is None or task.kind != kind:
            raise _task_not_found()
        return task

    # HTTP layer

    def build_app(self) -> ASGIApp:
        """The Starlette app serving the simulation; errors answer with the gateway's envelope."""
        return Starlette(
            routes=[
                Route("/v1/videos/generations", self._create_endpoint, methods=["POST"]),
                Route("/v1/videos/generations/{task_id}", self._video_status_endpoint, methods=["GET"]),
                Route("/v1/characters_tasks/{task_id}", self._character_status_endpoint, methods=["GET"]),
                Route("/v1/videos/{task_id}/remix", self._remix_endpoint, methods=["POST"]),
                Route("/files/{name}", self._file_endpoint, methods=["GET"]),
            ],
            exception_handlers={SandboxError: _error_response, HTTPException: _error_response},
        )

    async def _create_endpoint(self, request: Request) -> Response:
        self._authorize(request)
        return JSONResponse(self.create(await _json_body(request)))

    async def _remix_endpoint(self, request: Request) -> Response:
        self._authorize(request)
        return JSONResponse(self.remix(request.path_params["task_id"], await _json_body(request)))

    async def _video_status_endpoint(self, request: Request) -> Response:
        self._authorize(request)
        return JSONResponse(self.video_status(request.path_params["task_id"], self._media_base(request)))

    async def _character_status_endpoint(self, request: Request) -> Response:
        self._authorize(request)
        return JSONResponse(self.character_status(request.path_params["task_id"], self._media_base(request)))

    async def _file_endpoint(self, request: Request) -> Response:
        task_id, _, suffix = request.path_params["name"].rpartition(".")
        if suffix == "mp4" or suffix == "jpg":
            return Response(self.media(task_id, suffix), media_type=_MEDIA_TYPES[suffix])
        raise SandboxError(404, "File not found", "not_found_error")

    def _authorize(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not secrets.compare_digest(given, f"Bearer {self.api_key}".encode()):
            raise SandboxError(401, "Authentication failed, please check your API key", "authentication_error")

    def _media_base(self, request: Request) -> str:
        return self.public_url or str(request.base_url).rstrip("/")


def _wants_thumbnail(task: SandboxTask) -> bool:
    metadata = task.request.get("metadata")
    return not (isinstance(metadata, dict) and metadata.get("thumbnail") is False)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise invalid("request body must be valid JSON") from None


async def _error_response(request: Request, exc: Exception) -> Response:
    """Answer a `SandboxError` or a routing miss (Starlette's 404 or 405) with the error envelope."""
    if isinstance(exc, HTTPException):
        exc = SandboxError(
            exc.status_code, f"Invalid URL ({request.method} {request.url.path})", "invalid_request_error"
        )
    assert isinstance(exc, SandboxError)
    return JSONResponse(exc.envelope(), status_code=exc.status)


# Identifiers and media


def _ulid(now: float) -> str:
    """26 Crockford base32 characters: 48 bits of milliseconds, then 80 random bits, like a ULID."""
    ms = int(now * 1000)
    stamp = "".join(_CROCKFORD[(ms >> shift) & 31] for shift in range(45, -1, -5))
    return stamp + "".join(secrets.choice(_CROCKFORD) for _ in range(16))


def _new_character() -> JSON:
    name = secrets.choice(_CHARACTER_NAMES)
    prefix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
    return {
        "id": f"ch_{secrets.token_hex(16)}",
        "display_name": name,
        "username": f"{prefix}.{name.lower().replace(' ', '_')[:10]}",
    }


@cache
def _asset(name: str) -> bytes:
    return resources.files("sora_mcp").joinpath("assets", name).read_bytes()


# Serving


@asynccontextmanager
async def serve_sandbox(
    gateway: SandboxGateway | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve a sandbox gateway (a new one by default) on loopback; yield its base URL.

    The URL also becomes the gateway's `public_url`, so media links point at this server.
    """
    if gateway is None:
        gateway = SandboxGateway()
    async with serve_app(gateway.app, host=host, port=port) as url:
        gateway.public_url = url
        yield url
