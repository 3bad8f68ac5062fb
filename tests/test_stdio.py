"""The real server as a subprocess over stdio (``python -m sora_mcp``), against the fake gateway over loopback HTTP."""

import json
import math
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import Process
from conftest import API_KEY, TOOL_NAMES
from fake_gateway import FakeGateway, serve_in_thread
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # real subprocesses

CREATE = "/v1/videos/generations"
VIDEO_STATUS = "/v1/videos/generations/"
CANARY = "sk-canary-0d4f7b2e91c35a68"
SERVER = [sys.executable, "-m", "sora_mcp"]


def server_env(**variables: str) -> dict[str, str]:
    """The subprocess environment: PATH, the test's journal directory and the given SORA_* variables (stdio
    does not inherit ours)."""
    return {"PATH": os.environ["PATH"], "SORA_STATE_DIR": os.environ["SORA_STATE_DIR"], **variables}


def gateway_env(url: str, key: str = API_KEY) -> dict[str, str]:
    return server_env(
        SORA_API_KEY=key,
        SORA_BASE_URL=url,
        SORA_POLL_INTERVAL="0.1",
        SORA_RETRY_BACKOFF="0",
        SORA_MAX_RETRIES="1",
        SORA_TIMEOUT="5",
    )


@contextmanager
def served(fake: FakeGateway) -> Iterator[str]:
    """The fake gateway on a real loopback port (from another thread); yields its base URL."""
    with serve_in_thread(fake.build_app()) as url:
        yield url


@asynccontextmanager
async def stdio_server(env: dict[str, str], stderr: Path, *args: str, mode: str = "auto") -> AsyncIterator[Client]:
    """The official client connected to ``python -m sora_mcp ARGS`` over stdio; the server's stderr goes to a file."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "sora_mcp", *args], env=env)
    async with AsyncExitStack() as stack:
        errlog = stack.enter_context(stderr.open("w", encoding="utf-8"))
        yield await stack.enter_async_context(Client(stdio_client(params, errlog=errlog), mode=mode))


def text_of(result: CallToolResult) -> str:
    assert len(result.content) == 1
    item = result.content[0]
    assert isinstance(item, TextContent)
    return item.text


def task_of(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    task: dict[str, Any] | None = result.structured_content
    assert task is not None
    return task


class Progress:
    """Progress notifications as they arrive."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))

    @property
    def values(self) -> list[float]:
        return [progress for progress, _, _ in self.events]


# --------------------------------------------------------------------------------------------- the official client


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_video_is_created_and_waited_for_over_stdio_with_progress(mode: str, tmp_path: Path) -> None:
    """create_video -> get_task(wait_seconds) over a real stdio pipe completes, with progress notifications."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=1.0)
    with served(fake) as url:
        with anyio.fail_after(30):
            async with stdio_server(gateway_env(url), tmp_path / "stderr.log", mode=mode) as client:
                assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
                created = task_of(await client.call_tool("create_video", {"prompt": "a cat", "duration": 15}))
                assert (created["status"], created["kind"]) == ("queued", "video")
                progress = Progress()
                task = task_of(
                    await client.call_tool(
                        "get_task",
                        {"task_id": created["task_id"], "wait_seconds": 20},
                        progress_callback=progress,
                    )
                )
    task_id = created["task_id"]
    assert task["status"] == "completed"
    assert task["video_url"] == f"{url}/files/{task_id}.mp4"
    assert len(progress.events) >= 2
    assert progress.values == sorted(set(progress.values))
    assert progress.events[-1][0] == 100
    assert all(total == 100 for _, total, _ in progress.events)
    assert fake.requests[0].json == {"model": "sora-2", "prompt": "a cat", "duration": 15}
    assert fake.requests[0].headers["user-agent"].startswith("sora-mcp/")


async def test_without_a_key_the_subprocess_lists_tools_and_answers_with_the_fix(tmp_path: Path) -> None:
    """No SORA_API_KEY: the server still starts and lists its tools, calls name SORA_API_KEY, stderr warns."""
    fake = FakeGateway(api_key=API_KEY)
    stderr = tmp_path / "stderr.log"
    with served(fake) as url:
        with anyio.fail_after(30):
            async with stdio_server(server_env(SORA_BASE_URL=url), stderr) as client:
                assert sorted(tool.name for tool in (await client.list_tools()).tools) == TOOL_NAMES
                result = await client.call_tool("create_video", {"prompt": "a cat"})
    assert result.is_error is True
    assert text_of(result).startswith("Error executing tool create_video: SORA_API_KEY is not set.")
    assert fake.requests == []
    assert "SORA_API_KEY is not set: tools will answer with an error" in stderr.read_text()


async def test_the_sandbox_completes_a_video_whose_url_serves_an_mp4(tmp_path: Path) -> None:
    """--sandbox needs no key: create -> wait -> completed with sandbox true, and the video URL serves an MP4."""
    with anyio.fail_after(60):
        async with stdio_server(server_env(SORA_SANDBOX_SECONDS="2"), tmp_path / "stderr.log", "--sandbox") as client:
            task = task_of(await client.call_tool("create_video", {"prompt": "a corgi surfing"}))
            assert task["sandbox"] is True
            for _ in range(3):
                if task["status"] in ("completed", "failed"):
                    break
                task = task_of(await client.call_tool("get_task", {"task_id": task["task_id"], "wait_seconds": 20}))
            assert task["status"] == "completed"
            assert task["sandbox"] is True
            assert task["hint"].startswith("[Sandbox: simulated task, nothing was billed] The video is ready")
            async with httpx2.AsyncClient() as http:
                video = await http.get(task["video_url"])
    assert task["video_url"].startswith("http://127.0.0.1:")
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"


# --------------------------------------------------------------------------------------------- the raw protocol


class RawSession:
    """JSON-RPC over the pipes of a ``python -m sora_mcp`` process, keeping every byte it writes."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.lines: list[bytes] = []
        self.returncode: int | None = None
        self._send, self._messages = anyio.create_memory_object_stream[dict[str, Any]](math.inf)
        self._last_id = 0

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self._write({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})

    async def request(self, method: str, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Send a request; return its response and the notifications that arrived before it."""
        self._last_id += 1
        await self._write({"jsonrpc": "2.0", "id": self._last_id, "method": method, "params": params})
        notifications: list[dict[str, Any]] = []
        with anyio.fail_after(30):
            async for message in self._messages:
                if message.get("id") == self._last_id and "method" not in message:
                    return message, notifications
                notifications.append(message)
        raise AssertionError(f"the server closed stdout before answering {method}")

    async def call_tool(self, name: str, arguments: dict[str, Any], **meta: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        response, _ = await self.request("tools/call", params)
        result: dict[str, Any] = response["result"]
        return result

    async def initialize(self) -> dict[str, Any]:
        response, _ = await self.request(
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
        )
        await self.notify("notifications/initialized")
        result: dict[str, Any] = response["result"]
        return result

    async def _write(self, message: dict[str, Any]) -> None:
        await self._write_raw(json.dumps(message).encode() + b"\n")

    async def _write_raw(self, line: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(line)

    async def read_stdout(self) -> None:
        assert self.process.stdout is not None
        async for chunk in self.process.stdout:
            self.stdout += chunk
            *complete, _partial = self.stdout.split(b"\n")
            for line in complete[len(self.lines) :]:
                self.lines.append(bytes(line))
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    await self._send.send(message)
        if self.stdout and not self.stdout.endswith(b"\n"):
            self.lines.append(bytes(self.stdout.rsplit(b"\n", 1)[-1]))  # a partial last line fails the checks
        self._send.close()

    def close(self) -> None:
        self._messages.close()

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self.stderr += chunk


@asynccontextmanager
async def raw_server(env: dict[str, str], *args: str) -> AsyncIterator[RawSession]:
    """Run ``python -m sora_mcp ARGS``; on exit close its stdin (the end of the session) and wait for it to stop."""
    process = await anyio.open_process([*SERVER, *args], env=env)
    session = RawSession(process)
    try:
        async with process, anyio.create_task_group() as group:
            group.start_soon(session.read_stdout)
            group.start_soon(session.read_stderr)
            try:
                yield session
            finally:
                with anyio.CancelScope(shield=True):
                    assert process.stdin is not None
                    await process.stdin.aclose()
                    with anyio.move_on_after(10):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                    session.returncode = process.returncode
    finally:
        session.close()


def assert_only_json_rpc(lines: list[bytes]) -> list[dict[str, Any]]:
    """Every stdout line is one JSON-RPC 2.0 response or notification; return them parsed."""
    assert lines
    messages = []
    for line in lines:
        message = json.loads(line)
        assert isinstance(message, dict), line
        assert message["jsonrpc"] == "2.0", line
        if "method" in message:
            assert "id" not in message, line  # the server sends no requests here
        else:
            assert isinstance(message["id"], int), line
            assert ("result" in message) != ("error" in message), line
        messages.append(message)
    return messages


async def test_stdout_carries_only_json_rpc_even_with_debug_logs_and_the_sandbox(tmp_path: Path) -> None:
    """Raw pipes, sandbox, DEBUG logs: every stdout line is JSON-RPC 2.0 and all logging goes to stderr."""
    async with raw_server(server_env(SORA_SANDBOX_SECONDS="2"), "--sandbox", "--log-level", "DEBUG") as server:
        info = await server.initialize()
        assert info["protocolVersion"] == "2025-11-25"
        assert info["serverInfo"]["name"] == "sora-mcp"
        assert "get_task" in info["instructions"]
        listed, _ = await server.request("tools/list", {})
        assert sorted(tool["name"] for tool in listed["result"]["tools"]) == TOOL_NAMES
        created = await server.call_tool("create_video", {"prompt": "a cat"})
        assert created["isError"] is False
        task_id = created["structuredContent"]["task_id"]
        response, notifications = await server.request(
            "tools/call",
            {"name": "get_task", "arguments": {"task_id": task_id, "wait_seconds": 1}, "_meta": {"progressToken": 7}},
        )
        invalid = await server.call_tool("get_task", {"task_id": "../etc"})
    assert response["result"]["structuredContent"]["status"] in ("queued", "in_progress")
    assert notifications
    assert {n["method"] for n in notifications} == {"notifications/progress"}
    assert {n["params"]["progressToken"] for n in notifications} == {7}
    assert invalid["isError"] is True
    assert server.returncode == 0
    messages = assert_only_json_rpc(server.lines)
    assert [m["id"] for m in messages if "id" in m] == [1, 2, 3, 4, 5]
    assert bytes(server.stdout).endswith(b"\n")
    assert b"Sandbox gateway at http://127.0.0.1:" in server.stderr
    assert b"DEBUG" in server.stderr


async def test_the_api_key_appears_neither_on_stdout_nor_in_debug_logs(tmp_path: Path) -> None:
    """DEBUG logs, a create, a wait and 401s echoing the key: the key is in neither stdout nor stderr."""
    fake = FakeGateway(api_key=CANARY, video_seconds=0.5)
    echo = {"error": {"code": 401, "message": f"Invalid API key {CANARY}", "type": "authentication_error"}}
    with served(fake) as url:
        async with raw_server(gateway_env(url, key=CANARY), "--log-level", "DEBUG") as server:
            await server.initialize()
            created = await server.call_tool("create_video", {"prompt": "a cat"})
            task_id = created["structuredContent"]["task_id"]
            waited = await server.call_tool("get_task", {"task_id": task_id, "wait_seconds": 10}, progressToken="p")
            fake.fault("GET", VIDEO_STATUS, status=401, json=echo)
            rejected_read = await server.call_tool("get_task", {"task_id": task_id})
            fake.fault("POST", CREATE, status=401, json=echo)
            rejected_create = await server.call_tool("create_video", {"prompt": "a dog"})
    assert waited["structuredContent"]["status"] == "completed"
    for rejected in (rejected_read, rejected_create):
        assert rejected["isError"] is True
        assert "(HTTP 401: Invalid API key ***)" in rejected["content"][0]["text"]
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {CANARY}"}  # the key was in use
    assert_only_json_rpc(server.lines)
    assert b"DEBUG" in server.stderr  # the debug logs were on, and captured
    assert CANARY.encode() not in server.stdout
    assert CANARY.encode() not in server.stderr


async def test_unreadable_lines_get_a_parse_error_and_the_server_goes_on(tmp_path: Path) -> None:
    """A garbage line and a request holding a lone surrogate (half an emoji) each get a JSON-RPC -32700 answer,
    the latter with its id; JSON that is no JSON-RPC message gets -32600, with its id when it has one. No client
    waits forever; the next request is served."""
    async with raw_server(server_env(SORA_SANDBOX="1")) as server:
        await server.initialize()
        await server._write_raw(b"this is not json\n")
        await server._write_raw(
            b'{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"x","y":"\\ud83d"}}\n'
        )
        await server._write_raw(b'{"jsonrpc":"2.0","id":42}\n')
        await server._write_raw(b"[1, 2]\n")
        with anyio.fail_after(30):
            parse_errors = [await server._messages.receive() for _ in range(4)]
        listed, _ = await server.request("tools/list", {})
    assert [(m["id"], m["error"]["code"]) for m in parse_errors] == [
        (None, -32700),
        (41, -32700),
        (42, -32600),
        (None, -32600),
    ]
    assert "lone surrogate" in parse_errors[1]["error"]["message"]
    assert parse_errors[2]["error"]["message"].startswith("Invalid Request: the line is JSON but not a JSON-RPC")
    assert sorted(tool["name"] for tool in listed["result"]["tools"]) == TOOL_NAMES
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in server.lines)


async def test_sigterm_during_a_create_delivers_its_task_id_then_exits_0(tmp_path: Path) -> None:
    """SIGTERM while a create waits for the gateway: the create still answers its task id, the process exits 0."""
    import signal

    fake = FakeGateway(api_key=API_KEY)
    fake.hang("POST", CREATE, seconds=1.5)
    with served(fake) as url:
        async with raw_server(gateway_env(url)) as server:
            await server.initialize()
            answers: list[dict[str, Any]] = []

            async def create() -> None:
                answers.append(await server.call_tool("create_video", {"prompt": "in flight"}))

            async with anyio.create_task_group() as group:
                group.start_soon(create)
                with anyio.fail_after(20):
                    while not any(r.method == "POST" for r in fake.requests):  # noqa: ASYNC110
                        await anyio.sleep(0.02)
                server.process.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                returncode = await server.process.wait()
    (result,) = answers
    assert result.get("isError") is not True, result
    assert result["structuredContent"]["task_id"] in fake.tasks
    assert returncode == 0
    assert b"Traceback" not in server.stderr, server.stderr.decode()


async def test_sandbox_tasks_outlive_the_server_process(tmp_path: Path) -> None:
    """As the README's Inspector commands do, a server per call: the task one sandbox server created is found,
    listed and completed by the next, whose media link (on its own port) serves the video; the hint says how
    long such a link lives."""
    env = server_env(SORA_SANDBOX_SECONDS="1")
    with anyio.fail_after(60):
        async with stdio_server(env, tmp_path / "first.log", "--sandbox") as first:
            created = task_of(await first.call_tool("create_video", {"prompt": "a paper boat in a rain gutter"}))
        assert created["status"] == "queued"
        await anyio.sleep(1.2)
        async with stdio_server(env, tmp_path / "second.log", "--sandbox") as second:
            done = task_of(await second.call_tool("get_task", {"task_id": created["task_id"]}))
            listed = task_of(await second.call_tool("list_tasks", {}))
            async with httpx2.AsyncClient() as http:
                video = await http.get(done["video_url"])
    assert done["status"] == "completed" and done["sandbox"] is True
    assert "URL works while the server runs; after a restart, get_task gives a new one" in done["hint"]
    assert [task["task_id"] for task in listed["tasks"]] == [created["task_id"]]
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
