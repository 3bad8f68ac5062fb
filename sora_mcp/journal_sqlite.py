"""The journal's embedded backend: one SQLite file per user, nothing to install.

``journal.sqlite3`` in ``SORA_STATE_DIR`` (default: the platform's user state directory) is shared by every
sora-mcp process of the user (Claude Desktop and Claude Code at once, say). WAL mode lets readers and one writer
work side by side; ``busy_timeout`` makes a writer wait for another process's write instead of failing; every
write runs in a ``BEGIN IMMEDIATE`` transaction, so two processes cannot both decide to create the same task.
``synchronous=FULL``: a committed row survives a power cut too, since a row can stand for money spent.

Two connections per journal, each used by one worker thread at a time: one for writes (and the reads inside
them), one for reads alone, so that a ``list_tasks`` never holds up a create's write-ahead row. A failure drops
the connection, and the next call opens it again (so a fixed permission or a lock released later heals without a
restart).
"""

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sora_mcp.errors import JournalError
from sora_mcp.journal_schema import SCHEMA_VERSION, V1_COLUMNS, newer_schema_error, sqlite_migrations, sqlite_schema

if TYPE_CHECKING:
    from sora_mcp.journal import JournalSize

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SqliteStore:
    """The journal file at ``path``; ``busy_timeout`` is how long a write waits for another process's."""

    def __init__(self, path: Path, *, busy_timeout: float) -> None:
        self.path = path
        self.where = str(path)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._opened = 0
        """How often the writing connection was opened: the reader follows it to a file moved aside and renewed."""
        self._reader_of = 0
        self.ever_opened = False

    def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` on the connection (opened, created and migrated as needed); raises ``JournalError``."""
        with self._lock:
            connection = self._connect()
            try:
                return operation(connection)
            except sqlite3.Error as exc:
                self._close_locked()
                raise self._error(exc) from exc

    def read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``operation`` on the reading connection: in WAL mode it sees every committed write and
        waits for none. Raises ``JournalError``."""
        if not self.ever_opened:  # the tables are created (or migrated) by the writing connection
            self.run(lambda connection: None)
        with self._read_lock:
            if self._reader is not None and self._reader_of != self._opened:
                self._reader, reader = None, self._reader
                _close_quietly(reader)
            if self._reader is None:
                self._reader_of = self._opened
                self._reader = self._open_reader()
            try:
                return operation(self._reader)
            except sqlite3.Error as exc:
                self._reader, reader = None, self._reader
                _close_quietly(reader)
                raise self._error(exc) from exc

    @staticmethod
    def size(connection: sqlite3.Connection) -> "JournalSize":
        """The rows of ``tasks`` and the bytes of the file with its write-ahead log."""
        from sora_mcp.journal import JournalSize

        rows = connection.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        database = connection.execute("PRAGMA database_list").fetchone()[2]
        total = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):  # no log file while no connection is open
                total += Path(database + suffix).stat().st_size
        return JournalSize(int(rows), total or None)

    @staticmethod
    @contextmanager
    def write(connection: sqlite3.Connection) -> Iterator[None]:
        """A write transaction that takes the write lock at once (waiting up to ``busy_timeout`` for it)."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @staticmethod
    def insert(connection: sqlite3.Connection, statement: str, values: tuple[Any, ...]) -> int:
        """Run an ``INSERT`` and return the new row's id."""
        row_id = connection.execute(statement, values).lastrowid
        assert row_id is not None
        return row_id

    def close(self) -> None:
        with self._lock:
            self._close_locked()
        with self._read_lock:
            self._reader, reader = None, self._reader
            _close_quietly(reader)

    def _open_reader(self) -> sqlite3.Connection:
        try:
            reader = sqlite3.connect(  # mode=rw: a file deleted meanwhile is not created empty by a read
                f"{self.path.as_uri()}?mode=rw",
                uri=True,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        reader.row_factory = sqlite3.Row
        try:
            reader.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            reader.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            reader.close()
            raise self._error(exc) from exc
        return reader

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
                path=self.where,
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
            self._migrate(connection)
        except sqlite3.Error as exc:
            if connection is not None:
                connection.close()
            raise self._error(exc) from exc
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        self._connection = connection
        self._opened += 1
        self.ever_opened = True
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise newer_schema_error(self.where, version, "or set SORA_STATE_DIR to another directory")
        with self.write(connection):
            found = connection.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            if found == 0:
                _refuse_foreign_tables(connection)
                for statement in sqlite_schema():
                    connection.execute(statement)
            for target in range(max(found, 1) + 1, SCHEMA_VERSION + 1):
                for statement in sqlite_migrations(target):
                    connection.execute(statement)
            if 0 < found < SCHEMA_VERSION:
                logger.info("Upgraded the task journal %s from schema %d to %d", self.path, found, SCHEMA_VERSION)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _close_locked(self) -> None:
        self._connection, connection = None, self._connection
        _close_quietly(connection)

    def _error(self, exc: sqlite3.Error) -> JournalError:
        """A ``JournalError`` saying what is wrong with the file and how to fix it."""
        name = getattr(exc, "sqlite_errorname", "") or ""
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
        return JournalError(f"The task journal {self.where} {problem}. {fix}.", path=self.where)


def read_spend_file(
    path: Path, spent: Callable[[Any], tuple[float, float]], *, busy_timeout: float
) -> tuple[float, float]:
    """``spent`` of the journal file at ``path``, opened read-only (neither created nor upgraded: ``sora-mcp
    doctor`` uses it); nothing when there is no journal yet, or it predates estimates (schema 1). Raises
    ``sqlite3.Error``."""
    found = _read_only(
        path, lambda connection, columns: spent(connection) if "cost_estimate_usd" in columns else None, busy_timeout
    )
    return found or (0.0, 0.0)


def read_size_file(path: Path, *, busy_timeout: float) -> "JournalSize | None":
    """The rows and bytes of the journal file at ``path``, opened read-only (``sora-mcp doctor``); None when there
    is no journal yet. Raises ``sqlite3.Error``."""
    return _read_only(path, lambda connection, columns: SqliteStore.size(connection) if columns else None, busy_timeout)


def _read_only(
    path: Path, read: Callable[[sqlite3.Connection, frozenset[str]], T | None], busy_timeout: float
) -> T | None:
    """``read(connection, the columns of tasks)`` on the journal file opened read-only, neither created nor
    upgraded; None when there is no file."""
    if not path.exists():
        return None
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=busy_timeout)) as connection:
        connection.row_factory = sqlite3.Row
        return read(connection, frozenset(row[1] for row in connection.execute("PRAGMA table_info(tasks)")))


def _close_quietly(connection: sqlite3.Connection | None) -> None:
    if connection is None:
        return
    try:
        connection.close()
    except sqlite3.Error:  # pragma: no cover - closing a broken connection
        logger.debug("Closing the task journal failed", exc_info=True)


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


def _refuse_foreign_tables(connection: sqlite3.Connection) -> None:
    """A file without our schema version but with a ``tasks`` table belongs to another program: never write
    into it (``CREATE TABLE IF NOT EXISTS`` would keep its table, and creates would then fail unrecorded)."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(tasks)")}
    if columns and columns != V1_COLUMNS:
        raise ForeignJournalError(
            f"it holds a tasks table that is not sora-mcp's: columns {', '.join(sorted(columns))}"
        )


class ForeignJournalError(sqlite3.DatabaseError):
    """The file is a SQLite database of another program."""
