"""The journal's shared backend: one PostgreSQL database for every replica on every machine (``SORA_DATABASE_URL``).

psycopg 3 and its connection pool, used synchronously on the journal's worker threads exactly as the SQLite
backend is: the operations in ``journal.py`` are written once for both, and the event loop never waits on the
database. (asyncpg would have needed a second, async copy of every operation.)

- The tables live in the schema ``sora_mcp`` (created on the first start; every connection's ``search_path``
  points there), so a database shared with other programs keeps its own ``tasks`` tables apart.
- Every write transaction first takes one transaction-level advisory lock (``pg_advisory_xact_lock``), the
  counterpart of SQLite's ``BEGIN IMMEDIATE``: the duplicate check, the quote, the budgets and the write-ahead row
  of a create are one decision across all machines, so two identical creates through two replicas send one POST.
- The schema is created and migrated under another advisory lock, so replicas starting at once migrate once.
- ``statement_timeout`` bounds every statement, the wait for the write lock included (``busy_timeout``).
- The database unreachable: each call fails within the connect timeout with the cause (refused, password,
  missing database), read from one direct connection attempt; calls in the next second fail at once with the
  same message. The pool reconnects in the background, and the first call after the database is back works.
- The password never leaves this module: messages name the URL as ``postgresql://user:***@host/db``.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import errors
from psycopg.rows import dict_row

from sora_mcp.config import database_url_secrets, redact
from sora_mcp.errors import JournalError
from sora_mcp.journal_schema import SCHEMA_VERSION, newer_schema_error, postgres_statements

if TYPE_CHECKING:
    from sora_mcp.journal import JournalSize

logger = logging.getLogger(__name__)
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # one line per reconnect attempt, without the cause

T = TypeVar("T")

SCHEMA = "sora_mcp"
WRITE_LOCK = 0x736F_7261_0001
"""The advisory lock every write transaction holds ("sora" and 1): writers of all replicas take turns."""
MIGRATION_LOCK = 0x736F_7261_0002
MIGRATION_TIMEOUT_MS = 600_000
"""How long creating or migrating the tables may take (new indexes of a million-row journal: seconds to minutes)."""
FAIL_FAST_SECONDS = 1.0
"""After a failure to connect, calls within this many seconds fail at once instead of waiting again."""


class PostgresStore:
    """The journal in the PostgreSQL database at ``url``; at most ``pool_size`` connections."""

    def __init__(
        self, url: str, *, pool_size: int = 10, busy_timeout: float = 5.0, connect_timeout: float = 3.0
    ) -> None:
        self.where, self._secrets = database_url_secrets(url)
        self.ever_opened = False
        self._url = url
        self._pool_size = pool_size
        self._busy_timeout = busy_timeout
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._migrated = False
        self._down: tuple[float, JournalError] | None = None
        self._probe_lock = threading.Lock()

    def run(self, operation: Callable[[Any], T]) -> T:
        """Run ``operation`` on a pooled connection (the schema created or migrated first); raises
        ``JournalError``."""
        down = self._down
        if down is not None and time.monotonic() < down[0]:
            raise JournalError(str(down[1]), path=self.where)  # a fresh error: its traceback does not grow
        for attempt in (1, 2):  # a second time only with a new pool, when the old one lagged behind an outage
            pool = self._open_pool()
            try:
                with pool.connection() as connection:
                    if not self._migrated:
                        self._migrate(connection)
                    result = operation(_Connection(connection))
                break
            except psycopg_pool.PoolTimeout as exc:
                error, renewed = self._no_connection(pool, exc)
                if not (renewed and attempt == 1):
                    raise error from None
            except psycopg.Error as exc:
                raise self._error(exc) from None
        if self._down is not None:
            logger.info("The task journal %s is reachable again", self.where)
            self._down = None
        self.ever_opened = True
        return result

    def read(self, operation: Callable[[Any], T]) -> T:
        """``run``: reads outside a transaction take no lock, so they never wait for a write."""
        return self.run(operation)

    @staticmethod
    def size(connection: "_Connection") -> "JournalSize":
        """The rows of ``tasks`` and the bytes of the journal's tables with their indexes."""
        from sora_mcp.journal import JournalSize

        found = _one(
            connection.execute(
                "SELECT (SELECT COUNT(*) FROM tasks) AS rows, pg_total_relation_size('tasks') "
                "+ pg_total_relation_size('quotes') AS bytes"
            )
        )
        return JournalSize(int(found["rows"]), int(found["bytes"]))

    @staticmethod
    @contextmanager
    def write(connection: "_Connection") -> Iterator[None]:
        """A transaction holding the write lock that every replica's writes take in turn."""
        with connection.raw.transaction():
            connection.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield

    @staticmethod
    def insert(connection: "_Connection", statement: str, values: tuple[Any, ...]) -> int:
        """Run an ``INSERT`` and return the new row's id."""
        return int(_one(connection.execute(statement + " RETURNING id", values))["id"])

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._migrated = False
        if pool is not None:
            pool.close(timeout=self._busy_timeout)

    def _open_pool(self) -> "psycopg_pool.ConnectionPool[Any]":
        with self._lock:
            if self._pool is None:
                self._pool = psycopg_pool.ConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=self._pool_size,
                    open=False,
                    timeout=self._connect_timeout,
                    check=psycopg_pool.ConnectionPool.check_connection,
                    name="sora-mcp-journal",
                    kwargs=self._connect_arguments(),
                )
                self._pool.open(wait=False)  # start-up never waits for the database
            return self._pool

    def _connect_arguments(self) -> dict[str, Any]:
        """How every connection of this journal is made: the pool's, the probe's and the doctor's."""
        timeout_ms = int(self._busy_timeout * 1000)
        options = f"-c search_path={SCHEMA} -c statement_timeout={timeout_ms}"
        options += f" -c idle_in_transaction_session_timeout={timeout_ms * 6}"
        connect_timeout = max(2, round(self._connect_timeout))
        return {"autocommit": True, "row_factory": dict_row, "connect_timeout": connect_timeout, "options": options}

    def _migrate(self, connection: "psycopg.Connection[Any]") -> None:
        """Create the schema and tables, or bring them to this version; once, whoever starts at the same time."""
        with connection.transaction():
            # Building an index of a large journal (a migration) may take longer than a statement may otherwise.
            connection.execute(f"SET LOCAL statement_timeout = {MIGRATION_TIMEOUT_MS}")
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            if _one(connection.execute("SELECT to_regnamespace(%s) AS found", (SCHEMA,)))["found"] is None:
                connection.execute(f"CREATE SCHEMA {SCHEMA}")  # only when missing: it needs CREATE on the database
            connection.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.journal_schema (version INTEGER NOT NULL)")
            found = _one(connection.execute(f"SELECT MAX(version) AS version FROM {SCHEMA}.journal_schema"))
            version = found["version"] or 0
            if version > SCHEMA_VERSION:
                raise newer_schema_error(self.where, version, "or point SORA_DATABASE_URL at another database")
            if version < SCHEMA_VERSION:
                for statement in postgres_statements(version):
                    connection.execute(statement)
                connection.execute(f"DELETE FROM {SCHEMA}.journal_schema")
                connection.execute(f"INSERT INTO {SCHEMA}.journal_schema VALUES (%s)", (SCHEMA_VERSION,))
                action = "Created" if version == 0 else f"Upgraded from schema {version}"
                logger.info("%s the task journal in %s (schema %d)", action, self.where, SCHEMA_VERSION)
        self._migrated = True

    def _error(self, exc: psycopg.Error) -> JournalError:
        """A ``JournalError`` naming the database (password masked), what went wrong and the fix."""
        problem, fix = _advice(exc, self._busy_timeout)
        message = f"The task journal {self.where} {problem}. {fix}."
        for secret in self._secrets:
            message = redact(message, secret)
        return JournalError(message, path=self.where)

    def _no_connection(
        self, pool: "psycopg_pool.ConnectionPool[Any]", timeout: psycopg.Error
    ) -> tuple[JournalError, bool]:
        """The pool gave no connection in time. One direct attempt (one thread at a time; the others fail fast on
        its answer) tells a database that is away (refused, password, missing database: calls in the next
        second fail at once) from one that answers: then the pool is busy, or still backing off from an outage
        (its attempts wait 1, 2, 4... s), and a new pool replaces it (the answer's flag) for the call to retry."""
        if not self._probe_lock.acquire(blocking=False):
            down = self._down
            return (self._error(timeout) if down is None else JournalError(str(down[1]), path=self.where)), False
        try:
            try:
                psycopg.connect(self._url, **self._connect_arguments()).close()
            except psycopg.Error as exc:
                error = self._error(exc)
                self._down = (time.monotonic() + FAIL_FAST_SECONDS, error)
                return error, False
            stats = pool.get_stats()
            if stats.get("pool_size", 0) < self._pool_size:  # not busy: connections are missing, being retried
                self._replace_pool(pool)
                back = f"The task journal {self.where} was away and is back, but did not answer in time. Try again."
                return JournalError(back, path=self.where), True
            busy = (
                f"The task journal {self.where} is busy: all {self._pool_size} connections stayed in use for "
                f"{self._connect_timeout:g} s. Try again in a moment, or raise SORA_DATABASE_POOL_SIZE."
            )
            return JournalError(busy, path=self.where), False
        finally:
            self._probe_lock.release()

    def _replace_pool(self, stale: "psycopg_pool.ConnectionPool[Any]") -> None:
        with self._lock:
            if self._pool is stale:
                self._pool = None
        stale.close(timeout=0)


def _advice(exc: psycopg.Error, busy_timeout: float) -> tuple[str, str]:
    """What went wrong, and what fixes it."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    # A failed connection carries no SQLSTATE, only the server's words (English unless lc_messages says else).
    login = ("password authentication failed", "no pg_hba.conf entry", 'role "')
    if isinstance(exc, errors.InvalidPassword | errors.InvalidAuthorizationSpecification) or any(
        words in detail for words in login
    ):
        return f"refused the login ({detail})", "Check the user and password in SORA_DATABASE_URL"
    if isinstance(exc, errors.InvalidCatalogName) or ('database "' in detail and "does not exist" in detail):
        return f"does not exist ({detail})", "Create the database (see the README, Several machines) or fix its name"
    if isinstance(exc, errors.InsufficientPrivilege):
        fix = "Grant the role CREATE on the database, or create the schema sora_mcp owned by the role (README)"
        return f"is not writable for this role ({detail})", fix
    if isinstance(exc, errors.QueryCanceled | errors.LockNotAvailable):
        fix = "Try again in a moment; if it persists, look for a session holding locks (pg_stat_activity)"
        return f"did not answer within {busy_timeout:g} s ({detail})", fix
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError):
        fix = "Check that PostgreSQL runs and that this machine can reach it (SORA_DATABASE_URL); sora-mcp "
        fix += "reconnects by itself once it is back"
        return f"cannot be reached ({detail})", fix
    return f"failed ({exc.sqlstate or type(exc).__name__}: {detail})", "Check the database and its log"


class _Connection:
    """A pooled connection that takes the ``?`` placeholders the journal's statements are written with."""

    def __init__(self, raw: "psycopg.Connection[Any]") -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Any = (), /) -> "psycopg.Cursor[Any]":
        return self.raw.execute(_placeholders(sql), parameters)


def _one(cursor: "psycopg.Cursor[Any]") -> Any:
    row = cursor.fetchone()
    assert row is not None  # statements that always return one row
    return row


@lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    """``?`` as psycopg's ``%s`` (the statements hold no other ``?`` or ``%``)."""
    return sql.replace("%", "%%").replace("?", "%s")


def inspect_size(url: str) -> "JournalSize | None":
    """The rows and bytes of the journal (None: not created yet), read without creating anything (``sora-mcp
    doctor``). Raises ``JournalError``."""

    def size(connection: "psycopg.Connection[Any]") -> "JournalSize | None":
        return PostgresStore.size(_Connection(connection)) if _exists(connection, "tasks") else None

    return _read_only(url, size)


def inspect(url: str, *, gateway: str, now: float) -> tuple[int, tuple[float, float]]:
    """The journal's schema version (0: not created yet) and today's and this month's estimated spend, read
    without creating or migrating anything (``sora-mcp doctor``). Raises ``JournalError``."""
    from sora_mcp.journal import spend_of

    def read(connection: "psycopg.Connection[Any]") -> tuple[int, tuple[float, float]]:
        if not _exists(connection, "journal_schema"):
            return 0, (0.0, 0.0)
        version = _one(connection.execute(f"SELECT MAX(version) AS version FROM {SCHEMA}.journal_schema"))
        found = int(version["version"] or 0)
        if found < 2:  # before estimates
            return found, (0.0, 0.0)
        return found, spend_of(_Connection(connection), gateway=gateway, now=now)

    return _read_only(url, read)


def _read_only(url: str, read: Callable[["psycopg.Connection[Any]"], T]) -> T:
    """``read`` on one connection of its own, made as the journal's are; for ``sora-mcp doctor``, which neither
    creates nor migrates anything. Raises ``JournalError``."""
    store = PostgresStore(url)
    try:
        with psycopg.connect(url, **store._connect_arguments()) as connection:
            return read(connection)
    except psycopg.Error as exc:
        raise store._error(exc) from None


def _exists(connection: "psycopg.Connection[Any]", table: str) -> bool:
    return _one(connection.execute("SELECT to_regclass(%s) AS found", (f"{SCHEMA}.{table}",)))["found"] is not None
