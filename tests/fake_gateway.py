"""A scriptable fake of the dashlyai gateway for tests, built on the sandbox simulation.

`FakeGateway` is a `SandboxGateway` that records every request it receives and can script
faults, consumed in order, each matched by HTTP method and path (a `str` prefix or a compiled
regex that must match the whole path):

    fake = FakeGateway(clock=ManualClock())
    fake.fault("POST", "/v1/videos/generations", status=429, headers={"Retry-After": "0"})
    fake.fault("GET", "/v1/videos/generations/", status=502, text="<html>Bad gateway</html>", content_type="text/html")
    fake.fault("GET", re.compile(r"/v1/characters_tasks/\\w+"), status=200, text="{not json")
    fake.hang("GET", "/v1/videos/generations/")  # answers after an hour, or never if the client gives up
    fake.fail_after_create(status=500)  # the task is created, the response is a 500
    fake.fault("GET", f"/files/{task_id}.mp4", status=410)  # the media link has expired
    fake.stream_file(f"/files/{task_id}.mp4", body=big, declare_length=False)  # chunked, no Content-Length
    fake.stream_file(f"/files/{task_id}.mp4", body=data, drop_after=100_000)  # the connection breaks mid-body

The sandbox's own behaviours stay available: a prompt containing `[fail]` makes its task fail,
`metadata.thumbnail: false` leaves the thumbnail out, and media links answer 403 once expired.
A dropped connection (`drop_after`) only looks like one over real HTTP (`serve_app`): through
`httpx2.ASGITransport` the body is buffered and the exception reaches the client as is.
"""

import json
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import anyio
from anyio.from_thread import start_blocking_portal
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sora_mcp.embedded import serve_app
from sora_mcp.sandbox import Dialect, SandboxError, SandboxGateway

_ERRORS = {
    400: ("Invalid request parameters", "invalid_request_error"),
    401: ("Authentication failed, please check your API key", "authentication_error"),
    402: ("Insufficient account balance, please top up and try again", "payment_required"),
    403: ("Permission denied", "permission_error"),
    404: ("Task not found", "not_found_error"),
    429: ("Too many requests, please try again later", "rate_limit_error"),
}


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the fake gateway received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    json: Any
    """The body parsed as JSON, or None when it is empty or not JSON."""
    client: tuple[str, int] | None
    """The client's (host, port), from the ASGI scope."""
    received_at: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the request arrived."""


@dataclass
class Fault:
    """A scripted deviation for matching requests; see `FakeGateway.fault` and `FakeGateway.hang`."""

    method: str
    path: str | re.Pattern[str]
    times: int
    response: ASGIApp | None
    """The response to answer with; None answers normally (after `delay`)."""
    delay: float = 0.0
    after_processing: bool = False
    """Let the gateway process the request first, then answer `response` instead of its answer."""

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        if isinstance(self.path, str):
            return path.startswith(self.path)
        return self.path.fullmatch(path) is not None


class FakeGateway(SandboxGateway):
    """The sandbox gateway plus a request log, scripted faults and test-only options."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        video_seconds: float = 8.0,
        character_seconds: float = 4.0,
        dialect: Dialect = "toapis",
        api_key: str | None = None,
        public_url: str = "",
        characters_on_video_endpoint: bool = False,
    ) -> None:
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        """Faults not yet used up."""
        self.characters_on_video_endpoint = characters_on_video_endpoint
        """Serve character tasks on `GET /v1/videos/generations/{id}` too (the docs are ambiguous)."""
        super().__init__(
            clock=clock,
            video_seconds=video_seconds,
            character_seconds=character_seconds,
            dialect=dialect,
            api_key=api_key,
            public_url=public_url,
        )

    def fault(
        self,
        method: str,
        path: str | re.Pattern[str],
        *,
        status: int = 500,
        json: Any = None,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        times: int = 1,
        after_processing: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with `status` and a body.

        The body is `text`, or raw `content` bytes, or `json`, or by default the gateway's error
        envelope for `status`. With `after_processing`, the gateway handles the request first (a
        create really creates its task) and only the response is replaced.
        """
        if sum(value is not None for value in (json, text, content)) > 1:
            raise ValueError("give one of json, text or content")
        if content is not None:
            body, media_type = content, content_type or "application/octet-stream"
        elif text is not None:
            body, media_type = text.encode(), content_type or "text/plain"
        else:
            body = _dumps(_error_envelope(status) if json is None else json)
            media_type = content_type or "application/json"
        response = Response(body, status_code=status, headers=headers, media_type=media_type)
        self._add(Fault(method.upper(), path, times, response, after_processing=after_processing))

    def stream_file(
        self,
        path: str | re.Pattern[str],
        body: bytes,
        *,
        content_type: str = "video/mp4",
        declare_length: bool = True,
        drop_after: int | None = None,
        chunk_size: int = 64 * 1024,
        chunk_delay: float = 0.0,
        times: int = 1,
        method: str = "GET",
    ) -> None:
        """Answer the next `times` GETs (or `method` requests) of `path` with `body`, sent in chunks as a media
        host streams it.

        Without `declare_length` there is no Content-Length (chunked encoding). With `drop_after`,
        the connection breaks once that many bytes were sent (see `StreamedBody`). `chunk_delay`
        pauses before each chunk, for a download that takes a while.
        """
        response = StreamedBody(body, content_type, declare_length, drop_after, chunk_size, chunk_delay)
        self._add(Fault(method.upper(), path, times, response))

    def hang(self, method: str, path: str | re.Pattern[str], seconds: float = 3600, times: int = 1) -> None:
        """Hold the next `times` matching requests for `seconds`, then answer normally.

        A client that gives up first (a timeout) disconnects, and the request is dropped unanswered.
        """
        self._add(Fault(method.upper(), path, times, response=None, delay=seconds))

    def fail_after_create(self, status: int = 500, times: int = 1) -> None:
        """Create the next `times` tasks for real but answer `status`: the "may have been billed" case."""
        self.fault("POST", re.compile("/v1/videos/generations"), status=status, times=times, after_processing=True)

    def video_status(self, task_id: str, media_base: str) -> dict[str, Any]:
        task = self.tasks.get(task_id)
        if self.characters_on_video_endpoint and task is not None and task.kind == "character":
            return self.describe(task, media_base)
        return super().video_status(task_id, media_base)

    def build_app(self) -> ASGIApp:
        """The sandbox app wrapped to record requests and play scripted faults."""
        gateway = super().build_app()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await gateway(scope, receive, send)
                return
            request = Request(scope, receive)
            body = await request.body()
            self.requests.append(_record(request, body))
            replay = _replay(body, receive)
            fault = self._take_fault(request.method, request.url.path)
            if fault is None:
                await gateway(scope, replay, send)
                return
            if fault.delay and await _disconnects_within(fault.delay, receive):
                return
            if fault.response is None:
                await gateway(scope, replay, send)
                return
            if fault.after_processing:
                await gateway(scope, replay, _discard)
            await fault.response(scope, receive, send)

        return app

    def _add(self, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        self.faults.append(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None


class ConnectionDropped(Exception):
    """Raised by `StreamedBody` mid-response: the ASGI server then closes the connection unfinished."""


@dataclass
class StreamedBody:
    """An ASGI response sending `body` in `chunk_size` pieces, optionally without Content-Length, and
    optionally breaking the connection (raising `ConnectionDropped`) after `drop_after` bytes."""

    body: bytes
    content_type: str = "video/mp4"
    declare_length: bool = True
    drop_after: int | None = None
    chunk_size: int = 64 * 1024
    chunk_delay: float = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", self.content_type.encode())]
        if self.declare_length:
            headers.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        end = len(self.body) if self.drop_after is None else min(self.drop_after, len(self.body))
        for start in range(0, end, self.chunk_size):
            chunk = self.body[start : min(start + self.chunk_size, end)]
            if self.chunk_delay:
                await anyio.sleep(self.chunk_delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.drop_after is not None:
            raise ConnectionDropped(f"connection dropped after {end} of {len(self.body)} bytes")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class ManualClock:
    """A clock for `SandboxGateway(clock=...)` that moves only when told to."""

    def __init__(self, start: float = 1_768_380_222.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def serve_in_thread(app: ASGIApp) -> Iterator[str]:
    """Serve an ASGI app over real loopback HTTP from an event loop in a daemon thread; yield its base URL."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(serve_app(app)) as url:
        yield url


def refused_url() -> str:
    """A loopback URL that refuses connections: the port was free a moment ago and nothing listens on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _error_envelope(status: int) -> dict[str, Any]:
    message, error_type = _ERRORS.get(status, (HTTPStatus(status).phrase, "server_error"))
    return SandboxError(status, message, error_type).envelope()


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _record(request: Request, body: bytes) -> RecordedRequest:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return RecordedRequest(
        method=request.method,
        path=request.url.path,
        query=dict(request.query_params),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        json=parsed,
        client=(request.client.host, request.client.port) if request.client else None,
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then defers to the real one."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _disconnects_within(seconds: float, receive: Receive) -> bool:
    """Wait up to `seconds`; True if the client disconnected meanwhile."""
    with anyio.move_on_after(seconds):
        while (await receive())["type"] != "http.disconnect":
            pass
        return True
    return False


async def _discard(message: Message) -> None:
    """A `send` that drops the response."""
