"""Sections 9 and 10 of the benchmarks: the journal's cost as it grows (issue 16), at 1k, 100k and 1M rows.

9. Journal operations, in process, through ``Journal``'s public async methods (each on its worker thread, as the
   server calls them): a create (``claim`` + ``record_created``), a read of a known task (``get``), a read of a
   task the journal does not know (``observe`` with a ``created_at``, so the outcome-unknown link is looked for),
   ``recent`` with each filter ``list_tasks`` offers, and the first list after start-up (a new ``Journal`` on
   the file, its first ``recent``, with the OS page cache as it is).
10. Creates per second through 1 and 4 stateless replicas sharing one pre-filled journal, while a few other
   clients read tasks made elsewhere (created directly at the gateway, so each read is of an id the journal does
   not know: the link scan, then an ``observed`` row).

A journal of N rows is built quickly: opened once through ``Journal`` (so the schema and its migrations exist),
then filled with sqlite3 directly in one transaction (``executemany`` of synthetic rows: mostly created tasks
that ended, a mix of kinds, statuses and models, some observed rows, a handful whose outcome is unknown or still
being sent, spread over 120 days). Columns added by later migrations keep their defaults.

    python bench/journal_scale.py [--quick]     # both sections alone
"""

import hashlib
import itertools
import json
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client

from sora_mcp.journal import Journal, SpendGuard, Submission, task_snapshot
from sora_mcp.models import Task, TaskError

JOURNAL_FILENAME = "journal.sqlite3"
OTHER_GATEWAY = "https://dashlyai.cc"
"""A few rows belong to another gateway (a user who switched): every query filters them out."""
DAYS = 120
DUPLICATE_WINDOW = 600.0
"""``SORA_DUPLICATE_WINDOW``'s default: a create looks this far back for the same request."""
LINK_WINDOW = 300.0
"""The server's default link window: (SORA_TIMEOUT 30 s + 30 s of Retry-After) x 4 attempts, plus 60 s of skew."""
LIST_LIMIT = 20
"""``list_tasks``' default limit."""
PROMPTS = (
    "a red fox running through fresh snow at dawn, slow motion",
    "timelapse of a city skyline from day to night, cinematic",
    "a cat astronaut floating inside a space station, soft light",
    "waves crashing on black volcanic rocks, aerial drone shot",
    "a barista pouring latte art in a cozy cafe, close-up",
    "an origami crane unfolding itself on a wooden desk",
    "a vintage car driving along a coastal road at sunset",
    "rain on a window with neon city lights blurred behind",
)
FILTERS: dict[str, dict[str, str]] = {
    "list, no filter": {},
    "list kind=video": {"kind": "video"},
    "list kind=character": {"kind": "character"},
    "list status=completed": {"status": "completed"},
    "list status=failed": {"status": "failed"},
    "list status=in_progress (few rows)": {"status": "in_progress"},
    "list kind=video, status=completed": {"kind": "video", "status": "completed"},
    "list kind=character, status=in_progress (few rows)": {"kind": "character", "status": "in_progress"},
}


# ------------------------------------------------------------------------------------------------ the builder


def _snapshot_template(kind: str, status: str, model: str) -> str:
    """The stored snapshot of such a task, with ``@ID@``, ``1111111111`` (created) and ``2222222222`` (done)
    standing for the row's values: made by the journal's own serializer, so it reads back as a ``Task``."""
    done = status in ("completed", "failed")
    fields: dict[str, Any] = {"task_id": "@ID@", "kind": kind, "status": status, "model": model}
    fields |= {"created_at": 1111111111, "upstream_status": status}
    fields["progress"] = 100 if status == "completed" else 0 if status in ("queued", "failed") else 40
    if done:
        fields["completed_at"] = 2222222222
    if status == "completed" and kind == "video":
        fields |= {
            "video_url": "https://files.dashlyai.cc/@ID@.mp4",
            "thumbnail_url": "https://files.dashlyai.cc/@ID@.jpg",
        }
        fields["expires_at"] = 2222222222
    if status == "failed":
        fields["error"] = TaskError(code="generation_failed", message="Generation failed: Content violates the policy")
    return task_snapshot(Task(**fields))


def _rows(count: int, gateway: str, now: float, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` synthetic rows, oldest first (ids grow with time, as in a real journal)."""
    templates: dict[tuple[str, str, str], str] = {}
    start = now - DAYS * 86400
    step = (DAYS * 86400 - 120) / count
    unknown = set(rng.sample(range(count), min(count // 4, 10)))  # a handful, spread over the whole history
    submitting = set(rng.sample(range(max(0, count - 50), count), min(count // 10, 3)))  # recent, abandoned
    running = set(range(max(0, count - 30), count))  # the last few tasks still render
    characters_running = set(rng.sample(sorted(running), min(len(running), 3)))
    rows = []
    for index in range(count):
        recorded = start + index * step
        own = rng.random() < 0.97
        kind = "character" if index in characters_running or (index not in running and rng.random() < 0.1) else "video"
        model = "sora-2" if kind == "character" or rng.random() < 0.7 else "sora-2-pro"
        if index in running:
            status = "in_progress" if index in characters_running or rng.random() < 0.6 else "queued"
        else:
            status = "failed" if rng.random() < 0.08 else "completed"
        state = "observed" if rng.random() < 0.06 else "created"
        if index in unknown or index in submitting:
            state, status = ("unknown" if index in unknown else "submitting"), "unknown"
        prompt = f"{PROMPTS[index % len(PROMPTS)]} (take {index})" if kind == "video" else None
        task_id = None if status == "unknown" else f"task_{int(recorded * 1000):013d}{index:013d}"
        row: dict[str, Any] = {
            "gateway": gateway if own else OTHER_GATEWAY,
            "state": state,
            "kind": kind,
            "task_id": task_id,
            "model": model,
            "recorded_at": recorded,
            "updated_at": recorded + (0 if status == "unknown" else 180),
            "status": status,
            "progress": 100 if status == "completed" else 40 if status == "in_progress" else 0,
        }
        if state != "observed":
            tool = "create_video" if kind == "video" else "create_character"
            arguments = {"model": model, "prompt": prompt} if kind == "video" else {"timestamps": "1,3"}
            arguments |= {"url": f"https://example.com/clip{index}.mp4"} if kind == "character" else {}
            arguments_json = json.dumps(arguments, sort_keys=True, separators=(",", ":"))
            row |= {
                "tool": tool,
                "request_hash": hashlib.sha256(f"{kind}{arguments_json}".encode()).hexdigest(),
                "arguments": arguments_json,
                "prompt": prompt,
                "submitted_at": recorded,
                "owner_pid": 4000 + index % 300,
                "owner_host": "bench-host",
                "cost_estimate_usd": 0.5 if model == "sora-2-pro" else 0.1,
            }
        if state == "unknown":
            row["unknown_reason"] = "the gateway did not answer within 30 s"
        if task_id is not None:
            key = (kind, status, model)
            if key not in templates:
                templates[key] = _snapshot_template(kind, status, model)
            snapshot = templates[key].replace("@ID@", task_id).replace("1111111111", str(int(recorded)))
            row["snapshot"] = snapshot.replace("2222222222", str(int(recorded) + 180))
            if status == "completed" and kind == "video":
                row |= {"video_url": f"https://files.dashlyai.cc/{task_id}.mp4", "expires_at": int(recorded) + 86580}
            if status == "failed":
                row["error_message"] = "Generation failed: Content violates the policy"
        rows.append(row)
    return rows


async def build_journal(path: Path, rows: int, gateway: str, *, seed: int = 16) -> None:
    """A journal file at ``path`` holding ``rows`` synthetic rows of ``gateway`` (and a few of another)."""
    journal = Journal(path)
    await journal.open()  # the schema, as the installed sora-mcp makes it (later migrations included)
    await journal.close()
    data = _rows(rows, gateway, time.time(), random.Random(seed))

    def fill() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            present = [row[1] for row in connection.execute("PRAGMA table_info(tasks)") if row[1] != "id"]
            known = {name for row in data[:1000] for name in row}
            columns = [name for name in present if name in known]
            connection.execute("PRAGMA synchronous = OFF")  # the builder's own connection only: a test file
            connection.execute("BEGIN")
            connection.executemany(
                f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                ([row.get(name) for name in columns] for row in data),
            )
            connection.execute("COMMIT")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()

    await anyio.to_thread.run_sync(fill)


class JournalFiles:
    """Pre-filled journals of several sizes for one gateway, each built once, in a directory of its own (the
    state directory a server is pointed at)."""

    def __init__(self, root: Path, gateway: str) -> None:
        self.root = root
        self.gateway = gateway
        self.build_seconds: dict[int, float] = {}

    async def state_dir(self, rows: int) -> Path:
        directory = self.root / f"rows-{rows}"
        if not (directory / JOURNAL_FILENAME).exists():
            directory.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            await build_journal(directory / JOURNAL_FILENAME, rows, self.gateway)
            self.build_seconds[rows] = time.perf_counter() - started
        return directory

    async def path(self, rows: int) -> Path:
        return await self.state_dir(rows) / JOURNAL_FILENAME


def size_label(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}k"


def file_mib(path: Path) -> float:
    return sum(part.stat().st_size for part in path.parent.glob(f"{path.name}*")) / 2**20


# ------------------------------------------------------------------------------------------------ 9. operations


def _new_task_id() -> str:
    return f"task_{secrets.token_hex(13).upper()}"


async def journal_operations(path: Path, gateway: str, repeats: int) -> dict[str, list[float]]:
    """Seconds per operation on the journal at ``path``, ``repeats`` times each, interleaved."""
    times: dict[str, list[float]] = {}
    with sqlite3.connect(path) as connection:
        known_ids = [
            row[0]
            for row in connection.execute(
                "SELECT task_id FROM tasks WHERE gateway = ? AND task_id IS NOT NULL ORDER BY random() LIMIT ?",
                (gateway, repeats),
            )
        ]
    connection.close()
    journal = Journal(path)
    await journal.open()

    async def create() -> None:
        prompt = f"journal scale bench {secrets.token_hex(8)}"
        arguments = f'{{"model":"sora-2","prompt":"{prompt}"}}'
        submission = Submission(
            kind="video",
            tool="create_video",
            request_hash=hashlib.sha256(arguments.encode()).hexdigest(),
            arguments=arguments,
            prompt=prompt,
            model="sora-2",
        )
        claim = await journal.claim(submission, gateway=gateway, window=DUPLICATE_WINDOW, spend=SpendGuard(0.1))
        now = int(time.time())
        created = Task(task_id=_new_task_id(), kind="video", status="queued", model="sora-2", created_at=now)
        await journal.record_created(claim.entry.row_id, created)

    picks = itertools.cycle(known_ids)

    async def get_known() -> None:
        assert await journal.get(next(picks)) is not None

    async def get_new() -> None:
        # queued, as the bench's creates are: rows the bench adds must not fill the in_progress lists, which in a
        # real journal match only the few tasks rendering now
        task = Task(task_id=_new_task_id(), kind="video", status="queued", model="sora-2", created_at=int(time.time()))
        await journal.observe(task, gateway=gateway, link_window=LINK_WINDOW, in_flight=LINK_WINDOW - 60)

    def listing(filters: dict[str, str]) -> Callable[[], Awaitable[Any]]:
        async def call() -> None:
            await journal.recent(gateway=gateway, limit=LIST_LIMIT, **filters)  # type: ignore[arg-type]

        return call

    async def first_list() -> None:
        fresh = Journal(path)
        try:
            await fresh.recent(gateway=gateway, limit=LIST_LIMIT)
        finally:
            await fresh.close()

    try:
        for _ in range(repeats):
            operations: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("create (claim + record_created)", create),
                ("get known id (get)", get_known),
                ("get new id (observe, link looked for)", get_new),
                *((name, listing(filters)) for name, filters in FILTERS.items()),
                ("first list after start-up", first_list),
            ]
            for name, operation in operations:
                started = time.perf_counter()
                await operation()
                times.setdefault(name, []).append(time.perf_counter() - started)
    finally:
        await journal.close()
    return times


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


async def operation_rows(files: JournalFiles, quick: bool) -> list[str]:
    """Rows of section 9."""
    sizes = (1000, 100_000) if quick else (1000, 100_000, 1_000_000)
    repeats = 5 if quick else 21
    medians: dict[int, dict[str, float]] = {}
    spans: dict[int, dict[str, tuple[float, float]]] = {}
    for rows in sizes:
        path = await files.path(rows)
        print(f"9. journal operations at {size_label(rows)} rows", file=sys.stderr)
        times = await journal_operations(path, files.gateway, repeats)
        medians[rows] = {name: statistics.median(values) for name, values in times.items()}
        spans[rows] = {name: (min(values), max(values)) for name, values in times.items()}
    largest, smallest = sizes[-1], sizes[0]
    heading = " | ".join(f"{size_label(rows)} rows" for rows in sizes)
    out = [
        f"## 9. Journal operations as the journal grows (SQLite, in process, median of {repeats})\n",
        f"| operation | {heading} | {size_label(largest)} / {size_label(smallest)} |",
        "|---|" + "---|" * len(sizes) + "---|",
    ]
    for name in medians[smallest]:
        cells = " | ".join(
            f"{_ms(medians[rows][name])} ({_ms(spans[rows][name][0])}-{_ms(spans[rows][name][1])})" for rows in sizes
        )
        growth = medians[largest][name] / medians[smallest][name]
        flag = "" if growth <= 2 else " **over 2x**"
        out.append(f"| {name} | {cells} | {growth:.1f}x{flag} |")
    built = ", ".join(
        f"{size_label(rows)} rows: {file_mib(files.root / f'rows-{rows}' / JOURNAL_FILENAME):.0f} MiB"
        + (f", built in {files.build_seconds[rows]:.1f} s" if rows in files.build_seconds else "")
        for rows in sizes
    )
    out.append(
        "\nThe goal (issue 16) is a cost that stays flat as the work grows: every operation within 2x of its cost at "
        "1k rows. Each operation goes through `Journal`'s public methods, on its worker thread, as the server calls "
        'them; a create commits with `synchronous=FULL` (an fsync per transaction at any size). "get new id" '
        "records a task the journal never saw, with its `created_at`, so the submission whose outcome is unknown "
        "that it could belong to is looked for first (the link); the lists are `list_tasks`' query (newest first, "
        f"limit {LIST_LIMIT}); the first list opens a new `Journal` on the file (connection, schema check) with the "
        f"OS page cache as it is. The journals ({built}) are synthetic: 97 % of the rows of the gateway queried, "
        f"over {DAYS} days, 90 % videos, 8 % failed, 6 % observed, the last 30 tasks still running (3 of them "
        "characters), 10 outcome-unknown and 3 abandoned `submitting` rows.\n"
    )
    return out


# ------------------------------------------------------------------------------------------------ 10. creates


async def _gateway_task(http: httpx2.AsyncClient) -> str:
    """A video task created directly at the gateway: sora-mcp's journal does not know it."""
    body = {"model": "sora-2", "prompt": f"made elsewhere {secrets.token_hex(6)}"}
    answer = await http.post("/v1/videos/generations", json=body, headers={"Authorization": "Bearer x"})
    task_id: str = answer.json()["id"]
    return task_id


async def creates_with_readers(
    urls: list[str], gateway_url: str, creates: int, clients: int, readers: int
) -> tuple[float, list[float], list[float]]:
    """Creates per second by ``clients`` MCP sessions spread over ``urls``, while ``readers`` more sessions each
    create a task directly at the gateway and read it through sora-mcp (an id the journal does not know), until
    the creates are done. Returns the rate, the create latencies and the read latencies (seconds)."""
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Client(urls[index % len(urls)])) for index in range(clients)]
        reading = [await stack.enter_async_context(Client(urls[index % len(urls)])) for index in range(readers)]
        http = await stack.enter_async_context(httpx2.AsyncClient(base_url=gateway_url))
        for session in sessions:  # warm: a first create per replica builds its argument model, and the first
            # result of each session compiles the tool's output schema client-side
            await session.call_tool("create_video", {"prompt": f"scale bench warm-up {secrets.token_hex(8)}"})
        for session in reading:
            await session.call_tool("get_task", {"task_id": (await _gateway_task(http))})
        counter = itertools.count()
        create_times: list[float] = []
        read_times: list[float] = []
        done = anyio.Event()

        async def creator(session: Client) -> None:
            while next(counter) < creates:
                started = time.perf_counter()
                created = await session.call_tool("create_video", {"prompt": f"scale bench {secrets.token_hex(8)}"})
                create_times.append(time.perf_counter() - started)
                assert not created.is_error, created

        async def reader(session: Client) -> None:
            while not done.is_set():
                task_id = await _gateway_task(http)
                started = time.perf_counter()
                result = await session.call_tool("get_task", {"task_id": task_id})
                read_times.append(time.perf_counter() - started)
                assert not result.is_error, result

        async with anyio.create_task_group() as readers_group:
            for session in reading:
                readers_group.start_soon(reader, session)
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for session in sessions:
                    group.start_soon(creator, session)
            elapsed = time.perf_counter() - started
            done.set()
        return creates / elapsed, create_times, read_times


async def load_rows(
    files: JournalFiles, start_replicas: Any, env: dict[str, str], gateway_url: str, quick: bool
) -> list[str]:
    """Rows of section 10. ``start_replicas(env, n)`` is a context manager yielding the replicas' MCP URLs."""
    sizes = (1000, 100_000) if quick else (1000, 1_000_000)
    creates, clients, readers = (48, 16, 2) if quick else (400, 16, 4)
    results: dict[tuple[int, int], tuple[float, list[float], list[float]]] = {}
    for rows in sizes:
        state = await files.state_dir(rows)
        for replicas in (1, 4):
            print(f"10. creates at {size_label(rows)} rows, {replicas} replica(s)", file=sys.stderr)
            with ExitStack() as stack:
                urls = stack.enter_context(start_replicas(env | {"SORA_STATE_DIR": str(state)}, replicas))
                results[rows, replicas] = await creates_with_readers(urls, gateway_url, creates, clients, readers)
    small, large = sizes
    out = [
        "## 10. Creates per second on a large journal, while other clients read tasks made elsewhere\n",
        "| replicas | journal rows | creates/s | create p50 | reads of unknown ids | read p50 | creates/s vs "
        f"{size_label(small)} | create p50 vs {size_label(small)} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for replicas in (1, 4):
        base_rate, base_times, _ = results[small, replicas]
        for rows in sizes:
            rate, create_times, read_times = results[rows, replicas]
            read_p50 = _ms(statistics.median(read_times)) if read_times else "-"
            out.append(
                f"| {replicas} | {size_label(rows)} | {rate:.0f} /s | {_ms(statistics.median(create_times))} | "
                f"{len(read_times)} | {read_p50} | {rate / base_rate:.2f}x | "
                f"{statistics.median(create_times) / statistics.median(base_times):.2f}x |"
            )
    out.append(
        f"\n{clients} clients send {creates} `create_video` calls (a new prompt each) round-robin over the stateless "
        f"replicas (`--stateless`, one SQLite journal pre-filled as in section 9), while {readers} more clients "
        "each create a task directly at the sandbox gateway (bypassing sora-mcp) and read it with `get_task`: the "
        "journal does not know the id, so the read looks for a lost submission to link it to, then adds an "
        f"`observed` row, under the same write lock as the creates. The goal: the {size_label(large)} figures "
        f"within 2x of the {size_label(small)} ones.\n"
    )
    return out


async def _main(quick: bool) -> None:  # pragma: no cover - benchmark
    import run  # bench/run.py: the gateway and the replica processes

    port = run.free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="sora-bench-journals-") as root:
        env = run.base_env(gateway_url, root)
        files = JournalFiles(Path(root), gateway_url)
        rows = await operation_rows(files, quick)
        with run.background([run.PY, str(run.BENCH / "gateway.py"), str(port)], env, port):
            rows += await load_rows(files, run.stateless_replicas, env, gateway_url, quick)
    print("\n".join(rows))


if __name__ == "__main__":
    anyio.run(_main, "--quick" in sys.argv)
