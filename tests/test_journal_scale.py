"""The journal's cost stays flat as it grows: every statement it runs is checked for its query plan (no scan of
``tasks`` on SQLite or PostgreSQL), and the work SQLite does per operation (virtual machine steps, not seconds)
is compared between a journal of 1,000 rows and one of 200,000."""

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from journal_rows import ROW_COLUMNS, fill

from sora_mcp.create_requests import CharacterRequest, VideoRequest
from sora_mcp.journal import Budget, Journal, JournalStore, SpendGuard, Submission, journal_path
from sora_mcp.journal_postgres import PostgresStore
from sora_mcp.journal_sqlite import SqliteStore
from sora_mcp.models import Task

pytestmark = pytest.mark.anyio

T = TypeVar("T")
GATEWAY = "https://gateway.test"
NOW = time.time()
LINK = {"link_window": 300.0, "in_flight": 300.0}
FILTERS = [(kind, status) for kind in (None, "video", "character") for status in (None, "in_progress", "completed")]


def reads_whole_table(sql: str) -> bool:
    """The statement that reads the whole table by nature: the row count ``sora-mcp doctor`` reports
    (``Journal.size``)."""
    return "COUNT(*) FROM tasks" in sql and "WHERE" not in sql


class _Recording:
    """A connection that notes every statement run on it."""

    def __init__(self, inner: Any, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        self.inner = inner
        self.statements = statements

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self.statements.append((sql, tuple(parameters)))
        return self.inner.execute(sql, parameters)


class RecordingStore:
    """A journal backend that records the statements of every operation, with their parameters."""

    def __init__(self, inner: JournalStore) -> None:
        self.inner = inner
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.where = inner.where

    @property
    def ever_opened(self) -> bool:
        return self.inner.ever_opened

    def run(self, operation: Callable[[Any], T]) -> T:
        return self.inner.run(lambda connection: operation(_Recording(connection, self.statements)))

    def read(self, operation: Callable[[Any], T]) -> T:
        return self.inner.read(lambda connection: operation(_Recording(connection, self.statements)))

    def write(self, connection: _Recording) -> Any:
        return self.inner.write(connection.inner)

    def insert(self, connection: _Recording, statement: str, values: tuple[Any, ...]) -> int:
        self.statements.append((statement, values))
        return self.inner.insert(connection.inner, statement, values)

    def size(self, connection: _Recording) -> Any:
        return self.inner.size(connection)

    def close(self) -> None:
        self.inner.close()


def video(prompt: str) -> Submission:
    return Submission.of(VideoRequest(prompt=prompt))


async def every_operation(journal: Journal) -> None:
    """Each journal operation once, in the ways the server uses it (budgets and a quote included)."""
    budgets = (Budget("SORA_BUDGET_DAILY_USD", 1000.0, "day"), Budget("SORA_BUDGET_MONTHLY_USD", 9000.0, "month"))
    quote = await journal.quote(video("quoted"), gateway=GATEWAY, estimate_usd=1.0, ttl=600)
    claim = await journal.claim(
        video("quoted"), gateway=GATEWAY, window=600, spend=SpendGuard(1.0, budgets, quote.quote_id)
    )
    await journal.record_created(claim.entry.row_id, Task(task_id="scale_new", kind="video", status="queued"))
    lost = await journal.claim(video("lost"), gateway=GATEWAY, window=600, spend=SpendGuard(0.5, budgets))
    await journal.record_unknown(lost.entry.row_id, "HTTP 502")
    refused = await journal.claim(video("refused"), gateway=GATEWAY, window=600)
    await journal.discard(refused.entry.row_id)
    await journal.find_duplicate(video("quoted"), gateway=GATEWAY, window=600)
    known = Task(task_id="bulk_00000500", kind="video", status="completed", progress=100)
    await journal.observe(known, gateway=GATEWAY, **LINK)
    for kind in ("video", "character"):
        new = Task(task_id=f"scale_other_{kind}", kind=kind, status="queued", created_at=int(NOW), model="sora-2")
        await journal.observe(new, gateway=GATEWAY, **LINK)
    await journal.spending(gateway=GATEWAY, since=NOW - 86400 * 31, until=NOW)
    await journal.get("bulk_00000500")
    for kind, status in FILTERS:
        await journal.recent(gateway=GATEWAY, limit=20, kind=kind, status=status)  # type: ignore[arg-type]
    await journal.prune(gateway=GATEWAY, before=NOW - 90 * 86400)
    await journal.size()


def filled_sqlite(directory: Path, rows: int, *, days: float = 1000.0) -> Path:
    """A journal of ``rows`` rows over ``days`` days: a month's spend is then 3 % of them, as in a journal that
    grew for years (for a quarter of the table, PostgreSQL rightly reads the table rather than an index)."""
    path = journal_path(directory)
    store = SqliteStore(path, busy_timeout=5)
    store.run(lambda connection: None)  # creates the tables
    store.close()
    fill(path, rows, gateway=GATEWAY, now=NOW, days=days)
    return path


def statements_of(store: RecordingStore) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Each distinct statement once (with the parameters of its first use)."""
    seen: set[str] = set()
    for sql, parameters in store.statements:
        if sql not in seen and not sql.startswith(("PRAGMA", "BEGIN", "COMMIT", "ROLLBACK")):
            seen.add(sql)
            yield sql, parameters


# --------------------------------------------------------------------------------------------- query plans


@pytest.mark.parametrize("analyzed", [False, True], ids=["no-statistics", "analyzed"])
async def test_no_sqlite_statement_scans_a_table_or_sorts(tmp_path: Path, analyzed: bool) -> None:
    """``EXPLAIN QUERY PLAN`` of every statement the operations ran, on a journal of 20,000 rows: no ``SCAN`` of
    ``tasks`` or ``quotes`` and no sort of rows to list, with and without the planner's statistics (``ANALYZE``)."""
    path = filled_sqlite(tmp_path, 20_000)
    if analyzed:
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("ANALYZE")
    store = RecordingStore(SqliteStore(path, busy_timeout=5))
    journal = Journal(store)
    try:
        await every_operation(journal)
    finally:
        await journal.close()
    checked = 0
    with closing(sqlite3.connect(path)) as connection:
        for sql, parameters in statements_of(store):
            plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)]
            if reads_whole_table(sql):
                continue
            bad = [step for step in plan if re.match(r"SCAN (tasks|quotes)\b", step) or "TEMP B-TREE FOR ORDER" in step]
            assert not bad, f"{sql}\n  plan: {plan}"
            checked += 1
    assert checked >= 20  # the workload reached every operation


async def test_no_postgres_statement_scans_the_tasks_table(database_url: str, tmp_path: Path) -> None:
    """The same on PostgreSQL: the statements of every operation, on 20,000 rows after ``ANALYZE``, plan no
    sequential scan of ``tasks``."""
    source = filled_sqlite(tmp_path, 20_000)
    store = RecordingStore(PostgresStore(database_url))
    journal = Journal(store)
    try:
        await journal.open()
        with closing(sqlite3.connect(source)) as sqlite:
            rows = sqlite.execute(f"SELECT {ROW_COLUMNS} FROM tasks").fetchall()
        placeholders = ", ".join(["%s"] * len(ROW_COLUMNS.split(", ")))
        with psycopg.connect(database_url, autocommit=True) as connection:
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO sora_mcp.tasks ({ROW_COLUMNS}) VALUES ({placeholders})", rows)
            connection.execute("ANALYZE sora_mcp.tasks")
        await every_operation(journal)
    finally:
        await journal.close()
    checked = 0
    with psycopg.connect(database_url, autocommit=True, options="-c search_path=sora_mcp") as connection:
        for sql, parameters in statements_of(store):
            if reads_whole_table(sql):
                continue
            explained = sql.replace("%", "%%").replace("?", "%s")
            with connection.transaction(force_rollback=True):  # EXPLAIN of a write plans it without running it
                plan = [row[0] for row in connection.execute(f"EXPLAIN {explained}", parameters)]
            assert not [step for step in plan if "Seq Scan on tasks" in step], f"{sql}\n  plan: {plan}"
            checked += 1
    assert checked >= 20


# --------------------------------------------------------------------------------------------- flat cost


class Steps:
    """SQLite virtual-machine steps run on a journal's connections (a count of work that seconds are not)."""

    GRAIN = 10

    def __init__(self, journal: Journal) -> None:
        self.count = 0
        store = journal.store

        def handler() -> int:
            self.count += self.GRAIN
            return 0

        store.run(lambda connection: connection.set_progress_handler(handler, self.GRAIN))
        store.read(lambda connection: connection.set_progress_handler(handler, self.GRAIN))


async def costs(directory: Path, rows: int) -> dict[str, int]:
    """The steps each operation takes on a journal of ``rows`` rows."""
    journal = Journal(filled_sqlite(directory, rows))
    await journal.open()
    await journal.recent(gateway=GATEWAY, limit=1)  # opens the reading connection
    steps = Steps(journal)
    found: dict[str, int] = {}

    async def measure(name: str, operation: Callable[[], Any]) -> None:
        before = steps.count
        await operation()
        found[name] = steps.count - before

    async def create() -> None:
        claim = await journal.claim(video(f"flat {rows}"), gateway=GATEWAY, window=600)
        await journal.record_created(claim.entry.row_id, Task(task_id=f"flat_{rows}", kind="video", status="queued"))

    lost = await journal.claim(
        Submission.of(CharacterRequest(timestamps="1,3", url="https://v.test/a.mp4")), gateway=GATEWAY, window=600
    )
    await journal.record_unknown(lost.entry.row_id, "timeout")
    try:
        await measure("create", create)
        await measure("get known id", lambda: journal.get("bulk_00000500"))
        new = Task(task_id="flat_other", kind="video", status="queued", created_at=int(NOW), model="sora-2")
        await measure("get new id (link)", lambda: journal.observe(new, gateway=GATEWAY, **LINK))
        linked = Task(task_id="flat_lost", kind="character", status="queued", created_at=int(NOW))
        await measure("get new id (linked)", lambda: journal.observe(linked, gateway=GATEWAY, **LINK))
        for kind, status in FILTERS:
            await measure(  # one row at most: the small journal holds one task in progress
                f"list {kind or 'any'}/{status or 'any'}",
                lambda kind=kind, status=status: journal.recent(  # type: ignore[misc]
                    gateway=GATEWAY, limit=1, kind=kind, status=status
                ),
            )
        await measure("prune (nothing due)", lambda: journal.prune(gateway=GATEWAY, before=NOW - 200 * 86400))
    finally:
        await journal.close()
    return found


async def test_every_operation_costs_about_the_same_at_200k_rows_as_at_1k(tmp_path: Path) -> None:
    """The 1M-row goal of issue 16 (at most 2x the 1k figure) checked at 200,000 rows in SQLite's own unit of
    work; a scan would cost hundreds of times more. (The benchmarks time the same at 1M rows.) Not here: the
    spend of a window (budgets, ``get_spending``), which sums that window's tasks from an index alone, so it
    grows with the tasks of the day or month, not with the journal."""
    small = await costs(tmp_path / "small", 1_000)
    large = await costs(tmp_path / "large", 200_000)
    assert small.keys() == large.keys()
    too_dear = {name: (small[name], large[name]) for name in small if large[name] > 2 * small[name] + 200}
    assert not too_dear, too_dear


async def test_a_million_row_journal_links_and_lists_correctly(tmp_path: Path) -> None:
    """A smoke check at 200,000 rows that the indexed paths give the same answers as the rows say."""
    path = filled_sqlite(tmp_path, 200_000)
    journal = Journal(path)
    try:
        listed = await journal.recent(gateway=GATEWAY, limit=5, kind="character", status="completed")
        with closing(sqlite3.connect(path)) as connection:
            expected = [
                row[0]
                for row in connection.execute(
                    "SELECT task_id FROM tasks WHERE gateway = ? AND kind = 'character' AND status = 'completed' "
                    "ORDER BY recorded_at DESC, id DESC LIMIT 5",
                    (GATEWAY,),
                )
            ]
        assert [entry.task_id for entry in listed] == expected and len(expected) == 5
        # The bulk rows' unknown submissions are months old: a task made now links to none of them.
        new = Task(task_id="fresh", kind="video", status="queued", created_at=int(NOW), model="sora-2")
        assert (await journal.observe(new, gateway=GATEWAY, **LINK)).linked is False
        assert (await journal.size()).rows == 200_001
    finally:
        await journal.close()
