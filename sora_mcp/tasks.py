"""Tasks with a memory: the gateway client wrapped in the task journal. Knows nothing about MCP.

``TaskService`` is what the tools call:

* ``create``: duplicate check and write-ahead in the journal, then the POST, then the task id into the journal
  (or "outcome unknown", or nothing when the gateway surely refused);
* ``get_task``: the journal picks the endpoint, the client reads (and waits), the journal keeps the state;
* ``list_tasks``: the journal's rows, optionally re-read from the gateway.

``TaskBook`` is the read-only half (the journal described as ``Task`` results), which needs no gateway client.

The money rule when the journal fails: if the write-ahead cannot be recorded although the journal worked earlier
in this process, nothing is sent (a transient fault; trying again is safe and free). If the journal has not
worked since start-up (a read-only home, say; the log said so at start), creates go ahead and their result
says they are not recorded: refusing every create would make the server useless until someone fixes the file.
"""

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from sora_mcp.client import MAX_RETRY_AFTER_SECONDS, ProgressCallback, SoraClient
from sora_mcp.config import Settings
from sora_mcp.errors import CreateOutcomeUnknownError, JournalError, SoraError
from sora_mcp.journal import Journal, JournalEntry, Submission, task_snapshot
from sora_mcp.models import (
    CreateRequest,
    RemixRequest,
    Task,
    TaskKind,
    TaskStatus,
    VideoRequest,
    format_utc,
    with_guidance,
)

logger = logging.getLogger(__name__)

REFRESH_CONCURRENCY = 4
"""Gateway reads at once during ``list_tasks(refresh=True)``."""
RECORDED_LIMIT = 4096
"""Tasks whose last recorded state this process keeps in memory."""
CLOCK_SKEW_SECONDS = 60.0
"""Allowed difference between our clock and the gateway's when matching a task to a lost submission."""


def gateway_scope(settings: Settings) -> str:
    """The gateway a journal row belongs to: rows of other gateways are neither listed nor reused.

    A sandbox's tasks live only as long as its simulated gateway, so each sandbox server gets a scope of its own.
    """
    return f"sandbox:{secrets.token_hex(8)}" if settings.sandbox else settings.base_url


def in_flight_seconds(settings: Settings) -> float:
    """Longest time a create request can take, retries included; a ``submitting`` row older than this was
    abandoned (its process stopped before the answer)."""
    return (settings.timeout + MAX_RETRY_AFTER_SECONDS) * (settings.max_retries + 1)


@dataclass(frozen=True)
class TaskBook:
    """The journal of one gateway, read as ``Task`` results with hints. Never calls the gateway."""

    journal: Journal
    gateway: str
    in_flight_seconds: float
    sandbox: bool = False
    clock: Callable[[], float] = time.time

    @classmethod
    def for_settings(
        cls, journal: Journal, settings: Settings, *, clock: Callable[[], float] = time.time
    ) -> "TaskBook":
        return cls(journal, gateway_scope(settings), in_flight_seconds(settings), settings.sandbox, clock)

    async def recent(
        self, *, limit: int = 20, kind: TaskKind | None = None, status: TaskStatus | None = None
    ) -> list[Task]:
        """The latest tasks and submissions, newest first, with their last known state."""
        entries = await self.journal.recent(gateway=self.gateway, limit=limit, kind=kind, status=status)
        return [self.describe(entry) for entry in entries]

    def describe(self, entry: JournalEntry, *, note: str = "") -> Task:
        """A journal row as a ``Task`` whose hint says what the row means now."""
        now = self.clock()
        task = entry.task()
        if entry.outcome_unknown:
            hint = self._unknown_hint(entry, now)
        else:
            task = with_guidance(task, now=now)
            hint = task.hint
            if task.status == "completed" and task.video_url and task.expires_at and task.expires_at < now:
                hint = (
                    f"The video was ready, but its URL expired at {format_utc(task.expires_at)}: it cannot be "
                    "downloaded any more."
                )
            elif not task.is_terminal:
                hint = f"Last known state, from {format_utc(entry.updated_at)}. " + hint
        if self.sandbox:
            hint = "[Sandbox: simulated task, nothing was billed] " + hint
        return task.model_copy(update={"hint": note + hint, "sandbox": True if self.sandbox else None})

    def _unknown_hint(self, entry: JournalEntry, now: float) -> str:
        noun = entry.kind
        tool = entry.tool or f"create_{entry.kind}"
        sent = format_utc(entry.submitted_at or entry.recorded_at)
        in_flight = now - (entry.submitted_at or 0) < self.in_flight_seconds
        if entry.state == "submitting" and in_flight and entry.sender_alive:
            return (
                f"This {noun} request is being sent right now (by this or another sora-mcp process, since {sent}). "
                "Call list_tasks again in a few seconds to get its task_id; do not create it again."
            )
        reason = entry.unknown_reason or "the process that sent it stopped before the gateway answered"
        return (
            f"The outcome of this {noun} request, sent at {sent}, is unknown ({reason}): the gateway may have "
            "created, and billed, a task whose id never arrived. The gateway cannot list tasks, so sora-mcp cannot "
            "check: tell the user, who can look for the task in the gateway's dashboard; if they find its id, call "
            f"get_task with it and the journal links it to this request. Only if the user wants a new task anyway, "
            f"call {tool} again with allow_duplicate=true (it costs money again)."
        )


class TaskService:
    """The tools' way to the gateway: ``SoraClient`` calls recorded in the task journal."""

    def __init__(self, client: SoraClient, book: TaskBook, *, duplicate_window: float) -> None:
        self.client = client
        self.book = book
        self._journal = book.journal
        self._window = duplicate_window
        self._link_window = book.in_flight_seconds + CLOCK_SKEW_SECONDS
        self._recorded: OrderedDict[str, str] = OrderedDict()
        """task_id -> the snapshot this process last recorded: a poll that saw nothing new costs no journal write
        (a thread hop and a write transaction, most of a poll's time). The client remembers each task's kind."""

    # ------------------------------------------------------------------------------------------- create

    async def create(self, request: CreateRequest, *, allow_duplicate: bool = False) -> Task:
        """Create a task unless the same request was made within the duplicate window (then return that one).

        Raises the client's errors; ``CreateOutcomeUnknownError.journaled`` tells whether the journal holds the
        submission. Raises ``JournalError`` without sending anything when the write-ahead fails (see module doc).
        """
        submission = Submission.of(request)
        note = ""
        row_id: int | None = None
        try:
            claim = await self._journal.claim(
                submission, gateway=self.book.gateway, window=0.0 if allow_duplicate else self._window
            )
        except JournalError as exc:
            if self._journal.ever_opened:
                raise JournalError(
                    f"Nothing was sent to the gateway, so nothing was billed: sora-mcp does not spend money on a "
                    f"task it cannot record. {exc} Then call {submission.tool} again.",
                    path=exc.path,
                ) from exc
            logger.warning("Creating a %s task without recording it: %s", submission.kind, exc)
            note = f" Note: this task is not recorded in the task journal ({exc}), so keep its task_id."
        else:
            if claim.duplicate:
                return await self._reuse(claim.entry, submission)
            row_id = claim.entry.row_id

        try:
            if isinstance(request, VideoRequest):
                task = await self.client.create_video(request)
            elif isinstance(request, RemixRequest):
                task = await self.client.remix_video(request)
            else:
                task = await self.client.create_character(request)
        except CreateOutcomeUnknownError as exc:
            if row_id is not None:
                await self._record_unknown(row_id, str(exc.cause))
                exc.journaled = True
            raise
        except SoraError:
            if row_id is not None:
                await self._discard(row_id)
            raise
        except BaseException:  # cancelled (or a bug) while the request may have been on its way
            if row_id is not None:
                with anyio.CancelScope(shield=True):
                    await self._record_unknown(row_id, "the create call was cancelled before the gateway answered")
            raise

        if row_id is not None:
            try:
                await self._journal.record_created(row_id, task)
            except JournalError as exc:
                logger.error("Task %s was created but the journal could not record it: %s", task.task_id, exc)
                note = f" Note: the task journal could not record this task ({exc}), so keep its task_id."
        return task.model_copy(update={"hint": task.hint + note}) if note else task

    async def _reuse(self, entry: JournalEntry, submission: Submission) -> Task:
        """The answer to a duplicate request: the earlier task (freshly read when possible), marked ``reused``."""
        ago = _ago(self.book.clock() - (entry.submitted_at or entry.recorded_at))
        again = (
            f"Only if the user wants another one on purpose, call {submission.tool} with allow_duplicate=true "
            "(it costs money again)."
        )
        if entry.outcome_unknown or entry.task_id is None:
            task = self.book.describe(entry)
            hint = f"Nothing was sent: an identical {submission.tool} request was made {ago}. {task.hint}"
            if "allow_duplicate" not in hint:
                hint += " " + again
        else:
            task = await self._refreshed(entry)
            hint = (
                f"Nothing was sent and nothing billed again: an identical {submission.tool} request was made {ago}, "
                f"and this is its task. {task.hint} {again}"
            )
        submitted_at = None if entry.submitted_at is None else int(entry.submitted_at)
        return task.model_copy(update={"reused": True, "hint": hint, "submitted_at": submitted_at, "prompt": None})

    async def _refreshed(self, entry: JournalEntry) -> Task:
        """The task of ``entry`` read from the gateway now, or its last known state if that read fails."""
        assert entry.task_id is not None
        try:
            task = await self.client.get_task(entry.task_id, kind=entry.kind)
        except SoraError as exc:
            logger.warning("Reading task %s failed; using its last known state: %s", entry.task_id, exc)
            return self.book.describe(entry, note=f"Could not read it just now ({exc}). ")
        await self._observe(task)
        return task

    async def _record_unknown(self, row_id: int, reason: str) -> None:
        try:
            await self._journal.record_unknown(row_id, reason)
        except JournalError as exc:  # the row stays 'submitting', which list_tasks shows as unknown too
            logger.error("Could not mark journal row %d as outcome unknown: %s", row_id, exc)

    async def _discard(self, row_id: int) -> None:
        try:
            await self._journal.discard(row_id)
        except JournalError as exc:
            logger.error("Could not remove journal row %d of a refused create: %s", row_id, exc)

    # ------------------------------------------------------------------------------------------- reads

    async def get_task(
        self, task_id: str, *, wait_seconds: float = 0, on_progress: ProgressCallback | None = None
    ) -> Task:
        """Read (and optionally wait for) a task; the journal picks the endpoint and keeps the state seen."""
        kind = await self._known_kind(task_id)
        task = await self.client.wait_for_task(task_id, wait_seconds=wait_seconds, on_progress=on_progress, kind=kind)
        return await self._observe(task)

    async def task_state(self, task_id: str) -> Task:
        """The task read from the gateway, or, when that fails and the journal knows it, its last known state."""
        try:
            return await self.get_task(task_id)
        except SoraError as exc:
            try:
                entry = await self._journal.get(task_id)
            except JournalError:
                entry = None
            if entry is None:
                raise
            return self.book.describe(entry, note=f"Reading the gateway failed ({exc}). ")

    async def list_tasks(
        self,
        *,
        limit: int = 20,
        kind: TaskKind | None = None,
        status: TaskStatus | None = None,
        refresh: bool = False,
    ) -> list[Task]:
        """Recent tasks, newest first; with ``refresh``, unfinished ones are read from the gateway first."""
        entries = await self._journal.recent(gateway=self.book.gateway, limit=limit, kind=kind, status=status)
        if not refresh:
            return [self.book.describe(entry) for entry in entries]
        results: list[Task | None] = [None] * len(entries)
        limiter = anyio.CapacityLimiter(REFRESH_CONCURRENCY)

        async def refresh_one(index: int, entry: JournalEntry) -> None:
            async with limiter:
                task = await self._refreshed(entry)
            submitted_at = None if entry.submitted_at is None else int(entry.submitted_at)
            results[index] = task.model_copy(update={"prompt": entry.prompt, "submitted_at": submitted_at})

        async with anyio.create_task_group() as group:
            for index, entry in enumerate(entries):
                if entry.task_id is not None and not (entry.snapshot and entry.snapshot.is_terminal):
                    group.start_soon(refresh_one, index, entry)
                else:
                    results[index] = self.book.describe(entry)
        return [task for task in results if task is not None]

    async def _known_kind(self, task_id: str) -> TaskKind | None:
        if (known := self.client.known_kind(task_id)) is not None:
            return known
        try:
            entry = await self._journal.get(task_id)
        except JournalError as exc:
            logger.debug("Journal lookup of %s failed: %s", task_id, exc)
            return None
        return None if entry is None else entry.kind

    async def _observe(self, task: Task) -> Task:
        """Record a task just read; if it turns out to be the result of a lost submission, say so."""
        if not task.task_id:
            return task
        snapshot = task_snapshot(task)
        if self._recorded.get(task.task_id) == snapshot:
            return task  # this process recorded (or is recording) exactly this state
        # Claimed before the write, so concurrent polls seeing the same state do not queue the same write.
        self._remember(task.task_id, snapshot)
        try:
            observation = await self._journal.observe(task, gateway=self.book.gateway, link_window=self._link_window)
        except JournalError as exc:
            logger.warning("Could not record the state of task %s: %s", task.task_id, exc)
            self._recorded.pop(task.task_id, None)
            return task
        except BaseException:  # cancelled mid-write: the next poll records it
            self._recorded.pop(task.task_id, None)
            raise
        if not observation.linked:
            return task
        sent = format_utc(observation.entry.submitted_at or observation.entry.recorded_at)
        return task.model_copy(
            update={
                "hint": f"This is the task of the {task.kind} request sent at {sent} whose outcome was unknown; "
                "the journal now records it. " + task.hint
            }
        )

    def _remember(self, task_id: str, snapshot: str) -> None:
        self._recorded[task_id] = snapshot
        self._recorded.move_to_end(task_id)
        while len(self._recorded) > RECORDED_LIMIT:
            self._recorded.popitem(last=False)


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s ago"
    return f"{round(seconds / 60)} min ago"
