"""Async client of the Sora-2 gateway: create tasks, read them, wait for them. Knows nothing about MCP.

One ``SoraClient`` wraps one ``httpx2.AsyncClient`` for the life of the process (connection reuse). Retries
follow one rule, written down in :meth:`SoraClient._send`: a read is retried on anything transient; a create is
retried only when the gateway surely did not receive it (no connection was made, or it answered 429), because a
second POST after a lost answer could create, and bill, a second task. Waits go through the client's one
:class:`~sora_mcp.polling.Poller`: the waits on a task share its polls, and polls in flight are bounded.
"""

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

import anyio
import httpx2

from sora_mcp import __version__
from sora_mcp.answers import MAX_ANSWER_BYTES, AnswerTooLargeError, read_capped, read_json
from sora_mcp.config import Settings
from sora_mcp.create_requests import CreateRequest
from sora_mcp.errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    CreateOutcomeUnknownError,
    MissingAPIKeyError,
    NotFoundError,
)
from sora_mcp.models import STATUS_PATHS, Task, TaskKind, is_safe_task_id, parse_task
from sora_mcp.polling import HEARTBEAT_SECONDS, Poller
from sora_mcp.polling import ProgressCallback as ProgressCallback  # re-exported: the services' name for it
from sora_mcp.polling import Waited as Waited

logger = logging.getLogger(__name__)

USER_AGENT = f"sora-mcp/{__version__}"

MAX_BACKOFF_SECONDS = 8.0
MAX_RETRY_AFTER_SECONDS = 30.0
"""A ``Retry-After`` longer than this is not waited out inside a tool call: the error tells the agent instead."""
KNOWN_KINDS_LIMIT = 4096
GATEWAY_CONNECTIONS = 32

RetryPolicy = Literal["read", "create"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(OrderedDict[K, V], Generic[K, V]):
    """A dict that keeps the ``limit`` most recently written keys (a small LRU of what this process saw)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def retry_delay(
    attempt: int, retry_after: float | None, *, base: float, rand: Callable[[], float] = random.random
) -> float:
    """Pause before retry number ``attempt`` (0-based): the gateway's ``Retry-After`` when given, else
    exponential back-off ``base * 2**attempt`` capped at 8 s, with up to 25 % downward jitter."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_SECONDS)
    return min(base * 2.0**attempt, MAX_BACKOFF_SECONDS) * (1 - 0.25 * rand())


class SoraClient:
    """Client of the gateway API. Use as ``async with SoraClient(settings) as client:``.

    ``http_client`` may be injected (tests pass one over ``httpx2.ASGITransport``); it is then not closed here.
    ``base_url`` overrides ``settings.base_url`` (the sandbox passes its own address); ``sandbox`` lifts the
    API-key requirement. ``heartbeat_seconds`` is the longest gap between two progress reports of a wait;
    ``rand`` (in [0, 1)) draws the jitter of poll pauses and heartbeat phases.
    Returned tasks are facts only: the MCP face adds hints and poll advice (``server/guidance.py``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        base_url: str | None = None,
        sandbox: bool = False,
        clock: Callable[[], float] = time.time,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._sandbox = sandbox
        self._clock = clock
        self._base_url = (base_url or settings.base_url).rstrip("/")
        self._owns_http = http_client is None
        self._http_client = http_client
        self._known_kinds: BoundedDict[str, TaskKind] = BoundedDict(KNOWN_KINDS_LIMIT)
        self._secret = settings.maskable_key
        self._requests_in_flight = 0
        self.poller = Poller(
            self._read_for_poller, poll_interval=settings.poll_interval, heartbeat_seconds=heartbeat_seconds, rand=rand
        )
        """The waits of this client: one poll per task however many wait, a bound on polls in flight."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http and self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None

    @property
    def http(self) -> httpx2.AsyncClient:
        """The one HTTP client of this process, also used to fetch result media (``download.py``).

        Made on first use: building its TLS context takes tens of milliseconds that start-up (``initialize``,
        ``tools/list``) need not wait for.
        """
        if self._http_client is None:
            self._http_client = httpx2.AsyncClient(
                # Connecting (and waiting for a pooled connection) gets at most 90 % of SORA_TIMEOUT, so that a
                # connection never made is reported as such (a create that surely did not leave is retried),
                # before the whole-request deadline of _attempt ends the call.
                timeout=httpx2.Timeout(
                    self._settings.timeout,
                    connect=min(0.9 * self._settings.timeout, 10.0),
                    pool=0.9 * self._settings.timeout,
                ),
                # 32 connections carry a team's polls (each holds one only while a GET is in flight); a larger pool
                # costs every request a scan of its connections (benchmarked: 100 made calls 40 % dearer).
                limits=httpx2.Limits(
                    max_connections=GATEWAY_CONNECTIONS, max_keepalive_connections=GATEWAY_CONNECTIONS
                ),
            )
        return self._http_client

    def media_headers(self, url: str) -> dict[str, str]:
        """Headers for fetching a result file. The API key goes only to the gateway's own origin: media URLs
        usually point at another host (``files.dashlyai.cc``), which must never see it."""
        headers = {"User-Agent": USER_AGENT}
        if _same_origin(url, self._base_url):
            headers.update(self._authorization())
        return headers

    @property
    def requests_in_flight(self) -> int:
        """Gateway requests (with their retries) under way; a graceful shutdown lets them finish."""
        return self._requests_in_flight

    def stop_waiting(self) -> None:
        """End every ``wait_for_task`` now and make later ones read the task once: the server is shutting down.

        A wait ended this way returns the task's latest state, as if its time were up; the caller polls again.
        """
        self.poller.stop()

    # ------------------------------------------------------------------------------------------- public API

    async def create(self, request: CreateRequest, payload: dict[str, Any] | None = None) -> Task:
        """Submit a create (a video, a remix or a character) under the create retry rule.

        ``payload`` is ``request.to_payload()`` when the caller built it already (the journal records the same
        one). Raises ``CreateOutcomeUnknownError`` when the task may exist without us knowing its id.
        """
        body = request.to_payload() if payload is None else payload
        kind = request.kind
        try:
            raw = await self._send("POST", request.endpoint, body=body, policy="create")
        except (APIConnectionError, APIResponseError) as exc:
            if isinstance(exc, APIResponseError) or exc.request_sent:
                raise CreateOutcomeUnknownError(kind, exc) from exc
            raise
        except APIStatusError as exc:
            if exc.status_code in (400, 401, 402, 403, 404, 422, 429):
                raise  # a definite refusal: nothing was created
            raise CreateOutcomeUnknownError(kind, exc) from exc
        task_id = raw.get("id") or raw.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise CreateOutcomeUnknownError(
                kind, APIResponseError("the gateway accepted the request but returned no task id", status_code=200)
            )
        if not is_safe_task_id(task_id):  # the same rule as ids from the agent: it goes into URL paths later
            shown = repr(task_id[:60]) + ("..." if len(task_id) > 60 else "")
            raise CreateOutcomeUnknownError(
                kind, APIResponseError(f"the gateway answered with an invalid task id {shown}", status_code=200)
            )
        task = parse_task(raw, kind, now=self._clock(), task_id=task_id)
        if task.kind != kind:  # a fresh create answer cannot show a character result yet; trust the request
            task = task.model_copy(update={"kind": kind})
        self._known_kinds.remember(task_id, kind)
        return task

    async def get_task(self, task_id: str, *, kind: TaskKind | None = None) -> Task:
        """Read a task. ``kind`` picks its endpoint when the caller knows it (a journal, say); otherwise the
        endpoint that last answered for this id is used, and for a task never seen the video endpoint is tried,
        then the character one. The endpoint that answered is remembered, not the kind the body claims: one odd
        answer (a video reported as ``result.type: "character"``) must not send every later read to the wrong
        endpoint.
        """
        known = kind or self._known_kinds.get(task_id)
        kinds: tuple[TaskKind, ...] = (known,) if known else ("video", "character")
        for index, endpoint in enumerate(kinds):
            try:
                raw = await self._send("GET", STATUS_PATHS[endpoint].format(task_id), policy="read")
            except NotFoundError:
                if index == len(kinds) - 1:
                    raise
                continue
            task = parse_task(raw, endpoint, now=self._clock(), task_id=task_id)
            self._known_kinds.remember(task_id, endpoint)
            return task
        raise AssertionError("unreachable")  # pragma: no cover

    async def wait_for_task(
        self,
        task_id: str,
        *,
        wait_seconds: float,
        on_progress: ProgressCallback | None = None,
        kind: TaskKind | None = None,
    ) -> Waited:
        """Poll until the task is finished or ``wait_seconds`` have passed, and return its latest state.

        Polls start about a second apart and back off to ``SORA_POLL_INTERVAL``, sooner when the gateway's
        ``estimated_time`` says the end is near, each pause shortened by up to 20 % at random. Waits on the same
        task share one poll (``polling.py``): a wait that joins starts from a state read within the last second or
        from the GET under way, and polls of all tasks in flight at once are bounded (``POLL_CONCURRENCY``).
        ``on_progress`` is called with the first answer, with each new state, and at least every
        ``heartbeat_seconds``, even while a slow request is in flight (with ``None`` until the first answer). A
        transient gateway failure after the first read ends the wait early with the last known state and
        ``Waited.poll_error`` instead of failing the call. Errors of the first read propagate (to every wait that
        shared it), and so does cancellation. ``kind`` is as in :meth:`get_task`. :meth:`stop_waiting` ends the
        wait after the first read, like a timeout. With ``wait_seconds`` 0 the task is read once: a GET of it
        under way for a wait is shared, else it is a read of its own.
        """
        return await self.poller.wait(task_id, wait_seconds=wait_seconds, on_progress=on_progress, kind=kind)

    async def _read_for_poller(self, task_id: str, kind: TaskKind | None) -> Task:
        return await self.get_task(task_id, kind=kind)

    def known_kind(self, task_id: str) -> TaskKind | None:
        """The kind of a task this client created or read (its endpoint), if it still remembers it."""
        return self._known_kinds.get(task_id)

    # ------------------------------------------------------------------------------------------- internals

    def _request_headers(self) -> dict[str, str]:
        """Per-request headers, so an injected ``http_client`` sends them too."""
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",  # the encodings answers.read_capped inflates within its cap
            **self._authorization(),
        }
        if "Authorization" not in headers and not self._sandbox:
            raise MissingAPIKeyError()
        return headers

    def _authorization(self) -> dict[str, str]:
        """The bearer header of the API key (none without a key): sent to the gateway's own origin only."""
        key = self._settings.api_key
        return {} if key is None else {"Authorization": f"Bearer {key.get_secret_value()}"}

    async def _send(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, policy: RetryPolicy
    ) -> dict[str, Any]:
        """One gateway call with the retry rule of ``policy``; returns the JSON object of a 2xx answer."""
        headers = self._request_headers()
        self._requests_in_flight += 1
        try:
            return await self._send_with_retries(method, path, body=body, headers=headers, policy=policy)
        finally:
            self._requests_in_flight -= 1

    async def _send_with_retries(
        self, method: str, path: str, *, body: dict[str, Any] | None, headers: dict[str, str], policy: RetryPolicy
    ) -> dict[str, Any]:
        url = self._base_url + path
        attempt = 0
        while True:
            try:
                return await self._attempt(method, url, body=body, headers=headers)
            except APIError as exc:
                retryable, retry_after = _retry_decision(exc, policy)
                if not retryable or attempt >= self._settings.max_retries:
                    raise
                if retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
                    raise
                delay = retry_delay(attempt, retry_after, base=self._settings.retry_backoff)
                logger.info("%s %s failed (%s); retry %d in %.2fs", method, path, exc, attempt + 1, delay)
                attempt += 1
                await anyio.sleep(delay)

    async def _attempt(
        self, method: str, url: str, *, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        """One request. ``SORA_TIMEOUT`` bounds all of it (a body trickling a byte at a time included), and the
        answer is read up to ``MAX_ANSWER_BYTES`` decoded bytes."""
        try:
            with anyio.fail_after(self._settings.timeout):
                async with self.http.stream(method, url, json=body, headers=headers) as response:
                    content = await read_capped(response, MAX_ANSWER_BYTES)
        except TimeoutError:
            raise APITimeoutError(
                f"the gateway did not answer within {self._settings.timeout:g} s", request_sent=True
            ) from None
        except AnswerTooLargeError as exc:
            raise APIResponseError(str(exc), status_code=exc.status_code) from None
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            raise APIConnectionError(
                f"could not connect to the gateway at {self._base_url} ({_describe_transport(exc)})", request_sent=False
            ) from None
        except httpx2.TimeoutException:
            raise APITimeoutError(
                f"the gateway did not answer within {self._settings.timeout:g} s", request_sent=True
            ) from None
        except httpx2.TransportError as exc:
            raise APIConnectionError(
                f"the connection to the gateway broke ({_describe_transport(exc)})", request_sent=True
            ) from None
        return read_json(response, content, self._clock(), secret=self._secret)


def _same_origin(url: str, base_url: str) -> bool:
    try:
        a, b = httpx2.URL(url), httpx2.URL(base_url)
    except httpx2.InvalidURL:
        return False
    return (a.scheme, a.host.lower(), a.port) == (b.scheme, b.host.lower(), b.port)


def _describe_transport(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _retry_decision(exc: APIError, policy: RetryPolicy) -> tuple[bool, float | None]:
    """Whether ``exc`` may be retried under ``policy``, and the gateway's Retry-After hint."""
    if isinstance(exc, APIStatusError):
        if exc.status_code == 429:
            return True, exc.retry_after
        retryable_read = exc.status_code == 408 or exc.status_code >= 500
        return policy == "read" and retryable_read, exc.retry_after
    if isinstance(exc, APIConnectionError):
        return policy == "read" or not exc.request_sent, None
    if isinstance(exc, APIResponseError):
        return policy == "read", None
    return False, None
