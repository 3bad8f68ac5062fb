"""Where the sandbox keeps its tasks: a small SQLite file in the state directory, so that they outlive the process.

``sora-mcp --sandbox`` opens it with :func:`open_sandbox_store`; the simulation itself is in ``sandbox.py``.
"""

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
TaskKind = Literal["video", "character"]

STORE_FILENAME = "sandbox.sqlite3"
"""The sandbox's tasks, next to the task journal in the state directory."""
_STORE_KEEP_S = 7 * 86400
"""Stored sandbox tasks older than this are deleted (their media links expired long before)."""


@dataclass
class SandboxTask:
    """One simulated task. Its status is derived from the clock, never stored."""

    id: str
    kind: TaskKind
    model: str
    created_at: float
    seconds: float
    """Simulated processing time from creation to the terminal status."""
    request: JSON
    """The accepted request body."""
    fails: bool = False
    """Whether the task ends `failed` rather than `completed`."""
    character: JSON | None = None
    """For a character task: the character it creates, without its picture URL."""


class SandboxStore:
    """Sandbox tasks in a small SQLite file, so that they outlive the server process.

    Several sandbox servers may share the file (each Inspector call starts one): every write is one statement,
    and a lookup that misses this process's memory reads the file. Tasks older than a week are deleted.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sandbox_tasks (id TEXT PRIMARY KEY, created_at REAL NOT NULL, task TEXT)"
            )
        except sqlite3.Error:
            self._db.close()
            raise

    def put(self, task: SandboxTask) -> None:
        with self._db:
            self._db.execute("DELETE FROM sandbox_tasks WHERE created_at < ?", (task.created_at - _STORE_KEEP_S,))
            self._db.execute(
                "INSERT OR REPLACE INTO sandbox_tasks VALUES (?, ?, ?)",
                (task.id, task.created_at, json.dumps(asdict(task))),
            )

    def get(self, task_id: str) -> SandboxTask | None:
        row = self._db.execute("SELECT task FROM sandbox_tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else SandboxTask(**json.loads(row[0]))

    def close(self) -> None:
        self._db.close()


@contextmanager
def open_sandbox_store(state_dir: Path | None) -> Iterator[SandboxStore | None]:
    """The store in ``state_dir`` (``SORA_STATE_DIR`` or the platform default), or None, with a warning, when it
    cannot be opened: the sandbox then keeps its tasks in memory only."""
    from sora_mcp.journal import default_state_dir

    path = (state_dir or default_state_dir()) / STORE_FILENAME
    try:
        store = SandboxStore(path)
    except (OSError, sqlite3.Error) as exc:
        logger.warning("Sandbox tasks are kept in memory only: cannot open %s (%s)", path, exc)
        yield None
        return
    try:
        yield store
    finally:
        store.close()
