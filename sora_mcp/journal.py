"""The task journal: a durable record, in SQLite, of every task this server creates or reads.

One file, ``journal.sqlite3`` in ``SORA_STATE_DIR`` (default: the platform's user state directory), shared by
every sora-mcp process of the user (Claude Desktop and Claude Code at once, say). WAL mode lets readers and one
writer work side by side; ``busy_timeout`` makes a writer wait for another process's write instead of failing;
writes that must see the latest rows (the duplicate check, linking) run in ``BEGIN IMMEDIATE`` transactions, so
two processes cannot both decide to create the same task. ``synchronous=FULL``: a committed row survives a power
cut too, since a row can stand for money spent.

A row is written *before* a create request is sent (state ``submitting``), then gets its task id (``created``),
is deleted when the gateway surely refused it (nothing was created), or stays as ``unknown`` when the answer was
lost. Reads of tasks (``get_task``) update the row's last known state, or add an ``observed`` row for a task this
journal did not know.

Every call runs on a worker thread (``anyio.to_thread.run_sync``) over one connection per journal, used by one
thread at a time. Any SQLite or file-system failure becomes a :class:`~sora_mcp.errors.JournalError` whose
message names the file, the reason and the fix; the connection is then dropped, and the next call opens it
again (so a fixed permission or a lock released later heals without a restart).
"""

import hashlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar, get_args

import anyio.to_thread

from sora_mcp.create_requests import CreateRequest
from sora_mcp.errors import JournalError
from sora_mcp.models import Task, TaskError, TaskKind, TaskStatus
from sora_mcp.spending import day_and_month, over_budget

logger = logging.getLogger(__name__)

APP_NAME = "sora-mcp"
JOURNAL_FILENAME = "journal.sqlite3"
SCHEMA_VERSION = 2
BUSY_TIMEOUT_SECONDS = 5.0
"""How long a write waits for another process's write to finish before the journal reports it locked."""

EntryState = Literal["submitting", "unknown", "created", "observed"]
"""``submitting``: written ahead of a create POST. ``unknown``: sent, answer lost. ``created``: this server
created it and knows its id. ``observed``: read by ``get_task`` without this journal having created it."""

_SNAPSHOT_EXCLUDE = {"hint", "next_poll_seconds", "eta_seconds", "sandbox", "prompt", "submitted_at"}
_SNAPSHOT_EXCLUDE |= {"outcome_unknown", "reused", "cost_estimate_usd", "confirmation_required", "quote_id"}
_SNAPSHOT_EXCLUDE |= {"quote_expires_at"}
"""Task fields that describe a moment or a presentation, not the task: recomputed when a row is shown."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        gateway TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('submitting', 'unknown', 'created', 'observed')),
        kind TEXT NOT NULL CHECK (kind IN ('video', 'character')),
        task_id TEXT UNIQUE,
        tool TEXT,
        request_hash TEXT,
        arguments TEXT,
        prompt TEXT,
        model TEXT,
        submitted_at REAL,
        owner_pid INTEGER,
        recorded_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        unknown_reason TEXT,
        status TEXT NOT NULL,
        progress INTEGER NOT NULL DEFAULT 0,
        video_url TEXT,
        expires_at INTEGER,
        error_message TEXT,
        snapshot TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS tasks_by_request ON tasks (gateway, request_hash, submitted_at)",
    "CREATE INDEX IF NOT EXISTS tasks_by_time ON tasks (gateway, recorded_at)",
)
"""Version 1. ``status``, ``progress``, ``video_url``, ``expires_at``, ``error_message`` repeat the last known
state for filtering and for people reading the file with ``sqlite3``; ``snapshot`` holds the whole ``Task``."""

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE tasks ADD COLUMN cost_estimate_usd REAL",
        """CREATE TABLE IF NOT EXISTS quotes (
            quote_id TEXT PRIMARY KEY,
            gateway TEXT NOT NULL,
            tool TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            cost_estimate_usd REAL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL,
            used_by INTEGER
        )""",
        "CREATE INDEX IF NOT EXISTS tasks_by_submission ON tasks (gateway, submitted_at)",
    ),
}
"""The statements that bring a journal of the version before each key to that version. Version 2: the estimated
cost of each created task (budgets sum it) and the quotes a user confirms (``SORA_CONFIRM_ABOVE_USD``)."""

T = TypeVar("T")
TASK_STATUSES: frozenset[str] = frozenset(get_args(TaskStatus))


def default_state_dir() -> Path:
    """The platform's user state directory for sora-mcp (``~/.local/state/sora-mcp`` on Linux)."""
    import platformdirs  # imported on first use: only the journal needs it

    return platformdirs.user_state_path(APP_NAME, appauthor=False)


def journal_path(state_dir: Path | None) -> Path:
    """Where the journal file lives: ``state_dir`` (``SORA_STATE_DIR``) or the platform default."""
    return (state_dir or default_state_dir()) / JOURNAL_FILENAME


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
            request_hash=hashlib.sha256(_canonical({"kind": request.kind, "payload": identity}).encode()).hexdigest(),
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
    """The process that sent the create (while ``submitting``)."""
    recorded_at: float
    updated_at: float
    unknown_reason: str | None
    snapshot: Task | None
    """The last state read from the gateway (or the create answer); None while the outcome is unknown."""
    cost_estimate_usd: float | None = None
    """The estimate recorded when this server created the task (None: no price, or not created here)."""

    @property
    def outcome_unknown(self) -> bool:
        """A create was (or is being) sent and no task id is known."""
        return self.state in ("submitting", "unknown")

    @property
    def sender_alive(self) -> bool:
        """Whether the process that sent this create may still be waiting for the answer (True when unsure)."""
        return self.owner_pid is None or _process_alive(self.owner_pid)

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


class Observation(NamedTuple):
    """The answer of :meth:`Journal.observe`."""

    entry: JournalEntry
    linked: bool
    """True when the task was just recognized as the task of a submission whose outcome was unknown."""


# --------------------------------------------------------------------------------------------- the journal


class Journal:
    """The SQLite task journal at ``path``. Nothing touches the disk until :meth:`open` or a first call.

    ``clock`` gives the times written to rows (tests pass a manual clock); ``busy_timeout`` is how long a write
    waits for another process's. Use ``await journal.open()`` at start-up to learn early whether it works; every
    method opens it on demand too, and raises ``JournalError``.
    """

    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, busy_timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self.ever_opened = False
        """Whether the journal worked at least once in this process (see the create rule in ``tasks.py``)."""

    async def open(self) -> None:
        """Open the file (creating directory, file and schema as needed); raises ``JournalError``."""
        await self._run(lambda connection: None)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._close)

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

        def claim(connection: sqlite3.Connection) -> Claim:
            with _immediate(connection):
                if window > 0 and (earlier := _duplicate(connection, submission, gateway, now - window)):
                    return Claim(earlier, duplicate=True)
                if spend is not None:
                    if spend.quote_id is not None:
                        _check_quote(connection, spend.quote_id, gateway, submission, now)
                    for budget in spend.budgets:
                        _check_budget(connection, budget, gateway, spend.estimate_usd or 0.0, now)
                cursor = connection.execute(
                    "INSERT INTO tasks (gateway, state, kind, tool, request_hash, arguments, prompt, model, "
                    "submitted_at, owner_pid, recorded_at, updated_at, status, cost_estimate_usd) "
                    "VALUES (?, 'submitting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'unknown', ?)",
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
                        now,
                        now,
                        None if spend is None else spend.estimate_usd,
                    ),
                )
                if spend is not None and spend.quote_id is not None:
                    connection.execute(
                        "UPDATE quotes SET used_at = ?, used_by = ? WHERE quote_id = ?",
                        (now, cursor.lastrowid, spend.quote_id),
                    )
                return Claim(_fetch(connection, "id = ?", cursor.lastrowid), duplicate=False)

        return await self._run(claim)

    async def record_created(self, row_id: int, task: Task) -> JournalEntry:
        """The create of row ``row_id`` answered with ``task``: store its id and state."""
        now = self._clock()

        def record(connection: sqlite3.Connection) -> JournalEntry:
            with _immediate(connection):
                # A get_task of another process may have recorded this id already (it had the id before us).
                connection.execute(
                    "DELETE FROM tasks WHERE task_id = ? AND id != ? AND state = 'observed'", (task.task_id, row_id)
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

        def record(connection: sqlite3.Connection) -> None:
            with _immediate(connection):
                connection.execute(
                    "UPDATE tasks SET state = 'unknown', unknown_reason = ?, updated_at = ? "
                    "WHERE id = ? AND state = 'submitting'",
                    (reason, now, row_id),
                )

        await self._run(record)

    async def discard(self, row_id: int) -> None:
        """The gateway surely refused the create of row ``row_id`` (or it was never sent): nothing to remember,
        and a quote it used up may be used again."""

        def discard(connection: sqlite3.Connection) -> None:
            with _immediate(connection):
                deleted = connection.execute("DELETE FROM tasks WHERE id = ? AND state = 'submitting'", (row_id,))
                if deleted.rowcount:  # nothing was created, so the quote it used is good again
                    connection.execute("UPDATE quotes SET used_at = NULL, used_by = NULL WHERE used_by = ?", (row_id,))

        await self._run(discard)

    async def observe(self, task: Task, *, gateway: str, link_window: float) -> Observation:
        """Store the state of a task just read from the gateway.

        A task id the journal does not know is first matched against submissions whose outcome is unknown: if
        exactly one has the same gateway, kind and model and was sent between ``link_window`` seconds before
        the task's ``created_at`` and a minute after it (clock skew), the task is recorded as that submission's
        result. Otherwise it gets an ``observed`` row of its own.
        """
        if not task.task_id:
            raise ValueError("only a task with an id can be observed")
        task_id = task.task_id
        now = self._clock()

        def observe(connection: sqlite3.Connection) -> Observation:
            with _immediate(connection):
                update = f"UPDATE tasks SET {_STATE_COLUMNS} WHERE id = ?"
                row = connection.execute("SELECT id FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
                if row is not None:
                    connection.execute(update, (*_state_values(task, now), row["id"]))
                    return Observation(_fetch(connection, "id = ?", row["id"]), linked=False)
                candidate = _unknown_submission_for(connection, task, gateway, link_window)
                if candidate is not None:
                    connection.execute(
                        f"UPDATE tasks SET state = 'created', task_id = ?, {_STATE_COLUMNS} WHERE id = ?",
                        (task_id, *_state_values(task, now), candidate),
                    )
                    return Observation(_fetch(connection, "id = ?", candidate), linked=True)
                cursor = connection.execute(
                    "INSERT INTO tasks (gateway, state, kind, task_id, model, recorded_at, updated_at, status) "
                    "VALUES (?, 'observed', ?, ?, ?, ?, ?, 'unknown')",
                    (gateway, task.kind, task_id, task.model, now, now),
                )
                connection.execute(update, (*_state_values(task, now), cursor.lastrowid))
                return Observation(_fetch(connection, "id = ?", cursor.lastrowid), linked=False)

        return await self._run(observe)

    # ------------------------------------------------------------------------------------------- reads

    async def find_duplicate(self, submission: Submission, *, gateway: str, window: float) -> JournalEntry | None:
        """The earlier identical request :meth:`claim` would return instead of a new row now (read-only)."""
        now = self._clock()
        return await self._run(lambda connection: _duplicate(connection, submission, gateway, now - window))

    async def quote(self, submission: Submission, *, gateway: str, estimate_usd: float | None, ttl: float) -> Quote:
        """Record a quote for ``submission``: good for one create with the same arguments within ``ttl`` s."""
        now = self._clock()
        quote = Quote(f"quote_{secrets.token_hex(12)}", estimate_usd, now, now + ttl)

        def record(connection: sqlite3.Connection) -> Quote:
            with _immediate(connection):
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

        def read(connection: sqlite3.Connection) -> list[ModelSpend]:
            rows = connection.execute(
                f"SELECT model, COUNT(*), TOTAL(cost_estimate_usd), COUNT(cost_estimate_usd) FROM tasks "
                f"WHERE {_SPENT} GROUP BY model ORDER BY model",
                (gateway, since, until),
            )
            return [
                ModelSpend(model or "unknown", count, round(total, 4), count - priced)
                for model, count, total, priced in rows
            ]

        return await self._run(read)

    async def get(self, task_id: str) -> JournalEntry | None:
        """The row of ``task_id``, whichever process wrote it."""
        return await self._run(lambda connection: _fetch_or_none(connection, "task_id = ?", task_id))

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

        def recent(connection: sqlite3.Connection) -> list[JournalEntry]:
            return [_entry(row) for row in connection.execute(query, (*values, limit))]

        return await self._run(recent)

    # ------------------------------------------------------------------------------------------- plumbing

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` on a worker thread; the thread finishes it even if the caller is cancelled."""
        return await anyio.to_thread.run_sync(self._call, operation)

    def _call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            connection = self._connect()
            try:
                return operation(connection)
            except sqlite3.Error as exc:
                self._close_locked()
                raise self._error(exc) from exc

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(
                f"The task journal cannot be created: the directory {directory} cannot be made "
                f"({exc.strerror or exc}). Set SORA_STATE_DIR to a directory this user can write, or fix the "
                "path, then restart sora-mcp.",
                path=str(self.path),
            ) from None
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            mode = _enable_wal(connection, self._busy_timeout)
            if str(mode).lower() != "wal":
                logger.warning(
                    "The task journal %s runs in %s mode, not WAL (file system without locks?)", self.path, mode
                )
            connection.execute("PRAGMA synchronous = FULL")
            _migrate(connection, self.path)
        except sqlite3.Error as exc:
            if connection is not None:
                connection.close()
            raise self._error(exc) from exc
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        self._connection = connection
        self.ever_opened = True
        return connection

    def _close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken connection
                logger.debug("Closing the task journal failed", exc_info=True)

    def _error(self, exc: sqlite3.Error) -> JournalError:
        """A ``JournalError`` saying what is wrong with the file and how to fix it."""
        name = getattr(exc, "sqlite_errorname", "") or ""
        where = str(self.path)
        if (
            isinstance(exc, ForeignJournalError)
            or name in ("SQLITE_NOTADB", "SQLITE_CORRUPT")
            or name.startswith("SQLITE_CORRUPT")
        ):
            what = (
                "is not a sora-mcp journal"
                if isinstance(exc, ForeignJournalError)
                else "is damaged or not a SQLite database"
            )
            problem = f"{what} ({exc})"
            fix = f"Move the file aside (for example rename it to {self.path.name}.broken) and restart sora-mcp"
            fix += " to start a new journal, or set SORA_STATE_DIR to another directory"
        elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            problem = f"stayed locked by another process for more than {self._busy_timeout:g} s ({exc})"
            fix = "Try again in a moment; if it persists, look for a process holding the file open"
        elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
            problem = f"cannot be opened for writing ({exc})"
            fix = (
                f"Make {self.path.parent} and the journal files in it writable for this user, or set SORA_STATE_DIR "
                "to a writable directory"
            )
        elif name.startswith("SQLITE_FULL"):
            problem = f"cannot grow: the disk is full ({exc})"
            fix = "Free disk space"
        else:
            problem = f"failed ({name or type(exc).__name__}: {exc})"
            fix = "Check the file and its directory, or set SORA_STATE_DIR to another directory"
        return JournalError(f"The task journal {where} {problem}. {fix}.", path=where)


# --------------------------------------------------------------------------------------------- SQL helpers

_STATE_COLUMNS = (
    "status = ?, progress = ?, video_url = ?, expires_at = ?, error_message = ?, snapshot = ?, "
    "model = COALESCE(?, model), updated_at = ?"
)


QUOTES_KEPT_SECONDS = 86400.0
"""Quotes are deleted a day after they expire."""
_SPENT = "gateway = ? AND submitted_at >= ? AND submitted_at < ? AND state != 'observed' AND status != 'failed'"
"""The rows whose estimates count as spend: created through sora-mcp in the window (outcome unknown included),
not failed. A reused task has no row of its own, so it is not spent twice."""


def _duplicate(
    connection: sqlite3.Connection, submission: Submission, gateway: str, since: float
) -> JournalEntry | None:
    """The latest identical request sent since ``since`` whose task did not fail."""
    row = connection.execute(
        "SELECT * FROM tasks WHERE gateway = ? AND request_hash = ? AND submitted_at >= ? "
        "AND status != 'failed' ORDER BY submitted_at DESC, id DESC LIMIT 1",
        (gateway, submission.request_hash, since),
    ).fetchone()
    return None if row is None else _entry(row)


def _check_quote(
    connection: sqlite3.Connection, quote_id: str, gateway: str, submission: Submission, now: float
) -> None:
    row = connection.execute("SELECT * FROM quotes WHERE quote_id = ? AND gateway = ?", (quote_id, gateway)).fetchone()
    if row is None:
        raise QuoteRefused(quote_id, "unknown")
    if row["used_at"] is not None:
        raise QuoteRefused(quote_id, "used")
    if now >= row["expires_at"]:
        raise QuoteRefused(quote_id, "expired")
    if row["request_hash"] != submission.request_hash or row["tool"] != submission.tool:
        raise QuoteRefused(quote_id, "different_arguments")


def _check_budget(connection: sqlite3.Connection, budget: Budget, gateway: str, estimate: float, now: float) -> None:
    day, month = day_and_month(now)
    period = day if budget.window == "day" else month
    spent = _spent(connection, gateway, period.start, period.end)
    if over_budget(spent, estimate, budget.limit_usd):
        raise BudgetExceeded(budget, round(spent, 4), estimate, period.end)


def _spent(connection: sqlite3.Connection, gateway: str, since: float, until: float) -> float:
    total: float = connection.execute(
        f"SELECT TOTAL(cost_estimate_usd) FROM tasks WHERE {_SPENT}", (gateway, since, until)
    ).fetchone()[0]
    return total


def read_spend(path: Path, *, gateway: str, now: float) -> tuple[float, float]:
    """Today's and this month's estimated spend from the journal file at ``path``, opened read-only (neither
    created nor upgraded: ``sora-mcp doctor`` uses it); nothing when there is no journal yet, or it predates
    estimates (schema 1). Raises ``sqlite3.Error``."""
    if not path.exists():
        return 0.0, 0.0
    day, month = day_and_month(now)
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)) as connection:
        if "cost_estimate_usd" not in {row[1] for row in connection.execute("PRAGMA table_info(tasks)")}:
            return 0.0, 0.0
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


def _unknown_submission_for(connection: sqlite3.Connection, task: Task, gateway: str, window: float) -> int | None:
    if task.created_at is None:
        return None
    rows = connection.execute(
        "SELECT id FROM tasks WHERE gateway = ? AND kind = ? AND state IN ('submitting', 'unknown') "
        "AND submitted_at BETWEEN ? AND ? AND (? IS NULL OR model = ?) LIMIT 2",
        (gateway, task.kind, task.created_at - window, task.created_at + 60, task.model, task.model),
    ).fetchall()
    return int(rows[0]["id"]) if len(rows) == 1 else None


def _enable_wal(connection: sqlite3.Connection, busy_timeout: float) -> str:
    """Switch to WAL and return the journal mode in force. Two processes opening a new file at once can make the
    switch answer "database is locked" at once, without the busy handler waiting: retried until ``busy_timeout``."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            return str(connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)  # on the journal's worker thread, never the event loop


@contextmanager
def _immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock at once (waiting up to ``busy_timeout`` for it)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"The task journal {path} was written by a newer sora-mcp (schema {version}; this one knows "
            f"{SCHEMA_VERSION}). Upgrade sora-mcp, or set SORA_STATE_DIR to another directory.",
            path=str(path),
        )
    with _immediate(connection):
        found = connection.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
        if found == 0:
            _refuse_foreign_tables(connection, path)
            for statement in _SCHEMA:
                connection.execute(statement)
        for target in range(max(found, 1) + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                connection.execute(statement)
        if 0 < found < SCHEMA_VERSION:
            logger.info("Upgraded the task journal %s from schema %d to %d", path, found, SCHEMA_VERSION)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


_COLUMNS = frozenset(
    {"id", "gateway", "state", "kind", "task_id", "tool", "request_hash", "arguments", "prompt", "model"}
    | {"submitted_at", "owner_pid", "recorded_at", "updated_at", "unknown_reason", "status", "progress"}
    | {"video_url", "expires_at", "error_message", "snapshot"}
)


def _refuse_foreign_tables(connection: sqlite3.Connection, path: Path) -> None:
    """A file without our schema version but with a ``tasks`` table belongs to another program: never write
    into it (``CREATE TABLE IF NOT EXISTS`` would keep its table, and creates would then fail unrecorded)."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(tasks)")}
    if columns and columns != _COLUMNS:
        raise ForeignJournalError(
            f"it holds a tasks table that is not sora-mcp's: columns {', '.join(sorted(columns))}"
        )


class ForeignJournalError(sqlite3.DatabaseError):
    """The file is a SQLite database of another program."""


def _fetch(connection: sqlite3.Connection, where: str, value: Any) -> JournalEntry:
    entry = _fetch_or_none(connection, where, value)
    if entry is None:  # pragma: no cover - rows are read back inside the transaction that wrote them
        raise sqlite3.DatabaseError(f"journal row vanished ({where} {value!r})")
    return entry


def _fetch_or_none(connection: sqlite3.Connection, where: str, value: Any) -> JournalEntry | None:
    row = connection.execute(f"SELECT * FROM tasks WHERE {where}", (value,)).fetchone()
    return None if row is None else _entry(row)


def _snapshot(row: sqlite3.Row) -> Task | None:
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


def _entry(row: sqlite3.Row) -> JournalEntry:
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
    )


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


def _shorten_data_uri(image: str) -> str:
    """``data:image/png;base64,<...>`` becomes ``data:image/png;base64 (1234 chars, sha256 0f1e2d3c4b5a6978)``."""
    if not image.startswith("data:"):
        return image
    header, _, data = image.partition(",")
    return f"{header} ({len(data)} chars, sha256 {hashlib.sha256(data.encode()).hexdigest()[:16]})"
