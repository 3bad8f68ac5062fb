"""Section 11 of the benchmarks: many agents waiting at once, ``get_task(task_id, wait_seconds=...)`` over
Streamable HTTP, on distinct tasks and on one task (issue 16).

The gateway is the sandbox behind a counter of task reads, its tasks rendering for good (``counting_gateway.py``);
the server is the real ``sora-mcp --transport streamable-http --stateless`` with an event-loop lag sampler
(``lag_server.py``). The load is one process sending raw JSON-RPC ``tools/call`` POSTs with ``httpx2`` (stateless:
no ``initialize`` needed), their starts spread over the first second. Measured over each wait window:

- the server's event-loop lag (a task sleeping 10 ms in a loop, its overshoot): p50, p99, max;
- ``/healthz`` latency from a separate process probing every 50 ms: p50, p99;
- task reads per second the gateway answered, and the server's CPU seconds (``/proc/PID/stat``) per read;
- the server's peak resident memory, and when the waits returned.

Two more windows at the largest count: the steady one (the waiters arriving over one wait, each calling again)
and the SDK floor (``bare_waiter.py``, a bare ``MCPServer`` under the same burst).

    python bench/waiters.py [--quick] [--counts 10,100,1000] [--profile FILE]
        # this section alone; FILE: a cProfile of the server's event loop during the largest distinct-task run
    python bench/waiters.py probe URL SECONDS             # the /healthz prober (started by the benchmark)
"""

import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2

BENCH = Path(__file__).resolve().parent
PY = sys.executable
ACCEPT = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
RAMP_SECONDS = 1.0
"""The waiters' calls start spread over this long (agents do not all arrive in the same millisecond)."""
PROBE_PERIOD = 0.05
STEADY_ROUNDS = 3
"""Calls each waiter of the steady row makes in a row, its first call at a moment spread over one wait (quick: 2)."""
STEADY_LABEL = "distinct tasks, steady"
BARE_LABEL = "bare `MCPServer` (the SDK floor)"
RUNNING = ("queued", "in_progress")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def raise_descriptor_limit() -> None:
    """A thousand connections need more descriptors than the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Window:
    """What one wait window measured."""

    label: str
    waiters: int
    seconds: float
    lag: dict[str, float]
    health: list[float]
    gets: int
    cpu: float
    rss: float
    returned: list[float] = field(default_factory=list)
    errors: int = 0


class Bench:
    """The gateway, the server and the load of section 11."""

    def __init__(
        self, gateway_url: str, server_url: str, server_pid: int, limits: httpx2.Limits, timeout: float
    ) -> None:
        self.gateway_url = gateway_url
        self.server_url = server_url
        self.server_pid = server_pid
        self.limits = limits
        self.timeout = timeout
        self.http = self.new_client()
        self.ids = iter(range(1, 1 << 30))

    def new_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(limits=self.limits, timeout=self.timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def create_tasks(self, count: int) -> list[str]:
        """``count`` video tasks created directly at the gateway, on new connections (as ``window`` explains; the
        reads of ``warm`` that follow use them too)."""
        await self.http.aclose()
        self.http = self.new_client()
        made: list[str] = []
        limiter = anyio.Semaphore(32)

        async def create() -> None:
            async with limiter:
                body = {"model": "sora-2", "prompt": f"waiter bench {secrets.token_hex(6)}"}
                answer = await self.http.post(
                    f"{self.gateway_url}/v1/videos/generations", json=body, headers={"Authorization": "Bearer x"}
                )
                made.append(answer.json()["id"])

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(create)
        return made

    async def get_task(self, task_id: str, wait_seconds: int) -> dict[str, Any]:
        """One raw ``tools/call`` of ``get_task``; its structured result (raises on an error)."""
        request_id = next(self.ids)
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "get_task", "arguments": {"task_id": task_id, "wait_seconds": wait_seconds}},
        }
        answer = await self.http.post(f"{self.server_url}/mcp", json=body, headers=ACCEPT)
        answer.raise_for_status()
        messages = [
            json.loads(line[5:]) for line in answer.text.splitlines() if line.startswith("data:") and line[5:].strip()
        ] or [answer.json()]
        result = next(message for message in messages if message.get("id") == request_id)["result"]
        if result.get("isError"):
            raise RuntimeError(f"get_task failed: {result['content'][0]['text'][:300]}")
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    async def known_tasks(self, count: int) -> list[str]:
        """``count`` new tasks, each read once through the server (:meth:`warm`): their ids."""
        task_ids = await self.create_tasks(count)
        await self.warm(task_ids)
        return task_ids

    async def warm(self, task_ids: list[str]) -> None:
        """Read each task once without waiting: the journal has its row and the server its last state, as for
        tasks an agent created through sora-mcp."""
        limiter = anyio.Semaphore(50)

        async def read(task_id: str) -> None:
            async with limiter:
                await self.get_task(task_id, 0)

        async with anyio.create_task_group() as group:
            for task_id in task_ids:
                group.start_soon(read, task_id)

    @staticmethod
    async def control(url: str, **params: str) -> Any:
        """A bench route's JSON answer, on a connection of its own: a pooled one left idle through a wait window
        may be closed by the server (keep-alive timeout) just as it is reused."""
        async with httpx2.AsyncClient(timeout=30) as client:
            answer = await client.get(url, params=params)
            answer.raise_for_status()
            return answer.json()

    async def counters(self) -> tuple[int, float]:
        gets = (await self.control(f"{self.gateway_url}/bench/gets"))["gets"]
        return gets, cpu_seconds(self.server_pid)

    async def window(
        self,
        label: str,
        task_ids: list[str],
        waiters: int,
        wait_seconds: int,
        profile: bool,
        ramp: float = RAMP_SECONDS,
        rounds: int = 1,
    ) -> Window:
        """``waiters`` concurrent ``get_task(wait_seconds=...)`` calls, cycling over ``task_ids`` (none: an idle
        window of ``wait_seconds``), their starts spread over ``ramp`` seconds; each waiter calls ``rounds`` times
        in a row, as an agent waiting for its video does."""
        # New connections for each window: the server closes keep-alive connections idle for 10 s (its header
        # timeout), and a request sent on one just as it closes would fail.
        await self.http.aclose()
        self.http = self.new_client()
        await self.control(f"{self.server_url}/bench/lag", reset="1")
        with probing(self.server_url, wait_seconds * rounds + (ramp if waiters else 0)) as probe:
            await anyio.to_thread.run_sync(probe.ready)
            gets_before, cpu_before = await self.counters()
            if profile:
                await self.control(f"{self.server_url}/bench/profile", start="1")
            started = time.perf_counter()
            returned: list[float] = []
            errors = 0
            peak = rss_mib(self.server_pid)

            async def waiter(index: int) -> None:
                nonlocal errors
                await anyio.sleep(ramp * index / waiters)
                for _ in range(rounds):
                    began = time.perf_counter()
                    try:
                        task = await self.get_task(task_ids[index % len(task_ids)], wait_seconds)
                        if task["status"] not in RUNNING:
                            raise RuntimeError(f"the task is {task['status']}")
                    except Exception as exc:
                        errors += 1
                        if errors <= 3:
                            print(f"11. a waiter failed: {exc!r}", file=sys.stderr)
                    else:
                        returned.append(time.perf_counter() - began)

            async with anyio.create_task_group() as group:
                for index in range(waiters):
                    group.start_soon(waiter, index)
                if not waiters:
                    await anyio.sleep(wait_seconds)
                while len(returned) + errors < waiters * rounds:
                    peak = max(peak, rss_mib(self.server_pid))
                    await anyio.sleep(0.5)
            seconds = time.perf_counter() - started
            gets_after, cpu_after = await self.counters()
            if profile:
                await self.control(f"{self.server_url}/bench/profile", stop="1")
            lag = await self.control(f"{self.server_url}/bench/lag")
            health = await anyio.to_thread.run_sync(probe.result)
        if waiters and errors == waiters * rounds:
            raise RuntimeError(f"11. every one of the {waiters} waiters' calls failed")
        return Window(
            label,
            waiters,
            seconds,
            lag,
            health,
            gets_after - gets_before,
            cpu_after - cpu_before,
            peak,
            returned,
            errors,
        )


class Probe:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def ready(self) -> None:
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the /healthz prober did not start")

    def result(self) -> list[float]:
        out, _ = self.process.communicate(timeout=120)
        latencies: list[float] = json.loads(out)
        return latencies


@contextmanager
def probing(server_url: str, seconds: float) -> Iterator[Probe]:
    """The /healthz prober in a process of its own (the load's event loop must not delay its clock)."""
    command = [PY, str(Path(__file__).resolve()), "probe", server_url, str(seconds)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        yield Probe(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def probe_main(server_url: str, seconds: float) -> None:
    """Probe ``/healthz`` every 50 ms for ``seconds``, then print the latencies (JSON, seconds)."""
    latencies: list[float] = []
    with httpx2.Client(base_url=server_url, timeout=30) as client:
        client.get("/healthz")  # connected before the window
        print("ready", flush=True)
        deadline = time.perf_counter() + seconds
        next_at = time.perf_counter()
        while next_at < deadline:
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            latencies.append(time.perf_counter() - started)
            next_at += PROBE_PERIOD
            time.sleep(max(0.0, next_at - time.perf_counter()))
    print(json.dumps(latencies))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def waiter_rows(
    background: Any,
    free_port: Any,
    env: dict[str, str],
    quick: bool,
    profile: Path | None = None,
    counts: tuple[int, ...] | None = None,
) -> list[str]:
    """Rows of section 11. ``background(command, env, port)`` runs a process until exit; ``free_port()`` a port;
    ``counts``: the numbers of waiters (10, 100 and 1,000; quick: 10 and 100)."""
    counts = counts or ((10, 100) if quick else (10, 100, 1000))
    wait_seconds = 4 if quick else 20
    raise_descriptor_limit()
    gateway_port, server_port = free_port(), free_port()
    gateway_url, server_url = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{server_port}"
    state = tempfile.mkdtemp(prefix="sora-bench-waiters-")
    server_env = env | {
        "SORA_BASE_URL": gateway_url,
        "SORA_STATE_DIR": state,
        "XDG_STATE_HOME": state,
        # The default cap is 1,000 open connections; a thousand waiters plus the probes need a few more.
        "SORA_MCP_MAX_CONNECTIONS": str(max(counts) + 200),
    }
    if profile is not None:
        server_env["BENCH_PROFILE"] = str(profile)
    windows: list[Window] = []
    limits = httpx2.Limits(max_connections=max(counts) + 50, max_keepalive_connections=max(counts) + 50)
    async with AsyncExitStack() as stack:
        stack.enter_context(background([PY, str(BENCH / "counting_gateway.py"), str(gateway_port)], env, gateway_port))
        server_command = [PY, str(BENCH / "lag_server.py"), "--port", str(server_port), "--stateless"]
        server = stack.enter_context(background([*server_command, "--log-level", "WARNING"], server_env, server_port))
        bench = Bench(gateway_url, server_url, server.pid, limits, wait_seconds + 120)
        stack.push_async_callback(bench.aclose)
        await bench.known_tasks(2)  # the server's first calls (imports, schemas) out of the way
        print("11. waiters: idle", file=sys.stderr)
        windows.append(await bench.window("idle (no waiters)", [], 0, 2 if quick else 5, profile=False))
        for count in counts:
            for distinct in (True, False):
                label = "distinct tasks" if distinct else "one task"
                print(f"11. waiters: {count}, {label}", file=sys.stderr)
                task_ids = await bench.known_tasks(count if distinct else 1)
                profiled = profile is not None and distinct and count == max(counts)
                windows.append(await bench.window(label, task_ids, count, wait_seconds, profiled))
        count = max(counts)  # the same waiters arriving as agents do: over one wait, each calling again
        print(f"11. waiters: {count}, {STEADY_LABEL}", file=sys.stderr)
        task_ids = await bench.known_tasks(count)
        rounds = 2 if quick else STEADY_ROUNDS
        steady = await bench.window(STEADY_LABEL, task_ids, count, wait_seconds, False, wait_seconds, rounds)
        windows.append(steady)
        # The SDK floor under the largest burst: the same gateway, load and probes, a bare MCPServer.
        print(f"11. waiters: {count}, distinct tasks, {BARE_LABEL}", file=sys.stderr)
        bare_port = free_port()
        bare_command = [PY, str(BENCH / "bare_waiter.py"), str(bare_port)]
        bare = stack.enter_context(background(bare_command, server_env, bare_port))
        bare_bench = Bench(gateway_url, f"http://127.0.0.1:{bare_port}", bare.pid, limits, wait_seconds + 120)
        stack.push_async_callback(bare_bench.aclose)
        await bare_bench.known_tasks(2)
        task_ids = await bare_bench.known_tasks(count)
        windows.append(await bare_bench.window(f"distinct tasks, {BARE_LABEL}", task_ids, count, wait_seconds, False))
    shutil.rmtree(state, ignore_errors=True)
    out = [
        f"## 11. Waiters: concurrent `get_task(wait_seconds={wait_seconds})` over Streamable HTTP\n",
        "| waiters | on | loop lag p50 / p99 / max | `/healthz` p50 / p99 | gateway reads/s | server CPU per read "
        "| server CPU | peak RSS | waits returned after (p50 / max) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for window in windows:
        lag = window.lag
        per_read = f"{window.cpu / window.gets * 1000:.2f} ms" if window.gets else "-"
        returned = (
            f"{statistics.median(window.returned):.2f} s / {max(window.returned):.2f} s" if window.returned else "-"
        )
        out.append(
            f"| {window.waiters} | {window.label} | {_ms(lag['p50'])} / {_ms(lag['p99'])} / {_ms(lag['max'])} ms | "
            f"{_ms(statistics.median(window.health))} / {_ms(percentile(window.health, 0.99))} ms | "
            f"{window.gets / window.seconds:.0f} /s | {per_read} | {window.cpu:.2f} s in {window.seconds:.1f} s | "
            f"{window.rss:.0f} MiB | {returned} | {window.errors} |"
        )
    out.append(
        "\nEach row is one window: the waiters' calls start over its first second (a burst), each on a task created "
        "directly at the sandbox gateway and read once beforehand (the journal knows it, as it knows the tasks an "
        "agent created through sora-mcp), and the window ends when the last wait returns. In the steady row the "
        f"same number of waiters arrive as agents do, spread over one wait, and each calls {STEADY_ROUNDS} times in a "
        "row (quick: 2): all of them wait at once, but they do not all begin in the same second. The tasks keep "
        "rendering, their progress rising a percent every 1.8 s, so each poll sees a running task and some polls a "
        "new state to record. The server is `sora-mcp --transport streamable-http --stateless` run by "
        "`bench/lag_server.py`, which adds the lag sampler (a task of the server's event loop sleeping 10 ms in a "
        "loop; its overshoot is how long every request on the loop was held up) and nothing else; "
        f"`SORA_MCP_MAX_CONNECTIONS` is raised to {max(counts) + 200} for the waiters. `/healthz` is probed every "
        "50 ms from another process. The gateway's reads are counted by `bench/counting_gateway.py`; the server's "
        "CPU time (every thread of the process) is read from `/proc`. The idle row is the reference: the same "
        "server with nothing to do. The last row is the SDK's floor under the largest burst: "
        "`bench/bare_waiter.py`, a bare `MCPServer` whose `get_task` reads the task, sleeps `wait_seconds` and "
        "reads it again (no validation, journal, shared polls or progress), with the same `/healthz`, sampler and "
        "collector thresholds. sora-mcp collects garbage with `sora_mcp.collector`'s thresholds (with the "
        "defaults, full collections of 1,000 open calls' objects held the loop 110-650 ms each). The goal (issue "
        "16): loop lag and `/healthz` p99 under 100 ms with 1,000 waiters, and waiters on one task costing the "
        "gateway about one reader's polls. A burst of 1,000 calls in one second is more than one process can take "
        "in (section 3: the bare `MCPServer` answers a few hundred calls a second; see the floor row), so a burst "
        "queues behind itself whatever the server does; the steady row is the load the goal is measured at.\n"
    )
    return out


async def _main(quick: bool, profile: Path | None, counts: tuple[int, ...] | None) -> None:  # pragma: no cover
    import run  # bench/run.py: background processes, ports and the base environment

    with tempfile.TemporaryDirectory(prefix="sora-bench-") as state:
        env = run.base_env("http://127.0.0.1:9", state)
        rows = await waiter_rows(run.background, run.free_port, env, quick, profile, counts)
    print("\n".join(rows))


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        probe_main(sys.argv[2], float(sys.argv[3]))
    else:
        profile_path = Path(sys.argv[sys.argv.index("--profile") + 1]).resolve() if "--profile" in sys.argv else None
        only = sys.argv[sys.argv.index("--counts") + 1] if "--counts" in sys.argv else None
        anyio.run(_main, "--quick" in sys.argv, profile_path, tuple(map(int, only.split(","))) if only else None)
