"""Journal work beside the tools (``sora_mcp/upkeep.py``): a created task is recorded even when another process
holds the journal's write lock past the busy timeout; reads never hold up a create; retention prunes what it may
and nothing else."""

import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import make_settings
from fake_gateway import FakeGateway, ManualClock
from test_tasks import connect

from sora_mcp.journal import Journal, Submission, journal_path
from sora_mcp.models import Task
from sora_mcp.tasks import TaskBook
from sora_mcp.upkeep import JournalUpkeep

pytestmark = pytest.mark.anyio

CREATE = "/v1/videos/generations"
HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE" if sys.argv[2] == "write" else "BEGIN")
connection.execute("SELECT COUNT(*) FROM tasks").fetchone()
print("held", flush=True)
time.sleep(float(sys.argv[3]))
connection.execute("COMMIT")
"""
"""Another process that holds the journal file's write lock (or a read transaction) for a while."""


@asynccontextmanager
async def holding(path: Path, lock: str, seconds: float) -> AsyncIterator[Any]:
    """Another process holding ``lock`` (``write`` or ``read``) on the journal at ``path`` for ``seconds``."""
    async with await anyio.open_process([sys.executable, "-c", HOLDER, str(path), lock, str(seconds)]) as process:
        assert process.stdout is not None
        with anyio.fail_after(10):
            assert (await process.stdout.receive()).startswith(b"held")
        yield process


async def test_a_created_task_is_recorded_although_another_process_held_the_write_lock(
    fake: FakeGateway, state_dir: Path
) -> None:
    """The create is answered with its task id at once, saying the record is retried; once the other process lets
    go, the journal holds the task as created (today's "stayed locked ... for more than 5 s" lost it)."""
    path = journal_path(state_dir)
    journal = Journal(path, busy_timeout=0.3)
    fake.hang("POST", CREATE, seconds=0.5)
    async with connect(fake, journal=journal) as client, anyio.create_task_group() as group:
        answers: list[Any] = []

        async def create() -> None:
            answers.append(await client.call_tool("create_video", {"prompt": "a lighthouse in a storm"}))

        group.start_soon(create)
        with anyio.fail_after(10):
            while not any(request.method == "POST" for request in fake.requests):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        async with holding(path, "write", 2.0) as holder:  # taken after the write-ahead, before the answer
            with anyio.fail_after(10):
                while not answers:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            (answer,) = answers
            assert answer.is_error is False
            created = answer.structured_content
            assert created is not None and created["task_id"]
            assert "keeps trying in the background" in created["hint"]
            assert (await journal.get(created["task_id"])) is None  # reads go on while the lock is held
            await holder.wait()
        with anyio.fail_after(15):
            while (entry := await journal.get(created["task_id"])) is None:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        assert (entry.state, entry.prompt) == ("created", "a lighthouse in a storm")


async def test_a_long_read_in_another_process_does_not_hold_up_a_create(fake: FakeGateway, state_dir: Path) -> None:
    """WAL: another process's long read (a ``list_tasks``, a backup) and a create's writes go side by side."""
    path = journal_path(state_dir)
    journal = Journal(path, busy_timeout=0.3)
    async with connect(fake, journal=journal) as client:
        await client.call_tool("list_tasks", {})  # the journal exists
        async with holding(path, "read", 3.0):
            answer = await client.call_tool("create_video", {"prompt": "a kite over dunes"})
            assert answer.is_error is False and answer.structured_content is not None
            assert "journal" not in answer.structured_content["hint"]
            entry = await journal.get(answer.structured_content["task_id"])
            assert entry is not None and entry.state == "created"


async def test_a_slow_read_in_this_process_does_not_hold_up_a_write(state_dir: Path) -> None:
    """Reads have a connection of their own: a create's write-ahead row is written while a read is still running."""
    journal = Journal(journal_path(state_dir))
    await journal.open()
    written = threading.Event()

    def slow_read(connection: Any) -> bool:
        connection.execute("SELECT COUNT(*) FROM tasks").fetchone()
        return written.wait(5)  # returns True only if the write finished while this read was running

    try:
        async with anyio.create_task_group() as group:
            reads: list[bool] = []

            async def read() -> None:
                reads.append(await anyio.to_thread.run_sync(journal.store.read, slow_read))

            group.start_soon(read)
            await anyio.sleep(0.1)
            await journal.claim(Submission.of(_video("side by side")), gateway="g", window=600)
            written.set()
        assert reads == [True]
    finally:
        await journal.close()


def _video(prompt: str) -> Any:
    from sora_mcp.create_requests import VideoRequest

    return VideoRequest(prompt=prompt)


async def _old_task(journal: Journal, clock: ManualClock, at: float, task_id: str, scope: str = "g") -> None:
    now = clock.now
    clock.now = at
    claim = await journal.claim(Submission.of(_video(task_id)), gateway=scope, window=0)
    await journal.record_created(claim.entry.row_id, Task(task_id=task_id, kind="video", status="completed"))
    clock.now = now


async def test_retention_keeps_the_current_month_whatever_the_setting(state_dir: Path) -> None:
    """Cut-off: the older of ``now - days`` and the start of this calendar month (the monthly spend sums it)."""
    now = datetime(2026, 6, 20, 12, 0)
    clock = ManualClock(now.timestamp())
    journal = Journal(journal_path(state_dir), clock=clock)
    book = TaskBook(journal, make_settings(), scope="g", clock=clock)
    try:
        for days, name in ((40, "may_11"), (20, "may_31"), (15, "june_5")):
            await _old_task(journal, clock, (now - timedelta(days=days)).timestamp(), name)
        upkeep = JournalUpkeep(book, group=None)  # type: ignore[arg-type]  # prune_once needs no task group
        assert await upkeep.prune_once(30) == 1
        assert await upkeep.prune_once(10) == 1  # May 31 is older than June 1
        assert await upkeep.prune_once(1) == 0  # June 5 is this month
        assert [entry.task_id for entry in await book.recent()] == ["june_5"]
    finally:
        await journal.close()


async def test_lifespans_prune_in_the_background_one_pass_at_a_time(state_dir: Path) -> None:
    """Each lifespan (SSE enters one per connection) looks whether a pass is due; passes do not overlap, the next
    is an hour later, and ``SORA_JOURNAL_RETENTION_DAYS=0`` prunes nothing."""
    now = datetime(2026, 6, 20, 12, 0)
    clock = ManualClock(now.timestamp())
    journal = Journal(journal_path(state_dir), clock=clock)
    book = TaskBook(journal, make_settings(), scope="g", clock=clock)
    try:
        await _old_task(journal, clock, (now - timedelta(days=200)).timestamp(), "ancient")
        async with JournalUpkeep.running(book, retention_days=0, prune_first=0):
            await anyio.sleep(0.3)
        assert len(await book.recent()) == 1 and book.pruned_at is None
        async with (
            JournalUpkeep.running(book, retention_days=90, prune_first=0),
            JournalUpkeep.running(book, retention_days=90, prune_first=0) as second,
        ):
            with anyio.fail_after(5):
                while book.pruned_at is None:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            assert await book.recent() == []
            await _old_task(journal, clock, (now - timedelta(days=300)).timestamp(), "older")
            await second.prune_if_due()  # the last pass ended moments ago
            assert len(await book.recent()) == 1
        assert not book.pruning
    finally:
        await journal.close()


async def test_a_pending_record_gets_a_last_try_at_shutdown(state_dir: Path) -> None:
    """A record still waiting for its next attempt is written when the lifespan ends (the lock is free by then)."""
    clock = ManualClock(time.time())
    journal = Journal(journal_path(state_dir), clock=clock)
    book = TaskBook(journal, make_settings(), scope="g", clock=clock)
    try:
        claim = await journal.claim(Submission.of(_video("late")), gateway="g", window=0)
        async with JournalUpkeep.running(book, retention_days=0) as upkeep:
            upkeep.record_later(claim.entry.row_id, Task(task_id="task_late", kind="video", status="queued"))
            assert upkeep.pending == 1
        entry = await journal.get("task_late")
        assert entry is not None and entry.row_id == claim.entry.row_id and entry.state == "created"
    finally:
        await journal.close()
