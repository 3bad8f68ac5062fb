"""Section 6 of the benchmarks: creates + lists per second through 1 and 4 stateless replicas, on one SQLite
journal (replicas on one machine) and on one PostgreSQL journal (what replicas on several machines share).

Each operation is a ``create_video`` with a new prompt (so duplicate protection lets it through to the gateway)
followed by a ``list_tasks``; 16 clients spread their operations round-robin over the replicas. The PostgreSQL
server is started by the same helper the tests use (``tests/postgres.py``: initdb and pg_ctl in a temporary
directory), with ``fsync=off`` (the figure is sora-mcp's cost, not the disk's).
"""

import itertools
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from postgres import find_bindir, running_server  # noqa: E402  (the tests' helper, not an installed module)

CLIENTS = 16


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """The URL of a new database on a PostgreSQL server of our own, or None when PostgreSQL is not installed."""
    if find_bindir() is None:
        yield None
        return
    with running_server(prefix="sora-bench-pg-") as server:
        yield server.database()


async def creates_and_lists(urls: list[str], operations: int) -> float:
    """Operations (a create, then a list) per second, ``CLIENTS`` clients spread over the replicas at ``urls``."""
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Client(urls[index % len(urls)])) for index in range(CLIENTS)]
        for session in sessions:  # warm: the first result compiles the output schema client-side
            await session.call_tool("list_tasks", {"limit": 1})
        counter = itertools.count()

        async def worker(session: Client) -> None:
            while (index := next(counter)) < operations:
                created = await session.call_tool("create_video", {"prompt": f"replica bench {index} {time.time()}"})
                assert not created.is_error, created
                listed = await session.call_tool("list_tasks", {"limit": 10})
                assert not listed.is_error, listed

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for session in sessions:
                group.start_soon(worker, session)
        return operations / (time.perf_counter() - started)


async def replica_rows(start_replicas: Any, env: dict[str, str], quick: bool) -> list[str]:
    """Rows of section 6. ``start_replicas(env, n)`` is a context manager yielding the replicas' MCP URLs."""
    operations = 40 if quick else 400
    rates: dict[tuple[str, int], float] = {}
    with postgres_database() as database_url:
        for backend in ("sqlite", "postgres"):
            if backend == "postgres" and database_url is None:
                continue
            for replicas in (1, 4):
                state = tempfile.mkdtemp(prefix="sora-bench-state-")
                backend_env = env | {"XDG_STATE_HOME": state, "SORA_STATE_DIR": state}
                if backend == "postgres":
                    assert database_url is not None
                    backend_env["SORA_DATABASE_URL"] = database_url
                with ExitStack() as stack:
                    urls = stack.enter_context(start_replicas(backend_env, replicas))
                    rates[backend, replicas] = await creates_and_lists(urls, operations)
                shutil.rmtree(state, ignore_errors=True)
    rows = [
        "## 6. Replicas: creates + lists per second (Streamable HTTP, `--stateless`, one shared journal)\n",
        "| journal | 1 replica | 4 replicas | 4 vs 1 |",
        "|---|---|---|---|",
    ]
    for backend, label in (("sqlite", "SQLite (one machine, one file)"), ("postgres", "PostgreSQL (any machines)")):
        if (backend, 1) not in rates:
            rows.append(f"| {label} | not measured: PostgreSQL is not installed | - | - |")
            continue
        one, four = rates[backend, 1], rates[backend, 4]
        rows.append(f"| {label} | {one:.0f} /s | {four:.0f} /s | {four / one:.2f}x |")
    rows.append(
        f"\nOne operation is a `create_video` with a new prompt (its write-ahead row, the POST to the sandbox "
        f"gateway, the task id recorded) and a `list_tasks`; {CLIENTS} clients spread {operations} operations "
        "round-robin over the replicas. Every write of every replica takes the journal's one write lock (SQLite's "
        "BEGIN IMMEDIATE, a PostgreSQL advisory lock), which is what makes duplicate protection and budgets hold "
        "across replicas; the two cores of this machine run the replicas, the gateway, the clients and "
        "PostgreSQL alike, so more replicas add processes to share them rather than cores.\n"
    )
    return rows


async def _main(quick: bool) -> None:  # pragma: no cover - benchmark
    import run  # bench/run.py: the gateway and the replica processes

    port = run.free_port()
    env = run.base_env(f"http://127.0.0.1:{port}", tempfile.mkdtemp(prefix="sora-bench-"))
    with run.background([run.PY, str(run.BENCH / "gateway.py"), str(port)], env, port):
        rows = await replica_rows(run.stateless_replicas, env, quick)
    print("\n".join(rows))


if __name__ == "__main__":
    # Section 6 alone: python bench/replicas.py [--quick]
    anyio.run(_main, "--quick" in sys.argv)
