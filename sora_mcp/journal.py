"""The task journal: a durable record of every task this server creates or reads, shared by processes.

Two backends behind one :class:`Journal`: an embedded SQLite file per user (``journal_sqlite.py``, the default:
nothing to install) and, with ``SORA_DATABASE_URL``, one PostgreSQL database for every replica on every machine
(``journal_postgres.py``). The operations here are written once in SQL both understand; every write runs in a
transaction that the backend serializes against every other writer (SQLite's ``BEGIN IMMEDIATE``, a PostgreSQL
advisory lock), so two processes, on one machine or two, cannot both decide to create the same task or both
squeeze under a budget.

A row is written *before* a create request is sent (state ``submitting``), then gets its task id (``created``),
is deleted when the gateway surely refused it (nothing was created), or stays as ``unknown`` when the answer was
lost. Reads of tasks (``get_task``) update the row's last known state, or add an ``observed`` row for a task this
journal did not know.

Every call runs on a worker thread (``anyio.to_thread.run_sync``). Any database or file-system failure becomes a
:class:`~sora_mcp.errors.JournalError` whose message names the journal (the file, or the database URL with its
password masked), the reason and the fix; the backend reconnects on a later call, so a fixed permission or a
database that is back heals without a restart.
"""

import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeVar, get_args

import anyio.to_thread

from sora_mcp.create_requests import CreateRequest
from sora_mcp.journal_schema import SCHEMA_VERSION
from sora_mcp.models import Task, TaskError, TaskKind, TaskStatus
from sora_mcp.spending import day_and_month, over_budget

if TYPE_CHECKING:
    from types import ModuleType

    from sora_mcp.config import Settings

__all__ = ["SCHEMA_VERSION", "Journal", "JournalEntry", "Submission"]

logger = logging.getLogger(__name__)

APP_NAME = "sora-mcp"
JOURNAL_FILENAME = "journal.sqlite3"
BUSY_TIMEOUT_SECONDS = 5.0
"""How long a write waits for another process's write to finish before the journal reports it locked."""
PRUNE_BATCH = 500
"""Rows :meth:`Journal.prune` deletes per write transaction (a few milliseconds of the write lock)."""
HOST = socket.gethostname()
"""This machine, as written to the rows it sends: a process id means something only on its own machine."""

EntryState = Literal["submitting", "unknown", "created", "observed"]
"""``submitting``: written ahead of a create POST. ``unknown``: sent, answer lost. ``created``: this server
created it and knows its id. ``observed``: read by ``get_task`` without this journal having created it."""

_SNAPSHOT_EXCLUDE = {"hint", "next_poll_seconds", "eta_seconds", "sandbox", "prompt", "submitted_at"}
_SNAPSHOT_EXCLUDE |= {"outcome_unknown", "reused", "cost_estimate_usd", "confirmation_required", "quote_id"}
_SNAPSHOT_EXCLUDE |= {"quote_expires_at"}
"""Task fields that describe a moment or a presentation, not the task: recomputed when a row is shown."""

T = TypeVar("T")
TASK_STATUSES: frozenset[str] = frozenset(get_args(TaskStatus))


class Connection(Protocol):
    """What the operations use of a connection: ``execute`` with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Any = (), /) -> Any: ...


class JournalStore(Protocol):
    """A backend: runs an operation on a connection of its own, on the calling (worker) thread."""

    where: str
    """The journal as messages name it: the file, or the database URL with its password masked."""
    ever_opened: bool

    def run(self, operation: Callable[[Any], T]) -> T: ...

    def read(self, operation: Callable[[Any], T]) -> T:
        """Like ``run``, for an operation that only reads: it never waits behind a write of this process."""
        ...

    def size(self, connection: Any) -> "JournalSize": ...

    def write(self, connection: Any) -> AbstractContextManager[None]: ...

    def insert(self, connection: Any, statement: str, values: tuple[Any, ...]) -> int: ...

    def close(self) -> None: ...


def default_state_dir() -> Path:
    """The platform's user state directory for sora-mcp (``~/.local/state/sora-mcp`` on Linux)."""
    import platformdirs  # imported on first use: only the journal needs it

    return platformdirs.user_state_path(APP_NAME, appauthor=False)


def journal_path(state_dir: Path | None) -> Path:
    """Where the journal file lives: ``state_dir`` (``SORA_STATE_DIR``) or the platform default."""
    return (state_dir or default_state_dir()) / JOURNAL_FILENAME


def journal_for(settings: "Settings", *, clock: Callable[[], float] = time.time) -> "Journal":
    """The journal ``settings`` describe: PostgreSQL with ``SORA_DATABASE_URL``, else the SQLite file in the
    state directory. The PostgreSQL driver is imported only then (stdio start-up never pays for it)."""
    if settings.database_url is None:
        return Journal(journal_path(settings.state_dir), clock=clock)
    postgres = load_postgres()
    store = postgres.PostgresStore(settings.database_url.get_secret_value(), pool_size=settings.database_pool_size)
    return Journal(store, clock=clock)


def load_postgres() -> "ModuleType":
    """``sora_mcp.journal_postgres``, or ``DriverMissingError`` saying how to install its driver."""
    import importlib

    try:
        return importlib.import_module("sora_mcp.journal_postgres")
    except ImportError as exc:
        raise DriverMissingError(
            f"SORA_DATABASE_URL is set, but the PostgreSQL driver is not installed ({exc.name} is missing): "
            "install sora-mcp with its postgres extra (pip install 'sora-mcp[postgres]'), or unset "
            "SORA_DATABASE_URL to keep the journal in a local SQLite file."
        ) from None


class DriverMissingError(RuntimeError):
    """``SORA_DATABASE_URL`` without the ``postgres`` extra: a configuration error, reported at start-up."""


# --------------------------------------------------------------------------------------------- what is stored


class Submission(NamedTuple):
    """A create request as the journal records it, with the key that recognizes the same request again."""

    kind: TaskKind
    tool: str
    """The MCP tool that sends it: ``create_video``, ``create_character`` or ``remix_video``."""
    request_hash: str
    """SHA-256 of the canonical JSON of the kind and the gateway payload: equal requests, equal hash."""
    arguments: str
    """The payload as canonical JSON, with data: URIs shortened to their type, size and digest."""
    prompt: str | None
    model: str

    @classmethod
    def of(cls, request: CreateRequest, payload: dict[str, Any] | None = None) -> "Submission":
        """The journal's record of ``request``, whose gateway body is ``payload`` (built once by the caller and
        sent as it is; ``request.to_payload()`` when not given)."""
        body = request.to_payload() if payload is None else payload
        identity = {**request.path_arguments(), **body}
        stored = dict(identity)
        if "images" in stored:
            stored["images"] = [_shorten_data_uri(image) for image in stored["images"]]
        return cls(
            kind=request.kind,
            tool=request.tool,
            request_hash=_request_hash(request.kind, identity),
            arguments=_canonical(stored),
            prompt=request.prompt_text,
            model=request.model,
        )


class JournalEntry(NamedTuple):
    """One row of the journal."""

    row_id: int
    gateway: str
    state: EntryState
    kind: TaskKind
    task_id: str | None
    tool: str | None
    prompt: str | None
    model: str | None
    arguments: str | None
    submitted_at: float | None
    owner_pid: int | None
    """The process that sent the create (while ``submitting``), on the machine ``owner_host``."""
    recorded_at: float
    updated_at: float
    unknown_reason: str | None
    snapshot: Task | None
    """The last state read from the gateway (or the create answer); None while the outcome is unknown."""
    cost_estimate_usd: float | None = None
    """The estimate recorded when this server created the task (None: no price, or not created here)."""
    owner_host: str | None = None
    """The machine of ``owner_pid`` (None in rows written before schema 3: this machine, then)."""

    @property
    def outcome_unknown(self) -> bool:
        """A create was (or is being) sent and no task id is known."""
        return self.state in ("submitting", "unknown")

    @property
    def sender_alive(self) -> bool:
        """Whether the process that sent this create may still be waiting for the answer (True when unsure)."""
        if not _sent_from_here(self.owner_pid, self.owner_host):
            return True  # another machine's process: it cannot be looked up from here
        assert self.owner_pid is not None
        return _process_alive(self.owner_pid)

    def task(self) -> Task:
        """The last known state as a ``Task``, without guidance (``hint`` is empty)."""
        extra: dict[str, Any] = {
            "prompt": self.prompt,
            "submitted_at": None if self.submitted_at is None else int(self.submitted_at),
            "cost_estimate_usd": self.cost_estimate_usd,
        }
        if self.snapshot is not None:
            return self.snapshot.model_copy(update=extra)
        return Task(
            task_id=self.task_id,
            kind=self.kind,
            status="unknown",
            model=self.model,
            outcome_unknown=True if self.outcome_unknown else None,
            **extra,
        )


class Claim(NamedTuple):
    """The answer of :meth:`Journal.claim`: a new ``submitting`` row, or the earlier identical request."""

    entry: JournalEntry
    duplicate: bool
    """True when ``entry`` is an earlier request with the same arguments inside the duplicate window."""


class Budget(NamedTuple):
    """A cap on the estimated spend of a calendar window (``SORA_BUDGET_DAILY_USD`` / ``_MONTHLY_USD``)."""

    variable: str
    limit_usd: float
    window: Literal["day", "month"]


class SpendGuard(NamedTuple):
    """What :meth:`Journal.claim` checks and records about money: the estimate, the budgets, a confirmed quote."""

    estimate_usd: float | None
    budgets: tuple[Budget, ...] = ()
    quote_id: str | None = None


class Quote(NamedTuple):
    """A price quoted to the user, to confirm with ``confirm_quote``."""

    quote_id: str
    estimate_usd: float | None
    created_at: float
    expires_at: float


class ModelSpend(NamedTuple):
    """Estimated spend of one model's tasks in a window."""

    model: str
    tasks: int
    usd: float
    unpriced: int
    """Tasks among them without an estimate (no price configured): the sum cannot see them."""


class BudgetExceeded(Exception):
    """The create would take the estimated spend of ``budget``'s window over its limit; nothing was recorded."""

    def __init__(self, budget: Budget, spent_usd: float, estimate_usd: float, resets_at: float) -> None:
        super().__init__(budget.variable)
        self.budget = budget
        self.spent_usd = spent_usd
        self.estimate_usd = estimate_usd
        self.resets_at = resets_at


class QuoteRefused(Exception):
    """``confirm_quote`` names no usable quote for this request; ``reason`` is unknown, used, expired or
    different_arguments. Nothing was recorded."""

    def __init__(self, quote_id: str, reason: Literal["unknown", "used", "expired", "different_arguments"]) -> None:
        super().__init__(reason)
        self.quote_id = quote_id
        self.reason = reason


class JournalSize(NamedTuple):
    """What ``sora-mcp doctor`` reports of the journal's size."""

    rows: int
    """Rows of ``tasks``, every gateway scope."""
    size_bytes: int | None
    """The file with its write-ahead log, or the database's tables and indexes; None when it cannot be read."""


class Observation(NamedTuple):
    """The answer of :meth:`Journal.observe`."""

    entry: JournalEntry
    linked: bool
    """True when the task was just recognized as the task of a submission whose outcome was unknown."""


# --------------------------------------------------------------------------------------------- the journal


class Journal:
    """The task journal in ``store``: a SQLite file when given a path, else a backend such as
    :class:`~sora_mcp.journal_postgres.PostgresStore`. Nothing is opened until :meth:`open` or a first call.

    ``clock`` gives the times written to rows (tests pass a manual clock); ``busy_timeout`` is how long a SQLite
    write waits for another process's. Use ``await journal.open()`` at start-up to learn early whether it works;
    every method opens it on demand too, and raises ``JournalError``.
    """

    def __init__(
        self,
        store: "Path | JournalStore",
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        if isinstance(store, Path):
            from sora_mcp.journal_sqlite import SqliteStore

            store = SqliteStore(store, busy_timeout=busy_timeout)
        self.store: JournalStore = store
        self.path: Path | None = getattr(store, "path", None)
        """The SQLite file (None for a database server)."""
        self._clock = clock

    @property
    def ever_opened(self) -> bool:
        """Whether the journal worked at least once in this process (see the create rule in ``tasks.py``)."""
        return self.store.ever_opened

    async def open(self) -> None:
        """Open the journal (creating directory, file or tables as needed); raises ``JournalError``."""
        await self._run(lambda connection: None)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.store.close)

    # ------------------------------------------------------------------------------------------- writes

    async def claim(
        self, submission: Submission, *, gateway: str, window: float, spend: "SpendGuard | None" = None
    ) -> Claim:
        """Write a ``submitting`` row ahead of a create, unless the same request was made within ``window`` s.

        With ``spend``, the row records the estimate, the confirmed quote is used up (else :class:`QuoteRefused`)
        and every budget is checked against the estimates already recorded in its calendar window (else
        :class:`BudgetExceeded`). The checks and the insert are one ``BEGIN IMMEDIATE`` transaction, so of two
        processes sending the same request at once exactly one gets a new row, and two processes cannot both
        squeeze under a budget. Earlier requests whose task failed do not count: trying again after a failure is
        deliberate.
        """
        now = self._clock()

        def claim(connection: Connection) -> Claim:
            with self.store.write(connection):
                if window > 0 and (earlier := _duplicate(connection, submission, gateway, now - window)):
                    return Claim(earlier, duplicate=True)
                if spend is not None:
                    if spend.quote_id is not None:
                        _check_quote(connection, spend.quote_id, gateway, submission, now)
                    for budget in spend.budgets:
                        _check_budget(connection, budget, gateway, spend.estimate_usd or 0.0, now)
                row_id = self.store.insert(
                    connection,
                    "INSERT INTO tasks (gateway, state, kind, tool, request_hash, arguments, prompt, model, "
                    "submitted_at, owner_pid, owner_host, recorded_at, updated_at, status, cost_estimate_usd) "
                    "VALUES (?, 'submitting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'unknown', ?)",
                    (
                        gateway,
                        submission.kind,
                        submission.tool,
                        submission.request_hash,
                        submission.arguments,
                        submission.prompt,
                        submission.model,
                        now,
                        os.getpid(),
                        HOST,
                        now,
                        now,
                        None if spend is None else spend.estimate_usd,
                    ),
                )
                if spend is not None and spend.quote_id is not None:
                    connection.execute(
                        "UPDATE quotes SET used_at = ?, used_by = ? WHERE quote_id = ?",
                        (now, row_id, spend.quote_id),
                    )
                return Claim(_fetch(connection, "id = ?", row_id), duplicate=False)

        return await self._run(claim)

    async def record_created(self, row_id: int, task: Task) -> JournalEntry:
        """The create of row ``row_id`` answered with ``task``: store its id and state."""
        now = self._clock()

        def record(connection: Connection) -> JournalEntry:
            with self.store.write(connection):
                _unlink_other_task(connection, self.store, row_id, task, now)
                # A get_task of another process may have recorded this id already (it had the id before us): as
                # a task of its own (dropped now), or linked to another lost submission (a wrong guess, undone:
                # that submission's outcome is unknown again).
                connection.execute(
                    "DELETE FROM tasks WHERE task_id = ? AND id != ? AND state = 'observed'", (task.task_id, row_id)
                )
                connection.execute(
                    "UPDATE tasks SET state = 'unknown', task_id = NULL, status = 'unknown', progress = 0, "
                    "unknown_reason = COALESCE(unknown_reason, 'the create got no answer'), "
                    "video_url = NULL, expires_at = NULL, error_message = NULL, snapshot = NULL, updated_at = ? "
                    "WHERE task_id = ? AND id != ? AND state = 'created'",
                    (now, task.task_id, row_id),
                )
                connection.execute(
                    f"UPDATE tasks SET state = 'created', task_id = ?, unknown_reason = NULL, {_STATE_COLUMNS} "
                    "WHERE id = ?",
                    (task.task_id, *_state_values(task, now), row_id),
                )
                return _fetch(connection, "id = ?", row_id)

        return await self._run(record)

    async def record_unknown(self, row_id: int, reason: str) -> None:
        """The create of row ``row_id`` was sent but its answer was lost: a task may exist without an id."""
        now = self._clock()

        def record(connection: Connection) -> None:
            with self.store.write(connection):
                connection.execute(
                    "UPDATE tasks SET state = 'unknown', unknown_reason = ?, updated_at = ? "
                    "WHERE id = ? AND state = 'submitting'",
                    (reason, now, row_id),
                )

        await self._run(record)

    async def discard(self, row_id: int) -> None:
        """The gateway surely refused the create of row ``row_id`` (or it was never sent): nothing to remember,
        and a quote it used up may be used again."""

        def discard(connection: Connection) -> None:
            with self.store.write(connection):
                deleted = connection.execute("DELETE FROM tasks WHERE id = ? AND state = 'submitting'", (row_id,))
                if deleted.rowcount:  # nothing was created, so the quote it used is good again
                    connection.execute("UPDATE quotes SET used_at = NULL, used_by = NULL WHERE used_by = ?", (row_id,))

        await self._run(discard)

    async def observe(self, task: Task, *, gateway: str, link_window: float, in_flight: float) -> Observation:
        """Store the state of a task just read from the gateway.

        A task id the journal does not know is first matched against submissions whose outcome is really
        unknown: their create ended without an answer (``unknown``), or was sent (``submitting``) by a process
        that is gone or more than ``in_flight`` seconds ago. A create still being sent by a live process is no
        candidate: its own answer will name its task. If exactly one candidate has the same gateway, kind and
        model and was sent between ``link_window`` seconds before the task's ``created_at`` and a minute after
        it (clock skew), the task is recorded as that submission's result. Otherwise it gets an ``observed`` row
        of its own. (Should a create's answer later name a task linked this way to another submission, that
        link was wrong and :meth:`record_created` undoes it.)
        """
        if not task.task_id:
            raise ValueError("only a task with an id can be observed")
        task_id = task.task_id
        now = self._clock()

        def observe(connection: Connection) -> Observation:
            with self.store.write(connection):
                update = f"UPDATE tasks SET {_STATE_COLUMNS} WHERE id = ?"
                row = connection.execute("SELECT id FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
                if row is not None:
                    connection.execute(update, (*_state_values(task, now), row["id"]))
                    return Observation(_fetch(connection, "id = ?", row["id"]), linked=False)
                candidate = _unknown_submission_for(connection, task, gateway, link_window, in_flight, now)
                if candidate is not None:
                    connection.execute(
                        f"UPDATE tasks SET state = 'created', task_id = ?, {_STATE_COLUMNS} WHERE id = ?",
                        (task_id, *_state_values(task, now), candidate),
                    )
                    return Observation(_fetch(connection, "id = ?", candidate), linked=True)
                row_id = _insert_observed(connection, self.store, gateway, task, now)
                return Observation(_fetch(connection, "id = ?", row_id), linked=False)

        return await self._run(observe)

    # ------------------------------------------------------------------------------------------- reads

    async def find_duplicate(self, submission: Submission, *, gateway: str, window: float) -> JournalEntry | None:
        """The earlier identical request :meth:`claim` would return instead of a new row now (read-only)."""
        now = self._clock()
        return await self._read(lambda connection: _duplicate(connection, submission, gateway, now - window))

    async def quote(self, submission: Submission, *, gateway: str, estimate_usd: float | None, ttl: float) -> Quote:
        """Record a quote for ``submission``: good for one create with the same arguments within ``ttl`` s."""
        now = self._clock()
        quote = Quote(f"quote_{secrets.token_hex(12)}", estimate_usd, now, now + ttl)

        def record(connection: Connection) -> Quote:
            with self.store.write(connection):
                connection.execute("DELETE FROM quotes WHERE expires_at < ?", (now - QUOTES_KEPT_SECONDS,))
                connection.execute(
                    "INSERT INTO quotes (quote_id, gateway, tool, request_hash, cost_estimate_usd, created_at, "
                    "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        quote.quote_id,
                        gateway,
                        submission.tool,
                        submission.request_hash,
                        estimate_usd,
                        now,
                        quote.expires_at,
                    ),
                )
            return quote

        return await self._run(record)

    async def spending(self, *, gateway: str, since: float, until: float) -> list[ModelSpend]:
        """Estimated spend of the tasks created through this journal between ``since`` and ``until``, by model."""

        def read(connection: Connection) -> list[ModelSpend]:
            rows = connection.execute(
                "SELECT model, COUNT(*) AS tasks, COALESCE(SUM(cost_estimate_usd), 0.0) AS usd, "
                f"COUNT(cost_estimate_usd) AS priced FROM tasks WHERE {_SPENT} GROUP BY model ORDER BY model",
                (gateway, since, until),
            )
            return [
                ModelSpend(row["model"] or "unknown", row["tasks"], round(row["usd"], 4), row["tasks"] - row["priced"])
                for row in rows
            ]

        return await self._read(read)

    async def get(self, task_id: str) -> JournalEntry | None:
        """The row of ``task_id``, whichever process wrote it."""
        return await self._read(lambda connection: _fetch_or_none(connection, "task_id = ?", task_id))

    async def recent(
        self, *, gateway: str, limit: int, kind: TaskKind | None = None, status: TaskStatus | None = None
    ) -> list[JournalEntry]:
        """Rows of ``gateway``, newest first, optionally only one kind or one last known status."""
        clauses, values = ["gateway = ?"], [gateway]
        if kind is not None:
            clauses.append("kind = ?")
            values.append(kind)
        if status is not None:
            clauses.append("status = ?")
            values.append(status)
        query = f"SELECT * FROM tasks WHERE {' AND '.join(clauses)} ORDER BY recorded_at DESC, id DESC LIMIT ?"

        def recent(connection: Connection) -> list[JournalEntry]:
            return [_entry(row) for row in connection.execute(query, (*values, limit))]

        return await self._read(recent)

    # ------------------------------------------------------------------------------------------- upkeep

    async def prune(self, *, gateway: str, before: float, batch: int = PRUNE_BATCH) -> int:
        """Delete up to ``batch`` finished tasks of ``gateway`` recorded before ``before``; return how many.

        Finished means created here or observed, with a final status (completed or failed): submissions whose
        outcome is unknown and unfinished tasks stay until they are resolved, whatever their age. One short
        write transaction per batch, so a create never waits long behind pruning; call again until it returns
        less than ``batch``.
        """

        def prune(connection: Connection) -> int:
            with self.store.write(connection):
                due = connection.execute(
                    "SELECT id FROM tasks WHERE gateway = ? AND recorded_at < ? AND state IN ('created', 'observed') "
                    "AND status IN ('completed', 'failed') ORDER BY recorded_at LIMIT ?",
                    (gateway, before, batch),
                ).fetchall()
                ids = [row["id"] for row in due]
                if ids:  # by id, not with a subquery: PostgreSQL would plan that as a join that reads the table
                    connection.execute(f"DELETE FROM tasks WHERE id IN ({', '.join('?' * len(ids))})", ids)
                return len(ids)

        return await self._run(prune)

    async def size(self) -> "JournalSize":
        """How many rows the journal holds, and how much room it takes (bytes; None when unknown)."""
        return await self._read(self.store.size)

    # ------------------------------------------------------------------------------------------- plumbing

    async def _run(self, operation: Callable[[Any], T]) -> T:
        """Run ``operation`` on a worker thread; the thread finishes it even if the caller is cancelled."""
        return await anyio.to_thread.run_sync(self.store.run, operation)

    async def _read(self, operation: Callable[[Any], T]) -> T:
        """``_run`` for an operation that only reads (on SQLite, another connection: it never waits for a write)."""
        return await anyio.to_thread.run_sync(self.store.read, operation)


# --------------------------------------------------------------------------------------------- SQL helpers

_STATE_COLUMNS = (
    "status = ?, progress = ?, video_url = ?, expires_at = ?, error_message = ?, snapshot = ?, "
    "model = COALESCE(?, model), updated_at = ?"
)


QUOTES_KEPT_SECONDS = 86400.0
"""Quotes are deleted a day after they expire."""
LINK_CANDIDATES_READ = 64
"""Lost submissions read to find the one a new task answers; with this many in its window, none is linked."""
_SPENT = "gateway = ? AND submitted_at >= ? AND submitted_at < ? AND state != 'observed' AND status != 'failed'"
"""The rows whose estimates count as spend: created through sora-mcp in the window (outcome unknown included),
not failed. A reused task has no row of its own, so it is not spent twice."""


def _duplicate(connection: Connection, submission: Submission, gateway: str, since: float) -> JournalEntry | None:
    """The latest identical request sent since ``since`` whose task did not fail."""
    row = connection.execute(
        "SELECT * FROM tasks WHERE gateway = ? AND request_hash = ? AND submitted_at >= ? "
        "AND status != 'failed' ORDER BY submitted_at DESC, id DESC LIMIT 1",
        (gateway, submission.request_hash, since),
    ).fetchone()
    return None if row is None else _entry(row)


def _check_quote(connection: Connection, quote_id: str, gateway: str, submission: Submission, now: float) -> None:
    row = connection.execute("SELECT * FROM quotes WHERE quote_id = ? AND gateway = ?", (quote_id, gateway)).fetchone()
    if row is None:
        raise QuoteRefused(quote_id, "unknown")
    if row["used_at"] is not None:
        raise QuoteRefused(quote_id, "used")
    if now >= row["expires_at"]:
        raise QuoteRefused(quote_id, "expired")
    if row["request_hash"] != submission.request_hash or row["tool"] != submission.tool:
        raise QuoteRefused(quote_id, "different_arguments")


def _check_budget(connection: Connection, budget: Budget, gateway: str, estimate: float, now: float) -> None:
    day, month = day_and_month(now)
    period = day if budget.window == "day" else month
    spent = _spent(connection, gateway, period.start, period.end)
    if over_budget(spent, estimate, budget.limit_usd):
        raise BudgetExceeded(budget, round(spent, 4), estimate, period.end)


def _spent(connection: Connection, gateway: str, since: float, until: float) -> float:
    row = connection.execute(
        f"SELECT COALESCE(SUM(cost_estimate_usd), 0.0) AS spent FROM tasks WHERE {_SPENT}", (gateway, since, until)
    ).fetchone()
    return float(row["spent"])


def read_spend(path: Path, *, gateway: str, now: float) -> tuple[float, float]:
    """Today's and this month's estimated spend from the journal file at ``path``, opened read-only (neither
    created nor upgraded: ``sora-mcp doctor`` uses it). Raises ``sqlite3.Error``."""
    from sora_mcp.journal_sqlite import read_spend_file

    return read_spend_file(path, partial(spend_of, gateway=gateway, now=now), busy_timeout=BUSY_TIMEOUT_SECONDS)


def spend_of(connection: Connection, *, gateway: str, now: float) -> tuple[float, float]:
    """Today's and this month's estimated spend, rounded to hundredths of a cent."""
    day, month = day_and_month(now)
    today = _spent(connection, gateway, day.start, day.end)
    this_month = _spent(connection, gateway, month.start, month.end)
    return round(today, 4), round(this_month, 4)


def task_snapshot(task: Task) -> str:
    """The JSON the journal stores for a task's state: equal snapshots, nothing new to record."""
    return task.model_dump_json(exclude=_SNAPSHOT_EXCLUDE, exclude_none=True)


def _state_values(task: Task, now: float) -> tuple[Any, ...]:
    snapshot = task_snapshot(task)
    error = task.error.message if task.error else None
    return (task.status, task.progress, task.video_url, task.expires_at, error, snapshot, task.model, now)


def _unknown_submission_for(
    connection: Connection, task: Task, gateway: str, window: float, in_flight: float, now: float
) -> int | None:
    """The one submission whose outcome is really unknown that ``task`` may be the result of (see ``observe``).
    Read through the partial index ``tasks_unresolved``: a handful of rows, however large the journal."""
    if task.created_at is None:
        return None
    query = (
        "SELECT id, state, submitted_at, owner_pid, owner_host FROM tasks WHERE gateway = ? AND kind = ? "
        "AND state IN ('submitting', 'unknown') AND submitted_at BETWEEN ? AND ?"
    )
    values: tuple[Any, ...] = (gateway, task.kind, task.created_at - window, task.created_at + 60)
    if task.model is not None:
        query, values = query + " AND model = ?", (*values, task.model)
    rows = connection.execute(query + f" LIMIT {LINK_CANDIDATES_READ}", values).fetchall()
    if len(rows) == LINK_CANDIDATES_READ:
        return None  # so many lost submissions at once that no guess would be safe
    candidates = [row for row in rows if _outcome_really_unknown(row, now, in_flight)]
    return int(candidates[0]["id"]) if len(candidates) == 1 else None


def _unlink_other_task(connection: Connection, store: "JournalStore", row_id: int, task: Task, now: float) -> None:
    """Row ``row_id`` was linked to another task than ``task``, its create's real answer (another machine took our
    submission for abandoned while its record was being retried): that task gets an ``observed`` row of its own."""
    row = connection.execute("SELECT * FROM tasks WHERE id = ?", (row_id,)).fetchone()
    if row is None or row["state"] != "created" or row["task_id"] in (None, task.task_id):
        return
    other = _snapshot(row)
    assert other is not None  # a linked row holds the state read with the task
    connection.execute("UPDATE tasks SET task_id = NULL WHERE id = ?", (row_id,))
    _insert_observed(connection, store, row["gateway"], other, now)


def _insert_observed(connection: Connection, store: "JournalStore", gateway: str, task: Task, now: float) -> int:
    """A row of its own for ``task``, read from the gateway without this journal having created it."""
    row_id = store.insert(
        connection,
        "INSERT INTO tasks (gateway, state, kind, task_id, model, recorded_at, updated_at, status) "
        "VALUES (?, 'observed', ?, ?, ?, ?, ?, 'unknown')",
        (gateway, task.kind, task.task_id, task.model, now, now),
    )
    connection.execute(f"UPDATE tasks SET {_STATE_COLUMNS} WHERE id = ?", (*_state_values(task, now), row_id))
    return row_id


def _outcome_really_unknown(row: Any, now: float, in_flight: float) -> bool:
    """Whether no process will learn this submission's task id from its create's answer any more."""
    if row["state"] == "unknown":
        return True
    pid = row["owner_pid"]
    if _sent_from_here(pid, row["owner_host"]):
        # A live process of this machine still records the answer, however late (``upkeep.py`` retries a
        # record for minutes when the journal is busy); a dead one never will.
        return not _process_alive(pid)
    # Another machine's process cannot be looked up: past the longest a create takes, it is taken as gone.
    return now - (row["submitted_at"] or 0.0) >= in_flight


def _fetch(connection: Connection, where: str, value: Any) -> JournalEntry:
    entry = _fetch_or_none(connection, where, value)
    if entry is None:  # pragma: no cover - rows are read back inside the transaction that wrote them
        raise LookupError(f"journal row vanished ({where} {value!r})")
    return entry


def _fetch_or_none(connection: Connection, where: str, value: Any) -> JournalEntry | None:
    row = connection.execute(f"SELECT * FROM tasks WHERE {where}", (value,)).fetchone()
    return None if row is None else _entry(row)


def _snapshot(row: Any) -> Task | None:
    """The stored ``Task``; should its JSON be unreadable (edited by hand?), the plain columns rebuild it."""
    if not row["snapshot"]:
        return None
    try:
        return Task.model_validate_json(row["snapshot"])
    except ValueError:
        logger.warning("Task journal row %s has an unreadable snapshot; using its columns", row["id"])
    return Task(
        task_id=row["task_id"],
        kind=row["kind"],
        status=row["status"] if row["status"] in TASK_STATUSES else "unknown",
        progress=max(0, min(100, int(row["progress"] or 0))),
        model=row["model"],
        video_url=row["video_url"],
        expires_at=row["expires_at"],
        error=TaskError(message=row["error_message"]) if row["error_message"] else None,
    )


def _entry(row: Any) -> JournalEntry:
    snapshot = _snapshot(row)
    return JournalEntry(
        row_id=row["id"],
        gateway=row["gateway"],
        state=row["state"],
        kind=row["kind"],
        task_id=row["task_id"],
        tool=row["tool"],
        prompt=row["prompt"],
        model=row["model"],
        arguments=row["arguments"],
        submitted_at=row["submitted_at"],
        owner_pid=row["owner_pid"],
        recorded_at=row["recorded_at"],
        updated_at=row["updated_at"],
        unknown_reason=row["unknown_reason"],
        snapshot=snapshot,
        cost_estimate_usd=row["cost_estimate_usd"],
        owner_host=row["owner_host"],
    )


def _sent_from_here(pid: int | None, host: str | None) -> bool:
    """Whether ``pid`` names a process of this machine (rows before schema 3 have no host: this machine's)."""
    return pid is not None and (host is None or host == HOST)


def _process_alive(pid: int) -> bool:
    """False only when ``pid`` surely does not run (POSIX ``kill(pid, 0)``; elsewhere always True)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_ESCAPED_IN_JSON = bytes(range(32)) + b'"\\'
"""What ``json.dumps(..., ensure_ascii=False)`` does not write as it is; a base64 data: URI has none of it."""
_SPLICED_FROM = 64 * 1024


def _request_hash(kind: str, identity: dict[str, Any]) -> str:
    """``sha256(_canonical({"kind": kind, "payload": identity}))``. Large ``images`` entries (reference images as
    data: URIs, megabytes each) are not run through the JSON encoder, the slowest step of a create with a 10 MB
    image: JSON writes them as they are, so hashing them between the JSON around them gives the same bytes."""
    document = {"kind": kind, "payload": identity}
    images = identity.get("images")
    verbatim: dict[int, bytes] = {}
    for index, image in enumerate(images if isinstance(images, list) else []):
        if isinstance(image, str) and len(image) >= _SPLICED_FROM:
            encoded = image.encode()
            if len(encoded.translate(None, _ESCAPED_IN_JSON)) == len(encoded):
                verbatim[index] = encoded
    if not verbatim or not isinstance(images, list):
        return hashlib.sha256(_canonical(document).encode()).hexdigest()
    marker = f"sora-mcp-image-{secrets.token_hex(16)}"  # occurs nowhere else in the document
    stand_ins = [f"{marker}-{index}" if index in verbatim else image for index, image in enumerate(images)]
    rest = _canonical({"kind": kind, "payload": {**identity, "images": stand_ins}})
    digest = hashlib.sha256()
    for index, encoded in verbatim.items():
        before, found, rest = rest.partition(f'"{marker}-{index}"')
        if not found:  # cannot happen; the plain way is always right
            return hashlib.sha256(_canonical(document).encode()).hexdigest()
        digest.update(before.encode() + b'"')
        digest.update(encoded)
        digest.update(b'"')
    digest.update(rest.encode())
    return digest.hexdigest()


def _shorten_data_uri(image: str) -> str:
    """``data:image/png;base64,<...>`` becomes ``data:image/png;base64 (1234 chars, sha256 0f1e2d3c4b5a6978)``."""
    if not image.startswith("data:"):
        return image
    header, _, data = image.partition(",")
    return f"{header} ({len(data)} chars, sha256 {hashlib.sha256(data.encode()).hexdigest()[:16]})"
