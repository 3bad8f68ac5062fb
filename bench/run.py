"""Benchmarks of sora-mcp against the SDK floor, measured side by side in one run; writes docs/benchmarks.md.

    python bench/run.py            # full run (a few minutes)
    python bench/run.py --quick    # smoke mode for CI: few iterations, keeps the script working

Every figure is a median (min-max) over repeated runs, next to its reference from the same run:

1. cold start over stdio (spawn until ``initialize`` and ``tools/list`` are answered) vs a bare ``MCPServer``;
2. ``get_task`` round trip over stdio and Streamable HTTP vs a direct ``httpx2`` GET and vs a bare ``MCPServer``
   whose tool does that single GET;
3. ``get_task`` throughput over Streamable HTTP with 1, 10 and 100 concurrent clients vs the bare server;
4. resident memory idle and after 1,000 calls vs the bare server;
5. agent economy: tool calls and bytes of tool output from create to a completed 3-minute task (time-scaled),
   polling at ``next_poll_seconds`` vs ``get_task(wait_seconds=...)``;
6. creates + lists per second through 1 and 4 stateless replicas on SQLite and on PostgreSQL (``replicas.py``);
7. a 10 MB local reference image prepared for a create: read, checked, encoded, validated (``local_image.py``).
8. ``inspect_video`` of a 15 s 720p clip made with PyAV: time and peak memory in a fresh process (``inspection.py``);
9. journal operations at 1k, 100k and 1M rows (quick: 1k and 100k), through ``Journal``'s methods
   (``journal_scale.py``);
10. creates per second through 1 and 4 stateless replicas on a journal of 1k and 1M rows (quick: 100k), while
    other clients read tasks the journal does not know (``journal_scale.py``);
11. 10, 100 and 1,000 concurrent ``get_task(wait_seconds=20)`` calls (quick: 10 and 100, 4 s), on distinct tasks
    and on one, arriving in a one-second burst, and the most of them arriving over one wait and calling again,
    next to a bare ``MCPServer`` under the largest burst (the SDK's floor): event-loop lag, ``/healthz`` latency,
    gateway reads, CPU and memory (``waiters.py``).

The gateway is the sandbox simulator in its own process on loopback (``bench/gateway.py``).
"""

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from inspection import inspection_rows
from journal_scale import JournalFiles, load_rows, operation_rows
from local_image import local_image_rows
from mcp import Client, StdioServerParameters
from replicas import replica_rows
from waiters import waiter_rows

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PY = sys.executable
KEY = "sk-bench-not-a-real-key"


@dataclass
class Sample:
    """Repeated measurements of one quantity (seconds, bytes, or a rate)."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, scale: float = 1000, unit: str = "ms", digits: int = 1) -> str:
        lo, hi = min(self.values) * scale, max(self.values) * scale
        return f"{self.median * scale:.{digits}f} {unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def background(command: list[str], env: dict[str, str], port: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        if port is not None:
            wait_for_port(port)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def base_env(gateway_url: str, state_dir: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "SORA_API_KEY": KEY,
        "SORA_BASE_URL": gateway_url,
        # The task journal where users have it by default (platformdirs reads XDG_STATE_HOME on Linux), but in
        # the run's own directory; elsewhere SORA_STATE_DIR keeps the run out of the user's journal.
        "XDG_STATE_HOME" if sys.platform.startswith("linux") else "SORA_STATE_DIR": state_dir,
        "PYTHONPATH": str(ROOT),
    }


SORA_STDIO = [PY, "-m", "sora_mcp"]
BARE_STDIO = [PY, str(BENCH / "bare_server.py"), "stdio"]
FLOOR_STDIO = [PY, str(BENCH / "floor_server.py")]
COLD_START_SERVERS = {"sora-mcp": SORA_STDIO, "floor": FLOOR_STDIO, "bare": BARE_STDIO}
"""The servers whose start-up is compared: sora-mcp, the SDK floor (one trivial tool) and the bare GET server."""


def stdio(command: list[str], env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=command[0], args=command[1:], env=env)


def sora_http(port: int) -> list[str]:
    return [PY, "-m", "sora_mcp", "--transport", "streamable-http", "--port", str(port)]


@contextmanager
def stateless_replicas(env: dict[str, str], count: int) -> Iterator[list[str]]:
    """``count`` sora-mcp processes serving Streamable HTTP with ``--stateless``; their MCP URLs."""
    with ExitStack() as stack:
        ports = [free_port() for _ in range(count)]
        for port in ports:  # started together, then waited for: they start side by side, as a deployment's do
            stack.enter_context(background([*sora_http(port), "--stateless"], env))
        for port in ports:
            wait_for_port(port)
        yield [f"http://127.0.0.1:{port}/mcp" for port in ports]


def bare_http(port: int) -> list[str]:
    return [PY, str(BENCH / "bare_server.py"), "http", str(port)]


# ------------------------------------------------------------------------------------------------ 1. cold start


HANDSHAKE = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "0"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def handshake(process: subprocess.Popen[bytes]) -> None:
    """Send ``initialize``, wait for its answer, then ``initialized`` and ``tools/list``; return once the tool
    list is read."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write((json.dumps(HANDSHAKE[0]) + "\n").encode())
    process.stdin.flush()
    process.stdout.readline()
    process.stdin.write("".join(json.dumps(m) + "\n" for m in HANDSHAKE[1:]).encode())
    process.stdin.flush()
    answer = json.loads(process.stdout.readline())
    assert answer.get("id") == 2 and answer["result"]["tools"], answer


def cold_start_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Spawn, handshake (2025-11-25), list tools. Returns the seconds until the tools/list answer is read, and the
    CPU seconds the server process used by then (less noisy than the wall clock on a shared machine)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    reaped = False
    try:
        handshake(process)
        elapsed = time.perf_counter() - started
        process.kill()  # idle since it answered: its CPU time is the start-up's
        _, _, usage = os.wait4(process.pid, 0)
        reaped = True
        process.returncode = -9
        return elapsed, usage.ru_utime + usage.ru_stime
    finally:
        if not reaped:
            process.kill()
            process.wait()


def cold_start_instructions(command: list[str], env: dict[str, str]) -> int:
    """Instructions the server executes from spawn to the ``tools/list`` answer, counted by valgrind's callgrind:
    the same count on every run (hash randomization off), whatever else the machine is doing."""
    with tempfile.TemporaryDirectory() as scratch:
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out", *command],
            env={**env, "PYTHONHASHSEED": "0"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        try:
            handshake(process)
            # SIGUSR1, which nothing handles: callgrind reports on a fatal signal, and the count ends at the answer.
            # (SIGTERM now runs sora-mcp's graceful shutdown, whose teardown is not start-up cost.)
            process.send_signal(signal.SIGUSR1)
            _, report = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    for line in report.decode(errors="replace").splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    raise RuntimeError(f"callgrind reported no count: {report[-300:]!r}")


@dataclass
class ColdStart:
    wall: Sample = field(default_factory=Sample)
    cpu: Sample = field(default_factory=Sample)


def cold_start(env: dict[str, str], runs: int) -> dict[str, ColdStart]:
    """Each of ``COLD_START_SERVERS`` started ``runs`` times, interleaved so drift hits all alike."""
    samples = {name: ColdStart() for name in COLD_START_SERVERS}
    for _ in range(runs):
        for name, command in COLD_START_SERVERS.items():
            wall, cpu = cold_start_once(command, env)
            samples[name].wall.values.append(wall)
            samples[name].cpu.values.append(cpu)
    return samples


# ------------------------------------------------------------------------------------------------ 2. round trip


async def round_trips(gateway_url: str, targets: list[Any], task_id: str, runs: int) -> list[Sample]:
    """Interleaved round trips: each iteration times one direct GET and one ``get_task`` per MCP target, in a
    rotating order, so drift and noise on a shared machine hit every path alike. Returns the direct GET's
    sample first, then one per target."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {KEY}"})
        )
        clients = [await stack.enter_async_context(Client(target)) for target in targets]

        async def direct() -> None:
            (await http.get(f"/v1/videos/generations/{task_id}")).raise_for_status()

        def mcp_call(client: Client) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                result = await client.call_tool("get_task", {"task_id": task_id})
                assert not result.is_error, result

            return call

        calls = [direct, *(mcp_call(client) for client in clients)]
        samples = [Sample() for _ in calls]
        for _ in range(5):  # warm-up, untimed
            for call in calls:
                await call()
        for iteration in range(runs):
            shift = iteration % len(calls)
            for index in [*range(shift, len(calls)), *range(shift)]:
                started = time.perf_counter()
                await calls[index]()
                samples[index].values.append(time.perf_counter() - started)
        return samples


async def create_round_trips(targets: list[StdioServerParameters], runs: int) -> list[Sample]:
    """Interleaved ``create_video`` round trips over stdio (a new task each: ``allow_duplicate``), one sample per
    target: the write-ahead row, the estimate and spend checks, the POST, the task id into the journal."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(target)) for target in targets]
        samples = [Sample() for _ in clients]
        for iteration in range(5 + runs):  # the first five are an untimed warm-up
            for offset in range(len(clients)):
                index = (iteration + offset) % len(clients)
                arguments = {"prompt": f"benchmark {iteration}", "allow_duplicate": True}
                started = time.perf_counter()
                result = await clients[index].call_tool("create_video", arguments)
                elapsed = time.perf_counter() - started
                assert not result.is_error, result
                if iteration >= 5:
                    samples[index].values.append(elapsed)
        return samples


def create_task(gateway_url: str) -> str:
    body = {"model": "sora-2", "prompt": "benchmark"}
    response = httpx2.post(f"{gateway_url}/v1/videos/generations", json=body, headers={"Authorization": "Bearer x"})
    task_id: str = response.json()["id"]
    return task_id


# ------------------------------------------------------------------------------------------------ 3. throughput


async def throughput(url: str, task_id: str, clients: int, calls_per_client: int) -> float:
    """get_task calls per second with ``clients`` concurrent MCP sessions over Streamable HTTP."""
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Client(url)) for _ in range(clients)]
        # One untimed call per session: the client compiles the tool's output schema on its first result, a
        # one-time client-side cost (reported in section 3's note), not a per-call one.
        for client in sessions:
            await client.call_tool("get_task", {"task_id": task_id})

        async def worker(client: Client) -> None:
            for _ in range(calls_per_client):
                result = await client.call_tool("get_task", {"task_id": task_id})
                assert not result.is_error, result

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for client in sessions:
                group.start_soon(worker, client)
        return clients * calls_per_client / (time.perf_counter() - started)


# ------------------------------------------------------------------------------------------------ 4. memory


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def memory(url: str, pid: int, task_id: str, calls: int) -> tuple[int, int]:
    async with Client(url) as client:
        await client.list_tools()
        idle = rss_kib(pid)
        for _ in range(calls):
            await client.call_tool("get_task", {"task_id": task_id})
        return idle, rss_kib(pid)


# ------------------------------------------------------------------------------------------------ 5. agent economy


@dataclass
class Economy:
    calls: int = 0
    output_bytes: int = 0
    largest: int = 0

    def add(self, text: str) -> None:
        size = len(text.encode())
        self.calls += 1
        self.output_bytes += size
        self.largest = max(self.largest, size)


async def agent_economy(scale: float, render_seconds: float) -> dict[str, Economy]:
    """Agents each make one video of ``render_seconds`` (simulated), the clock running ``scale`` x fast.

    The server runs in memory with the same scaled clock, its poll interval and the agents' waits scaled alike,
    so counts and sizes are what a real-time run would give. Strategies: poll ``get_task`` at
    ``next_poll_seconds``; ``get_task(wait_seconds=50)``; and the same with ``create_video(wait_seconds=50)``.
    """
    from sora_mcp.config import Settings
    from sora_mcp.sandbox import SandboxGateway
    from sora_mcp.server import build_server

    origin = time.time()

    def clock() -> float:
        return origin + (time.time() - origin) * scale

    gateway = SandboxGateway(clock=clock, video_seconds=render_seconds)
    wait = max(1, round(50 / scale))
    results = {"poll": Economy(), "wait": Economy(), "create+wait": Economy()}

    def output_of(result: Any) -> str:
        """What the agent receives: every text item, and the base64 data of images (the inline thumbnail)."""
        return "".join(getattr(item, "text", "") or getattr(item, "data", "") for item in result.content)

    async def agent(client: Client, strategy: str, prompt: str) -> None:
        economy = results[strategy]
        create_wait = wait if strategy == "create+wait" else 0
        result = await client.call_tool("create_video", {"prompt": prompt, "wait_seconds": create_wait})
        economy.add(output_of(result))
        task = result.structured_content or {}
        while task["status"] not in ("completed", "failed"):
            if strategy == "poll":
                await anyio.sleep(task["next_poll_seconds"] / scale)
                arguments = {"task_id": task["task_id"]}
            else:
                arguments = {"task_id": task["task_id"], "wait_seconds": wait}
            result = await client.call_tool("get_task", arguments)
            economy.add(output_of(result))
            task = result.structured_content or {}

    with tempfile.TemporaryDirectory() as state:
        settings = Settings(
            api_key=KEY, base_url="http://gateway.bench", poll_interval=5 / scale, state_dir=Path(state)
        )
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gateway.app)) as http:
            server = build_server(settings, http_client=http, clock=clock)
            async with Client(server) as client, anyio.create_task_group() as group:
                for strategy in results:
                    group.start_soon(agent, client, strategy, f"a benchmark video ({strategy})")
    return results


# ------------------------------------------------------------------------------------------------ the report


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"mcp {version('mcp')}, httpx2 {version('httpx2')}"
    )


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


async def run(quick: bool, output: Path, baseline: Path | None = None) -> None:
    call_runs = 30 if quick else 300
    baseline_label = _describe_checkout(baseline) if baseline is not None else ""
    rows: list[str] = []
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    state = tempfile.TemporaryDirectory()
    env = base_env(gateway_url, state.name)
    with background([PY, str(BENCH / "gateway.py"), str(gateway_port)], env, gateway_port):
        task_id = create_task(gateway_url)

        print("1. cold start", file=sys.stderr)
        cold_runs = 5 if quick else 40
        starts = cold_start(env, cold_runs)
        sora_cold, floor_cold, bare_cold = starts["sora-mcp"], starts["floor"], starts["bare"]
        counted = shutil.which("valgrind") is not None and not quick
        if counted:
            print("1. cold start: instruction counts (callgrind)", file=sys.stderr)
            # One at a time: counts taken side by side on a loaded machine came out different.
            counts = {name: cold_start_instructions(command, env) for name, command in COLD_START_SERVERS.items()}
        rows.append("## 1. Cold start over stdio (spawn until `initialize` + `tools/list` answered)\n")
        rows.append(
            "| server | wall clock | ratio to floor | CPU time of the server | ratio to floor | instructions | "
            "ratio to floor |"
        )
        rows.append("|---|---|---|---|---|---|---|")
        for key, name, cold in (
            ("sora-mcp", "sora-mcp", sora_cold),
            ("floor", "bare `MCPServer`, one trivial tool (SDK floor)", floor_cold),
            ("bare", "bare `MCPServer` with the GET tool and its `httpx2` client", bare_cold),
        ):
            instructions = f"{counts[key] / 1e6:.1f} M | {ratio(counts[key], counts['floor'])}" if counted else "- | -"
            rows.append(
                f"| {name} | {cold.wall.show()} | {ratio(cold.wall.median, floor_cold.wall.median)} | "
                f"{cold.cpu.show()} | {ratio(cold.cpu.median, floor_cold.cpu.median)} | {instructions} |"
            )
        rows.append(
            f"\nsora-mcp adds {1000 * (sora_cold.wall.median - floor_cold.wall.median):.1f} ms to the floor's start-up "
            f"(median of the wall clock). The three servers start in turn, {cold_runs} times, so machine drift hits "
            "all alike; the CPU time is read from the server process once it has answered. The instructions are "
            "counted once per server by valgrind's callgrind, with hash randomization off: the count is the same on "
            "every run whatever else the machine does, so it is the figure to compare changes by"
            + ("" if counted else " (not measured: valgrind is not installed, or --quick)")
            + ".\n"
        )

        print("2. round trip", file=sys.stderr)
        sora_port, bare_port = free_port(), free_port()
        with (
            background(sora_http(sora_port), env, sora_port) as sora_process,
            background(bare_http(bare_port), env, bare_port) as bare_process,
        ):
            sora_url, bare_url = f"http://127.0.0.1:{sora_port}/mcp", f"http://127.0.0.1:{bare_port}/mcp"
            targets = [stdio(SORA_STDIO, env), stdio(BARE_STDIO, env), sora_url, bare_url]
            direct, sora_stdio, bare_stdio, sora_http_rtt, bare_http_rtt = await round_trips(
                gateway_url, targets, task_id, call_runs
            )
            rows.append("## 2. `get_task` round trip (one status read of a running task)\n")
            rows.append("| path | median (min-max) | added over direct GET | ratio to bare server |\n|---|---|---|---|")
            rows.append(f"| direct `httpx2` GET to the gateway | {direct.show(digits=2)} | - | - |")
            for name, sora, bare in (
                ("stdio", sora_stdio, bare_stdio),
                ("Streamable HTTP", sora_http_rtt, bare_http_rtt),
            ):
                rows.append(
                    f"| sora-mcp over {name} | {sora.show(digits=2)} | {(sora.median - direct.median) * 1000:.2f} ms | "
                    f"{ratio(sora.median, bare.median)} |"
                )
                rows.append(
                    f"| bare `MCPServer` over {name} | {bare.show(digits=2)} | "
                    f"{(bare.median - direct.median) * 1000:.2f} ms | 1.00x |"
                )
            rows.append("")

            print("2b. create round trip", file=sys.stderr)
            create_targets = [stdio(SORA_STDIO, env)]
            if baseline is not None:
                # Its own journal: an older release refuses (and then skips) a journal a newer one migrated.
                baseline_state = tempfile.mkdtemp(dir=state.name)
                baseline_env = {name: value for name, value in env.items() if name != "PYTHONPATH"}
                baseline_env |= {"XDG_STATE_HOME": baseline_state, "SORA_STATE_DIR": baseline_state}
                # Started outside this checkout: `python -m` puts the working directory first on sys.path.
                create_targets.append(
                    StdioServerParameters(
                        command=str(baseline), args=["-m", "sora_mcp"], env=baseline_env, cwd=state.name
                    )
                )
            creates = await create_round_trips(create_targets, call_runs)
            rows.append("## 2b. `create_video` round trip over stdio (a new task each time)\n")
            rows.append("| server | median (min-max) | ratio to baseline |\n|---|---|---|")
            compared = ratio(creates[0].median, creates[1].median) if baseline is not None else "-"
            rows.append(f"| sora-mcp | {creates[0].show(digits=2)} | {compared} |")
            if baseline is not None:
                rows.append(f"| baseline `{baseline_label}` | {creates[1].show(digits=2)} | 1.00x |")
            rows.append(
                "\nEach create writes its journal row ahead of the POST (with the estimate, and the budget and quote "
                "checks when they are set) and records the task id after it. "
                + (
                    "The baseline is another sora-mcp installed in its own venv (`--baseline PYTHON`), against the "
                    "same gateway, interleaved call by call."
                    if baseline is not None
                    else "Run with `--baseline PYTHON` (a venv's python with another sora-mcp) to compare."
                )
                + "\n"
            )

            print("3. throughput", file=sys.stderr)
            rows.append("## 3. `get_task` throughput over Streamable HTTP (calls per second)\n")
            rows.append("| concurrent clients | sora-mcp | bare `MCPServer` | ratio |\n|---|---|---|---|")
            for clients in (1, 10, 100):
                per_client = max(3, (60 if quick else 600) // clients)
                sora_rate = Sample(
                    [await throughput(sora_url, task_id, clients, per_client) for _ in range(2 if quick else 3)]
                )
                bare_rate = Sample(
                    [await throughput(bare_url, task_id, clients, per_client) for _ in range(2 if quick else 3)]
                )
                rows.append(
                    f"| {clients} | {sora_rate.show(1, '/s', 0)} | {bare_rate.show(1, '/s', 0)} | "
                    f"{ratio(sora_rate.median, bare_rate.median)} |"
                )
            rows.append(
                "\nEach session makes one untimed call first: on its first result the official client compiles the "
                "tool's output schema (about 12 ms for sora-mcp's `Task` schema, under 1 ms for the bare server's "
                "free-form object), once per session.\n"
            )

            print("4. memory", file=sys.stderr)
            calls = 100 if quick else 1000
            sora_idle, sora_busy = await memory(sora_url, sora_process.pid, task_id, calls)
            bare_idle, bare_busy = await memory(bare_url, bare_process.pid, task_id, calls)
            rows.append(f"## 4. Resident memory (Streamable HTTP server process, after {calls} calls)\n")
            rows.append("| server | idle | after calls | growth |\n|---|---|---|---|")
            for name, idle, busy in (("sora-mcp", sora_idle, sora_busy), ("bare `MCPServer`", bare_idle, bare_busy)):
                rows.append(
                    f"| {name} | {idle / 1024:.1f} MiB | {busy / 1024:.1f} MiB | {(busy - idle) / 1024:.1f} MiB |"
                )
            rows.append("")

    print("5. agent economy", file=sys.stderr)
    scale = 30.0 if quick else 10.0
    economy = await agent_economy(scale, 180)
    rows.append(f"## 5. Agent economy: one 3-minute video (simulated, clock x{scale:g}), create to completed result\n")
    rows.append("| agent strategy | tool calls | bytes of tool output | largest result |\n|---|---|---|---|")
    note = (
        "Bytes count every text item plus the base64 data of images: the completed result carries the video's "
        "thumbnail as an image (`SORA_INLINE_THUMBNAILS=0` leaves it out)."
    )
    labels = {
        "poll": "poll `get_task` at `next_poll_seconds`",
        "wait": "`get_task(wait_seconds=50)` after a plain create",
        "create+wait": "`create_video(wait_seconds=50)`, then `get_task(wait_seconds=50)`",
    }
    for strategy, label in labels.items():
        used = economy[strategy]
        rows.append(f"| {label} | {used.calls} | {used.output_bytes} B | {used.largest} B |")
    rows.append(f"\n{note}\n")

    print("6. replicas", file=sys.stderr)
    with background([PY, str(BENCH / "gateway.py"), str(gateway_port)], env, gateway_port):
        rows.extend(await replica_rows(stateless_replicas, env, quick))

    print("7. local reference image", file=sys.stderr)
    rows.extend(await local_image_rows(quick))
    print("8. inspect_video", file=sys.stderr)
    rows.extend(inspection_rows(quick))  # blocking, alone: nothing else runs by now

    print("9. journal operations at scale", file=sys.stderr)
    journals = JournalFiles(Path(state.name) / "journals", gateway_url)
    rows.extend(await operation_rows(journals, quick))
    print("10. creates on a large journal", file=sys.stderr)
    with background([PY, str(BENCH / "gateway.py"), str(gateway_port)], env, gateway_port):
        rows.extend(await load_rows(journals, stateless_replicas, env, gateway_url, quick))
    print("11. waiters", file=sys.stderr)
    rows.extend(await waiter_rows(background, free_port, env, quick))

    header = [
        "# Benchmarks",
        "",
        f"Measured with `python bench/run.py{' --quick' if quick else ''}` on {machine()}.",
        "Medians with (min-max) over repeated runs; each sora-mcp figure sits next to its reference from the same run.",
        f"Direct GET sanity check: {direct.show(digits=2)} (a delayed-ACK artefact would add about 40 ms to it).",
        "",
    ]
    report = "\n".join(header + rows)
    await anyio.Path(output.parent).mkdir(parents=True, exist_ok=True)
    await anyio.Path(output).write_text(report)
    print(report)
    state.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few iterations only (CI smoke mode)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the python of a venv with another sora-mcp installed (e.g. `pip install <checkout>`), to compare "
        "creates with",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # before the SDK's own INFO set-up of in-process servers
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a log line per request would be timed too
    try:
        anyio.run(run, args.quick, args.output, args.baseline)
    except BaseException as exc:  # name the root causes: a failure nested in 100 sessions' task groups is unreadable
        leaves = list(root_causes(exc))
        for leaf in leaves[:3]:
            print("".join(traceback.format_exception(leaf, chain=False)[-6:]), file=sys.stderr)
        print(f"benchmark failed: {len(leaves)} root cause(s), first: {leaves[0]!r}", file=sys.stderr)
        raise SystemExit(1) from None


def _describe_checkout(python: Path) -> str:
    """The version and commit of the sora-mcp that ``python`` runs (as its installed metadata tells)."""
    script = "import importlib.metadata as m; print(m.version('sora-mcp'))"
    try:
        shown = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "another venv"
    return f"sora-mcp {shown.stdout.strip()}, its own venv"


def root_causes(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions at the bottom of nested exception groups, each once."""
    if isinstance(exc, BaseExceptionGroup):
        seen: set[int] = set()
        for inner in exc.exceptions:
            for leaf in root_causes(inner):
                if id(leaf) not in seen:
                    seen.add(id(leaf))
                    yield leaf
    else:
        yield exc


if __name__ == "__main__":
    main()
