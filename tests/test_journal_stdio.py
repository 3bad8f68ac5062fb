"""The task journal across real server processes (``python -m sora_mcp`` over stdio) and real HTTP to the fake
gateway: a task survives SIGKILL, two processes share one journal, a broken journal is reported at start-up.

The shared-journal tests run on both backends: on PostgreSQL each process has a state directory of its own, as
replicas on different machines do, and only the database (``SORA_DATABASE_URL``) joins them."""

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from conftest import API_KEY, read_only_directory
from fake_gateway import FakeGateway, serve_in_thread
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, TextContent

from sora_mcp.journal import JOURNAL_FILENAME

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # real subprocesses

CREATE = "/v1/videos/generations"


@pytest.fixture
def gateway() -> Iterator[tuple[FakeGateway, str]]:
    """The fake gateway over real loopback HTTP, and its URL."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=1.0, character_seconds=0.5)
    with serve_in_thread(fake.build_app()) as url:
        yield fake, url


def server_env(url: str, state_dir: Path) -> dict[str, str]:
    """The whole environment of a server process (stdio servers do not inherit ours)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "SORA_API_KEY": API_KEY,
        "SORA_BASE_URL": url,
        "SORA_STATE_DIR": str(state_dir),
        "SORA_RETRY_BACKOFF": "0",
        "SORA_POLL_INTERVAL": "0.1",
        "SORA_TIMEOUT": "5",
    }


def stdio_server(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "sora_mcp"], env=env)


@pytest.fixture
def replica_env(journal_backend: str, state_dir: Path) -> Callable[[str, str], dict[str, str]]:
    """``replica_env(url, name)``: the environment of server ``name``. SQLite: one state directory for all.
    PostgreSQL: a state directory per name, one database."""
    database_url = os.environ.get("SORA_DATABASE_URL")

    def replica_env(url: str, name: str) -> dict[str, str]:
        if journal_backend == "sqlite":
            return server_env(url, state_dir)
        assert database_url is not None
        return {**server_env(url, state_dir / name), "SORA_DATABASE_URL": database_url}

    return replica_env


def write_file(path: Path, data: bytes | None) -> None:
    """Make the directory of ``path``, and the file with ``data`` unless None."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        path.write_bytes(data)


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error is False, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error is True
    item = result.content[0]
    assert isinstance(item, TextContent)
    return item.text


@dataclass
class RawServer:
    """A server process spoken to in raw JSON-RPC lines (2025-11-25 handshake), so the test owns its pid."""

    process: Process
    stdout: BufferedByteReceiveStream
    next_id: int = 1
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")

    async def start_request(self, method: str, params: dict[str, Any]) -> int:
        request_id, self.next_id = self.next_id, self.next_id + 1
        await self.send({"id": request_id, "method": method, "params": params})
        return request_id

    async def response(self, request_id: int) -> dict[str, Any]:
        while request_id not in self.pending:
            message = json.loads(await self.stdout.receive_until(b"\n", 1 << 20))
            if "id" in message and "method" not in message:
                self.pending[message["id"]] = message
        response = self.pending.pop(request_id)
        assert "result" in response, response
        result: dict[str, Any] = response["result"]
        return result

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self.response(await self.start_request(method, params))

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.request("tools/call", {"name": name, "arguments": arguments})

    async def stderr(self) -> str:
        """Everything the process wrote to stderr; call once it has exited."""
        assert self.process.stderr is not None
        chunks = [chunk async for chunk in self.process.stderr]
        return b"".join(chunks).decode()


@asynccontextmanager
async def raw_server(env: dict[str, str]) -> AsyncIterator[RawServer]:
    """``python -m sora_mcp`` after the MCP handshake; killed on exit if still running."""
    process = await anyio.open_process(
        [sys.executable, "-m", "sora_mcp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    async with process:
        assert process.stdout is not None
        server = RawServer(process, BufferedByteReceiveStream(process.stdout))
        try:
            await server.request(
                "initialize",
                {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
            )
            await server.send({"method": "notifications/initialized"})
            yield server
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def test_a_task_survives_sigkill_of_the_server_and_a_new_server_finishes_it(
    gateway: tuple[FakeGateway, str], replica_env: Callable[[str, str], dict[str, str]]
) -> None:
    """Create over stdio, SIGKILL the server, start another: list_tasks shows the task, get_task completes it."""
    fake, url = gateway
    with anyio.fail_after(30):
        async with raw_server(replica_env(url, "first")) as first:
            created = (await first.call_tool("create_video", {"prompt": "a cat on a skateboard"}))["structuredContent"]
            first.process.send_signal(signal.SIGKILL)
            assert await first.process.wait() == -signal.SIGKILL
        async with Client(stdio_server(replica_env(url, "second"))) as second:
            listed = structured(await second.call_tool("list_tasks", {}))["tasks"]
            done = structured(await second.call_tool("get_task", {"task_id": created["task_id"], "wait_seconds": 20}))
            after = structured(await second.call_tool("list_tasks", {}))["tasks"]
    assert [(t["task_id"], t["prompt"], t["status"]) for t in listed] == [
        (created["task_id"], "a cat on a skateboard", "queued")
    ]
    assert (done["status"], done["video_url"].endswith(".mp4")) == ("completed", True)
    assert [(t["task_id"], t["status"], t["video_url"]) for t in after] == [
        (created["task_id"], "completed", done["video_url"])
    ]
    assert sum(1 for r in fake.requests if r.method == "POST") == 1


async def test_a_server_killed_while_creating_leaves_an_outcome_unknown_submission(
    gateway: tuple[FakeGateway, str], replica_env: Callable[[str, str], dict[str, str]]
) -> None:
    """SIGKILL while the create POST is in flight: the next server lists it as a submission with unknown outcome."""
    fake, url = gateway
    fake.hang("POST", CREATE)
    with anyio.fail_after(30):
        async with raw_server(replica_env(url, "first")) as first:
            await first.start_request("tools/call", {"name": "create_video", "arguments": {"prompt": "a lost cat"}})
            for _ in itertools.count():  # until the POST reached the gateway (which holds it unanswered)
                if any(r.method == "POST" for r in fake.requests):
                    break
                await anyio.sleep(0.05)
            first.process.send_signal(signal.SIGKILL)
            await first.process.wait()
        async with Client(stdio_server(replica_env(url, "second"))) as second:
            (lost,) = structured(await second.call_tool("list_tasks", {}))["tasks"]
            again = structured(await second.call_tool("create_video", {"prompt": "a lost cat"}))
    assert (lost["outcome_unknown"], lost["prompt"], "task_id" in lost) == (True, "a lost cat", False)
    assert "is unknown (the process that sent it stopped before the gateway answered)" in lost["hint"]
    assert (again["reused"], again["outcome_unknown"]) == (True, True)
    assert sum(1 for r in fake.requests if r.method == "POST") == 1


async def test_two_server_processes_share_one_journal_without_losing_or_duplicating_rows(
    gateway: tuple[FakeGateway, str], replica_env: Callable[[str, str], dict[str, str]]
) -> None:
    """Two stdio servers create concurrently (distinct and identical requests): every task once, both list all."""
    fake, url = gateway
    results: list[tuple[str, dict[str, Any]]] = []
    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(Client(stdio_server(replica_env(url, name)), mode=mode))
                for name, mode in (("a", "auto"), ("b", "legacy"))
            }

            async def create(name: str, prompt: str) -> None:
                result = await clients[name].call_tool("create_video", {"prompt": prompt})
                results.append((prompt, structured(result)))

            async with anyio.create_task_group() as group:
                for index in range(4):
                    for name in clients:
                        group.start_soon(create, name, f"{name} video {index}")
                for name in clients:
                    group.start_soon(create, name, "the same video from both")
            listings = {
                name: structured(await client.call_tool("list_tasks", {"limit": 100}))["tasks"]
                for name, client in clients.items()
            }
    posted = [r.json["prompt"] for r in fake.requests if r.method == "POST"]
    assert sorted(posted) == sorted([f"{n} video {i}" for n in "ab" for i in range(4)] + ["the same video from both"])
    sent, reused = sorted(
        (result for prompt, result in results if prompt == "the same video from both"), key=lambda r: "reused" in r
    )
    assert "reused" not in sent and reused["reused"] is True  # one of the two identical requests was not sent
    # The second either saw the first's task id, or the first still in flight (then its outcome is not known yet).
    assert reused.get("task_id", sent["task_id"]) == sent["task_id"]
    assert reused.get("outcome_unknown") is (None if "task_id" in reused else True)
    # The same rows; next_poll_seconds depends on the moment each server answered, a second apart at most.
    assert [{**t, "next_poll_seconds": None} for t in listings["a"]] == [
        {**t, "next_poll_seconds": None} for t in listings["b"]
    ]
    ids = [t["task_id"] for t in listings["a"]]
    assert len(ids) == len(set(ids)) == 9
    assert sorted(t["prompt"] for t in listings["a"]) == sorted(posted)


@pytest.mark.parametrize("problem", ["corrupt", "read-only"])
async def test_a_broken_journal_is_reported_at_start_up_and_the_server_still_serves(
    gateway: tuple[FakeGateway, str], state_dir: Path, problem: str
) -> None:
    """Corrupt file or read-only directory: a warning on stderr, list_tasks explains, get_task still works."""
    fake, url = gateway
    path = state_dir / JOURNAL_FILENAME
    task_id = fake.create({"model": "sora-2", "prompt": "made before"})["id"]
    write_file(path, b"not a database " * 500 if problem == "corrupt" else None)
    if problem == "corrupt":
        expected = f"The task journal {path} is damaged or not a SQLite database (file is not a database)."
    else:
        expected = f"The task journal {path} cannot be opened for writing ("
    env = server_env(url, state_dir)
    with read_only_directory(state_dir) if problem == "read-only" else nullcontext(), anyio.fail_after(30):
        async with raw_server(env) as server:
            listed = await server.call_tool("list_tasks", {})
            read = await server.call_tool("get_task", {"task_id": task_id})
            assert server.process.stdin is not None
            await server.process.stdin.aclose()
            assert await server.process.wait() == 0
            stderr = await server.stderr()
    assert listed["isError"] is True
    assert listed["content"][0]["text"].startswith("Error executing tool list_tasks: " + expected)
    assert read["structuredContent"]["task_id"] == task_id
    warning = next(line for line in stderr.splitlines() if "WARNING sora_mcp.server.app:" in line)
    assert warning.split("WARNING sora_mcp.server.app: ", 1)[1].startswith(expected)
    assert warning.endswith("Until then tasks are not recorded, and list_tasks cannot answer.")
