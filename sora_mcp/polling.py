"""Waiting for gateway tasks: one poll per task however many wait, and a bound on the polls in flight.

``SoraClient`` owns one :class:`Poller` (one per process, like the client), so every wait of the process goes
through it, whichever MCP connection (and ``TaskService``) it comes from:

* **Single flight per task.** The waits on one task id share a :class:`Watch`: one gateway GET at a time, on one
  cadence (about a second after the first read, growing x1.6 up to ``SORA_POLL_INTERVAL``, sooner when the
  gateway's ``estimated_time`` says so). 1,000 waits on one task make about one GET per interval, not 1,000. Each
  wait still has its own progress reports (one with each new state, and a heartbeat at least every
  ``heartbeat_seconds``) and its own deadline. There is no background task: whichever waiter finds a poll due and
  none in flight makes it; if it leaves mid-GET (cancelled, or its time is up), the others are woken and one of
  them takes over. A watch lives while someone waits on it.
* **A bound on polls in flight** across tasks (:data:`POLL_CONCURRENCY`, below the client's pooled connections,
  so creates always find one), and jitter on every poll's pause and on each wait's heartbeat phase, so that a
  burst of waits started in the same second does not poll or report in lock-step.

Knows nothing about MCP; the gateway read is injected (``SoraClient.get_task``).
"""

import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import anyio

from sora_mcp.errors import APIConnectionError, APIResponseError, RateLimitError, ServerError
from sora_mcp.models import Task, TaskKind

logger = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 1.0
"""Pause after the first read of a wait (at most ``SORA_POLL_INTERVAL``); a state younger than this (or than the
interval, if shorter) is fresh enough for a wait that joins a watch to start from."""
POLL_GROWTH = 1.6
"""Each pause between polls of a task is this much longer than the one before, up to ``SORA_POLL_INTERVAL``."""
HEARTBEAT_SECONDS = 2.0
"""Default longest gap between two progress reports during a wait (progress resets many clients' timeouts)."""
POLL_CONCURRENCY = 16
"""Gateway polls (the GETs of waits) in flight at once in this process, across all tasks. Half the client's
pooled connections (``GATEWAY_CONNECTIONS``, 32): however many tasks are waited on, creates and plain reads always
find a connection, and the gateway sees a bounded burst. Further polls queue, first come first served; only a
wait's first read still queued at the wait's deadline goes ahead outside the bound (it has nothing to return)."""
POLL_JITTER = 0.2
"""Each pause between polls is shortened by up to this fraction, at random: waits started together drift apart
instead of polling in lock-step (shortened, never lengthened: ``SORA_POLL_INTERVAL`` stays the longest pause)."""
HEARTBEAT_PHASE_JITTER = 0.5
"""The first heartbeat of a wait comes after ``heartbeat_seconds`` shortened by up to this fraction, at random, so
that the heartbeats of waits started together are spread over the period."""
WATCHES_LIMIT = 4096
"""Tasks shared watches are kept for at once; a wait beyond that polls on a watch of its own (still bounded by
:data:`POLL_CONCURRENCY`)."""

ProgressCallback = Callable[[Task | None, float], Awaitable[None]]
"""Called during a wait with the latest task (None before the first answer) and the seconds waited so far."""
Read = Callable[[str, TaskKind | None], Awaitable[Task]]
"""The gateway read of a task: ``(task_id, kind) -> Task``."""
TRANSIENT_POLL_ERRORS = (APIConnectionError, APIResponseError, RateLimitError, ServerError)
"""Failures of a poll after a wait's first read that end the wait with its last known state (``Waited.poll_error``);
other errors (the task is gone, the key was revoked) are raised."""


class Waited(NamedTuple):
    """The outcome of a wait: the latest state, and why polling stopped early if it did."""

    task: Task
    poll_error: str | None = None
    """A transient failure of a poll after the first read, which ended the wait with the last known state."""


def poll_pause(delay: float, eta: float | None, interval: float, rand: Callable[[], float]) -> tuple[float, float]:
    """The pause before the next poll of a task, and the ``delay`` to pass for the poll after that.

    ``delay`` grows by :data:`POLL_GROWTH` per poll; a gateway ``eta`` (seconds left) lets it jump to a third of
    that; ``interval`` (``SORA_POLL_INTERVAL``) caps it. The pause is that delay less up to :data:`POLL_JITTER`.
    """
    if eta is not None:
        delay = max(delay, eta / 3)
    delay = min(delay, interval)
    return delay * (1 - POLL_JITTER * rand()), delay * POLL_GROWTH


def heartbeat_phase(heartbeat_seconds: float, rand: Callable[[], float]) -> float:
    """Seconds before a wait's first heartbeat: at most ``heartbeat_seconds``, at least half of it."""
    return heartbeat_seconds * (1 - HEARTBEAT_PHASE_JITTER * rand())


class Watch:
    """The shared polling state of one task: its latest outcome, whether a poll is under way, when the next is due.

    Changed only by the waiter making a poll; every change wakes all the waiters (:meth:`notify`).
    """

    def __init__(self, task_id: str, kind: TaskKind | None, first_delay: float) -> None:
        self.task_id = task_id
        self.kind = kind
        self.waiters = 0
        self.latest: Task | None = None
        """The latest state read."""
        self.read_at = -math.inf
        """``anyio.current_time()`` when ``latest`` was read."""
        self.error: Exception | None = None
        """The failure of the latest poll, when it failed (``latest`` is then the state before it)."""
        self.outcomes = 0
        """Polls that ended with an answer or an error; a waiter compares it with the count it has seen."""
        self.polling = False
        """A waiter has taken the next poll: it is queued for a slot or its GET is under way."""
        self.sending = False
        """The GET of that poll is under way."""
        self.due = -math.inf
        """When the next poll is due (``anyio.current_time()``)."""
        self.delay = first_delay
        self._changed = anyio.Event()

    @property
    def changed(self) -> anyio.Event:
        """Set at the next change; take it before checking the state, then wait on it."""
        return self._changed

    def notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


class Poller:
    """The waits of one gateway client (see the module doc). ``read`` is the gateway read; ``rand`` (in [0, 1))
    draws the jitter; ``poll_concurrency`` bounds the polls in flight."""

    def __init__(
        self,
        read: Read,
        *,
        poll_interval: float,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        rand: Callable[[], float] = random.random,
        poll_concurrency: int = POLL_CONCURRENCY,
    ) -> None:
        self._read = read
        self._interval = poll_interval
        self._first_delay = min(FIRST_POLL_SECONDS, poll_interval)
        self._heartbeat_seconds = heartbeat_seconds
        self._rand = rand
        self._limiter = anyio.CapacityLimiter(poll_concurrency)
        self._watches: dict[str, Watch] = {}
        self._stopping = False
        self._waits: set[anyio.CancelScope] = set()

    def stop(self) -> None:
        """End every wait now (each returns its latest state, as if its time were up) and make later waits read
        the task once: the server is shutting down."""
        self._stopping = True
        for scope in self._waits:
            scope.cancel()

    def watching(self, task_id: str) -> int:
        """How many waits share the watch of ``task_id`` right now (0 when none)."""
        watch = self._watches.get(task_id)
        return 0 if watch is None else watch.waiters

    async def read(self, task_id: str, kind: TaskKind | None = None) -> Task:
        """Read the task once. When a wait's GET of it is under way, its answer (or error) is shared instead of
        sending another; otherwise a read of its own, outside the poll bound (it is not a wait's poll)."""
        watch = self._watches.get(task_id)
        if watch is not None and watch.sending:
            mark = watch.outcomes
            while watch.sending and watch.outcomes == mark:
                await watch.changed.wait()
            if watch.outcomes > mark:
                if watch.error is not None:
                    raise watch.error
                assert watch.latest is not None
                return watch.latest
        return await self._read(task_id, kind)

    async def wait(
        self,
        task_id: str,
        *,
        wait_seconds: float,
        on_progress: ProgressCallback | None = None,
        kind: TaskKind | None = None,
    ) -> Waited:
        """Wait until the task is finished or ``wait_seconds`` have passed; see ``SoraClient.wait_for_task``."""
        if wait_seconds <= 0 or self._stopping:
            return Waited(await self.read(task_id, kind))
        started = anyio.current_time()
        watch = self._join(task_id, kind)
        current: list[Task | None] = [None, None]  # the latest state; the one last reported beside the heartbeat
        outcome: Waited | Exception
        try:
            async with anyio.create_task_group() as group:
                if on_progress is not None:
                    group.start_soon(self._heartbeat, on_progress, current, started)
                try:
                    outcome = await self._follow(watch, started + wait_seconds, on_progress, current, started)
                except Exception as exc:  # raised below, unwrapped from the task group
                    outcome = exc
                group.cancel_scope.cancel()
        finally:
            self._leave(watch)
        if isinstance(outcome, Exception):
            raise outcome
        if on_progress is not None and outcome.task is not current[1]:  # the final state, unless just reported
            await on_progress(outcome.task, anyio.current_time() - started)
        return outcome

    # ------------------------------------------------------------------------------------------- internals

    def _join(self, task_id: str, kind: TaskKind | None) -> Watch:
        watch = self._watches.get(task_id)
        if watch is None:
            watch = Watch(task_id, kind, self._first_delay)
            if len(self._watches) < WATCHES_LIMIT:
                self._watches[task_id] = watch
        elif watch.kind is None:
            watch.kind = kind
        watch.waiters += 1
        return watch

    def _leave(self, watch: Watch) -> None:
        watch.waiters -= 1
        if watch.waiters == 0 and self._watches.get(watch.task_id) is watch:
            del self._watches[watch.task_id]

    async def _follow(
        self,
        watch: Watch,
        deadline: float,
        on_progress: ProgressCallback | None,
        current: list[Task | None],
        started: float,
    ) -> Waited:
        """One waiter's part: its first read, then the watch's states until the task ends or ``deadline``."""
        seen = await self._first_read(watch, deadline)
        latest = watch.latest
        assert latest is not None
        current[0] = latest
        if on_progress is not None:
            await on_progress(latest, anyio.current_time() - started)
            current[1] = latest
        poll_error: str | None = None
        with anyio.CancelScope(deadline=deadline) as scope:
            self._waits.add(scope)
            if self._stopping:
                scope.cancel()
            try:
                while not latest.is_terminal:
                    if watch.outcomes > seen:  # a poll (ours or another waiter's) ended
                        seen = watch.outcomes
                        if watch.error is not None:
                            if not isinstance(watch.error, TRANSIENT_POLL_ERRORS):
                                raise watch.error
                            poll_error = str(watch.error)
                            break
                        assert watch.latest is not None
                        latest = current[0] = watch.latest
                        if on_progress is not None:
                            await on_progress(latest, anyio.current_time() - started)
                            current[1] = latest
                    elif not watch.polling and anyio.current_time() >= watch.due:
                        await self._poll(watch)
                    else:
                        changed = watch.changed
                        with anyio.CancelScope(deadline=math.inf if watch.polling else watch.due):
                            await changed.wait()
            finally:
                self._waits.discard(scope)
        return Waited(latest, poll_error)

    async def _first_read(self, watch: Watch, deadline: float) -> int:
        """Wait for a state to start from: the watch's latest if fresh, else the answer of the GET under way, else
        a GET of our own. Returns the outcome count it is from; raises the error of that read.

        A wait has nothing to return before its first read, so that read is not cut at the wait's ``deadline``;
        but if it is still queued for a poll slot then, it reads outside the bound (a tool call is never held far
        past its ``wait_seconds`` by other tasks' polls)."""
        while True:
            fresh = anyio.current_time() - watch.read_at < self._first_delay
            if watch.latest is not None and watch.error is None and fresh:
                return watch.outcomes
            mark = watch.outcomes
            if watch.polling:
                changed = watch.changed
                # A poll still queued for a slot is waited for until our own deadline only: then we read.
                with anyio.CancelScope(deadline=math.inf if watch.sending else deadline) as queued:
                    await changed.wait()
                if queued.cancelled_caught and watch.outcomes == mark:
                    await self._read_outside_bound(watch)
            else:
                await self._poll(watch, queue_until=deadline)
            if watch.outcomes > mark:
                if watch.error is not None:
                    raise watch.error
                return watch.outcomes
            # the poll under way was given up without an answer (its waiter left): look again

    async def _poll(self, watch: Watch, *, queue_until: float = math.inf) -> None:
        """Read the task into the watch, within the bound on polls in flight (waiting for a slot until
        ``queue_until`` at most); wake every waiter when done, or when this waiter leaves before the answer (one
        of the others then takes over)."""
        watch.polling = True
        slot = False
        try:
            with anyio.CancelScope(deadline=queue_until):
                await self._limiter.acquire()
                slot = True
            if not slot:
                logger.info(
                    "No poll slot for %s before its wait's deadline: reading it outside the bound", watch.task_id
                )
            watch.sending = True
            try:
                task = await self._read(watch.task_id, watch.kind)
            except Exception as exc:
                if watch.latest is not None:
                    logger.warning("Poll of %s failed during a wait: %s", watch.task_id, exc)
                watch.error = exc
            else:
                watch.latest, watch.error = task, None
            now = anyio.current_time()
            eta = None if watch.latest is None else watch.latest.eta_seconds
            pause, watch.delay = poll_pause(watch.delay, eta, self._interval, self._rand)
            watch.read_at, watch.due = now, now + pause
            watch.outcomes += 1
        finally:
            if slot:
                self._limiter.release()
            watch.polling = watch.sending = False
            watch.notify()

    async def _read_outside_bound(self, watch: Watch) -> None:
        """The first read of a wait that joined a poll still queued for a slot at the wait's deadline: made now,
        outside the bound; its state goes to the watch (its error is this waiter's own, raised)."""
        logger.info("No poll slot for %s before its wait's deadline: reading it outside the bound", watch.task_id)
        task = await self._read(watch.task_id, watch.kind)
        watch.latest, watch.error, watch.read_at = task, None, anyio.current_time()
        watch.outcomes += 1
        watch.notify()

    async def _heartbeat(self, report: ProgressCallback, current: list[Task | None], started: float) -> None:
        await anyio.sleep(heartbeat_phase(self._heartbeat_seconds, self._rand))
        while True:
            await report(current[0], anyio.current_time() - started)
            await anyio.sleep(self._heartbeat_seconds)
