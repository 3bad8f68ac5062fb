"""Journal work that runs beside the tools, never in their way: late records and retention.

* **Late records.** A task id the gateway returned is money spent: it must reach the journal. When the journal
  cannot take it at once (another process holds the write lock past the busy timeout, PostgreSQL is away for a
  moment), the create still answers with the task id, and :meth:`JournalUpkeep.record_later` keeps trying in the
  background, with back-off, for up to :data:`RECORD_RETRY_SECONDS`. Shutdown gives the pending ones a last try.
* **Retention** (``SORA_JOURNAL_RETENTION_DAYS``, default 90). Finished tasks recorded more than that many days
  ago are deleted in small batches (``Journal.prune``), one short write transaction each, an hour apart; rows of
  the current calendar month stay whatever the setting (the monthly spend and budget sum them), and so do
  submissions whose outcome is unknown and unfinished tasks, until resolved.
"""

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

from sora_mcp.errors import JournalError
from sora_mcp.journal import PRUNE_BATCH
from sora_mcp.models import Task
from sora_mcp.spending import day_and_month
from sora_mcp.tasks import TaskBook

logger = logging.getLogger(__name__)

RECORD_RETRY_SECONDS = 600.0
"""How long a created task's record is retried in the background before the log says it is lost."""
RECORD_BACKOFF_SECONDS = (0.5, 30.0)
"""First and longest pause between two attempts to record a created task (doubling, with jitter)."""
PRUNE_FIRST_SECONDS = 60.0
"""Pruning starts this long after start-up (start-up has better things to do)."""
PRUNE_EVERY_SECONDS = 3600.0
PRUNE_PAUSE_SECONDS = 0.05
"""Pause between two batches: other writers get the lock in between."""
FINAL_RECORD_SECONDS = 5.0
"""At shutdown, how long pending records get for a last attempt."""


class JournalUpkeep:
    """Background journal work of one server lifespan. Use ``async with JournalUpkeep.running(book, days)``."""

    def __init__(
        self, book: TaskBook, group: TaskGroup, *, retention_days: int = 0, rand: Callable[[], float] = random.random
    ) -> None:
        self.book = book
        self._group = group
        self._retention_days = retention_days
        self._rand = rand
        self._pending: dict[int, Task] = {}
        """Journal row -> the created task not recorded yet."""

    @classmethod
    @asynccontextmanager
    async def running(
        cls, book: TaskBook, *, retention_days: int, prune_first: float = PRUNE_FIRST_SECONDS
    ) -> AsyncIterator["JournalUpkeep"]:
        """Upkeep for one lifespan of the server (SSE enters it once per connection, so there may be several at
        once: each looks hourly whether a pruning pass is due, and ``book`` makes sure one pass runs at a time
        per process). ``retention_days`` 0 prunes nothing."""
        async with anyio.create_task_group() as group:
            upkeep = cls(book, group, retention_days=retention_days)
            if retention_days > 0:
                group.start_soon(upkeep._keep_pruned, prune_first)
            try:
                yield upkeep
            finally:
                with anyio.CancelScope(shield=True):
                    await upkeep._flush()
                group.cancel_scope.cancel()

    @property
    def pending(self) -> int:
        """Created tasks waiting to be recorded."""
        return len(self._pending)

    def record_later(self, row_id: int, task: Task) -> None:
        """Keep trying to record ``task`` as the result of journal row ``row_id`` (its create's write-ahead)."""
        self._pending[row_id] = task
        self._group.start_soon(self._record, row_id, task)

    async def _record(self, row_id: int, task: Task) -> None:
        delay, longest = RECORD_BACKOFF_SECONDS
        with anyio.move_on_after(RECORD_RETRY_SECONDS):
            while row_id in self._pending:
                await anyio.sleep(delay * (1 - 0.25 * self._rand()))
                if await self._try_record(row_id, task):
                    logger.info("Task %s is recorded in the task journal now", task.task_id)
                    return
                delay = min(delay * 2, longest)
        if self._pending.pop(row_id, None) is not None:
            logger.error(
                "Task %s was created but could not be recorded in the task journal for %g s; its task_id is in "
                "the tool result and in this log",
                task.task_id,
                RECORD_RETRY_SECONDS,
            )

    async def _try_record(self, row_id: int, task: Task) -> bool:
        try:
            await self.book.journal.record_created(row_id, task)
        except JournalError as exc:
            logger.debug("Recording task %s failed again: %s", task.task_id, exc)
            return False
        except Exception:  # a bug or a vanished row must not end the server: this task group encloses it
            logger.exception("Recording task %s failed; not trying again", task.task_id)
            self._pending.pop(row_id, None)
            return False
        self._pending.pop(row_id, None)
        return True

    async def _flush(self) -> None:
        """A last attempt for every pending record, within :data:`FINAL_RECORD_SECONDS` in all."""
        with anyio.move_on_after(FINAL_RECORD_SECONDS):
            for row_id, task in list(self._pending.items()):
                await self._try_record(row_id, task)
        for task in self._pending.values():
            logger.error("Task %s was created but is not recorded in the task journal (shutting down)", task.task_id)
        self._pending.clear()

    async def _keep_pruned(self, first: float) -> None:
        await anyio.sleep(first)
        while True:
            await self.prune_if_due()
            await anyio.sleep(PRUNE_EVERY_SECONDS)

    async def prune_if_due(self) -> None:
        """A pruning pass, unless one runs in this process or the last one ended less than an hour ago."""
        book = self.book
        if book.pruning or (book.pruned_at is not None and anyio.current_time() - book.pruned_at < PRUNE_EVERY_SECONDS):
            return
        book.pruning = True
        try:
            deleted = await self.prune_once(self._retention_days)
        except JournalError as exc:
            logger.warning("Pruning the task journal failed (trying again in an hour): %s", exc)
        except Exception:  # never end the server for upkeep
            logger.exception("Pruning the task journal failed (trying again in an hour)")
        else:
            if deleted:
                logger.info(
                    "Pruned %d finished tasks older than %d days from the task journal", deleted, self._retention_days
                )
        finally:
            book.pruning = False
        book.pruned_at = anyio.current_time()

    async def prune_once(self, retention_days: int) -> int:
        """Delete every finished task of this scope older than ``retention_days`` (and older than this month), in
        batches; return how many."""
        now = self.book.clock()
        _, month = day_and_month(now)
        before = min(now - retention_days * 86400.0, month.start)
        deleted = 0
        while True:
            batch = await self.book.journal.prune(gateway=self.book.scope, before=before)
            deleted += batch
            if batch < PRUNE_BATCH:
                return deleted
            await anyio.sleep(PRUNE_PAUSE_SECONDS)
