"""Slow, idle and abandoning HTTP clients against `sora-mcp --transport streamable-http` in a subprocess.

The server runs with a file-descriptor limit of 256, as in the report that 300 clients trickling their headers
one byte at a time starved every authenticated request. Header and body deadlines close such connections, and
the connection cap (the limit less 64) lets a new connection replace the oldest waiting one.
"""

import os
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.abc import SocketStream
from conftest import API_KEY
from fake_gateway import FakeGateway, serve_in_thread
from test_http import (
    INITIALIZE,
    STREAMABLE_ACCEPT,
    TOKEN,
    eventually,
    free_port,
    server_process,
    subprocess_env,
    wait_until_healthy,
)

from sora_mcp.config import Settings
from sora_mcp.connections import ConnectionLimits

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SERVER_DESCRIPTORS = 256
HEADER_SECONDS = 2.0
BODY_SECONDS = 2.0


def limit_descriptors() -> None:
    """preexec_fn of the server: the small file-descriptor limit of the report."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_DESCRIPTORS, SERVER_DESCRIPTORS))


@contextmanager
def guarded_server(**settings: str) -> Iterator[tuple[str, int]]:
    """A token-protected Streamable HTTP server limited to 256 descriptors; yields its URL and pid."""
    fake = FakeGateway(api_key=API_KEY)
    with serve_in_thread(fake.build_app()) as gateway:
        port = free_port()
        env = subprocess_env(gateway, SORA_MCP_AUTH_TOKEN=TOKEN, **settings)
        # WARNING: the SDK logs a line per session at INFO, which would fill the stderr pipe nobody reads yet.
        command = [sys.executable, "-m", "sora_mcp", "--transport", "streamable-http", "--port", str(port)]
        command += ["--log-level", "WARNING"]
        with server_process(command, env, preexec_fn=limit_descriptors) as process:
            yield f"http://127.0.0.1:{port}", process


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture(autouse=True)
def enough_descriptors_here() -> Iterator[None]:
    """This test process opens 300 sockets at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2048 if hard == resource.RLIM_INFINITY else min(hard, 2048)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def authenticated_initialize(url: str) -> int:
    headers = {**STREAMABLE_ACCEPT, "Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
        return (await http.post("/mcp", json=INITIALIZE)).status_code


async def trickle(port: int, lifetimes: list[float], answers: list[bytes], stop: anyio.Event) -> None:
    """A slow client: sends a request's headers one byte every 0.3 s; when closed, it reconnects at once."""
    request = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    while not stop.is_set():
        try:
            stream: SocketStream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            await anyio.sleep(0.05)
            continue
        opened = anyio.current_time()
        async with stream:
            try:
                for byte in request:
                    if stop.is_set():
                        return
                    await stream.send(bytes([byte]))
                    with anyio.move_on_after(0.3):
                        answers.append(await stream.receive())
                        break
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
        lifetimes.append(anyio.current_time() - opened)


async def test_trickling_clients_cannot_starve_an_authenticated_one_or_exhaust_descriptors() -> None:
    """300 clients without a token, each trickling its headers and reconnecting the moment it is closed,
    against a server limited to 256 descriptors: authenticated requests are answered at once throughout, the
    server never runs out of descriptors, and no slow connection outlives the header deadline."""
    lifetimes: list[float] = []
    answers: list[bytes] = []
    statuses: list[int] = []
    slowest = peak = 0.0
    with guarded_server(SORA_MCP_HEADER_TIMEOUT_SECONDS=str(HEADER_SECONDS)) as (url, process):
        await wait_until_healthy(url, process)
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            for _ in range(300):
                group.start_soon(trickle, int(url.rsplit(":", 1)[1]), lifetimes, answers, stop)
            with anyio.fail_after(60):
                for _ in range(10):  # over five seconds, well past the header deadline
                    await anyio.sleep(0.5)
                    started = anyio.current_time()
                    statuses.append(await authenticated_initialize(url))
                    slowest = max(slowest, anyio.current_time() - started)
                    peak = max(peak, open_descriptors(process.pid))
            stop.set()
        assert process.poll() is None
        process.terminate()
        stderr = process.communicate(timeout=20)[1]
    assert statuses == [200] * 10
    assert slowest < 2, f"an authenticated request waited {slowest:.1f} s"
    assert peak < SERVER_DESCRIPTORS
    assert len(lifetimes) > 300  # the cap closed slow connections to admit new ones
    assert max(lifetimes) < HEADER_SECONDS + 3  # from the client's connect: includes time in the accept queue
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
    assert "Too many open files" not in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert "waiting ones closed to admit new ones" in stderr


async def test_a_client_trickling_its_headers_gets_408_after_the_header_deadline() -> None:
    lifetimes: list[float] = []
    answers: list[bytes] = []
    with guarded_server(SORA_MCP_HEADER_TIMEOUT_SECONDS=str(HEADER_SECONDS)) as (url, process):
        await wait_until_healthy(url, process)
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(trickle, int(url.rsplit(":", 1)[1]), lifetimes, answers, stop)
            with anyio.fail_after(10):
                await eventually(lambda: bool(lifetimes))
            stop.set()
    assert HEADER_SECONDS - 0.2 < lifetimes[0] < HEADER_SECONDS + 1
    assert answers[0].startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answers[0].endswith(b"Request Timeout: send the whole request without pausing")


async def test_a_body_sent_too_slowly_is_cut_off_after_the_body_deadline() -> None:
    """Complete headers with the token, then a body trickling a byte every 0.2 s: closed after the deadline."""
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with guarded_server(SORA_MCP_BODY_TIMEOUT_SECONDS=str(BODY_SECONDS)) as (url, process):
        await wait_until_healthy(url, process)
        port = int(url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            opened = anyio.current_time()
            await stream.send(head)
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError)):
                with anyio.fail_after(10):
                    for byte in body:
                        await stream.send(bytes([byte]))
                        with anyio.move_on_after(0.2):
                            assert await stream.receive() == b"", "the server answered a half-sent body"
            cut_after = anyio.current_time() - opened
        assert BODY_SECONDS - 0.2 < cut_after < BODY_SECONDS + 1.5
        assert await authenticated_initialize(url) == 200
        assert process.poll() is None


def test_the_connection_cap_follows_the_descriptor_limit_and_the_deadlines_have_documented_defaults() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        low = ConnectionLimits.for_process(10, 60)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65_536), hard))
        high = ConnectionLimits.for_process(10, 60)
        chosen = ConnectionLimits.for_process(10, 60, max_connections=50)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (low.max_connections, low.descriptor_budget, low.accept_batch) == (160, 208, 8)
    if hard >= 65_536:
        assert (high.max_connections, high.descriptor_budget, high.accept_batch) == (1000, 65_488, 2048)
    assert chosen.max_connections == 50
    settings = Settings()
    assert (settings.mcp_header_timeout_seconds, settings.mcp_body_timeout_seconds) == (10.0, 60.0)
    assert settings.mcp_max_connections is None


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def abandon_sessions(url: str, count: int) -> None:
    """``count`` clients each open a session (initialize) and leave without DELETE, 20 at a time."""
    limiter = anyio.CapacityLimiter(20)
    headers = {**STREAMABLE_ACCEPT, "Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(base_url=url, headers=headers, timeout=30) as http:

        async def one() -> None:
            async with limiter:
                for attempt in range(3):  # a kept-alive connection closed under a loaded machine is retried
                    try:
                        response = await http.post("/mcp", json=INITIALIZE)
                    except httpx2.TransportError:
                        if attempt == 2:
                            raise
                        continue
                    assert response.status_code == 200, response.text
                    return

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's RSS from /proc")
async def test_memory_of_abandoned_sessions_returns_once_they_expire() -> None:
    """1,000 sessions opened and abandoned grow the server; once SORA_MCP_SESSION_IDLE_SECONDS has closed them, a
    second 1,000 reuse that memory instead of adding as much again. (The cap is set above both batches: how soon
    the SDK reaps expired sessions depends on the machine's load, and this test is about memory.)"""
    idle = 6.0
    settings = {"SORA_MCP_SESSION_IDLE_SECONDS": str(idle), "SORA_MCP_MAX_SESSIONS": "5000"}
    with guarded_server(**settings) as (url, process):
        await wait_until_healthy(url, process)
        await abandon_sessions(url, 50)  # warm: imports and first-use allocations
        await anyio.sleep(idle + 4)
        base = resident_kib(process.pid)
        await abandon_sessions(url, 1000)
        grown = resident_kib(process.pid)
        await anyio.sleep(idle + 4)  # every one of them expires
        await abandon_sessions(url, 1000)
        again = resident_kib(process.pid)
    first_growth, second_growth = grown - base, again - grown
    assert first_growth > 20_000, f"1,000 sessions should take memory (grew {first_growth} KiB)"
    assert second_growth < first_growth / 3, f"grew {first_growth} KiB, then {second_growth} KiB more"
