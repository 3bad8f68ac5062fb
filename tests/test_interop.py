"""Interoperability with MCP clients nobody here wrote: the MCP Inspector CLI and the official TypeScript SDK.

Both are npm packages pinned in ``tests/interop/package.json`` (and its lock file). The ``node_clients`` fixture
installs them with ``npm ci`` into ``tests/interop/node_modules`` (git-ignored) the first time, and again only
when the lock file changes. Each client starts ``python -m sora_mcp`` itself, pointed at the fake gateway served
over real HTTP on loopback, and passes it the settings through its own ``env`` mechanism, as a host does.
"""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from conftest import API_KEY, TOOL_NAMES
from fake_gateway import FakeGateway, serve_in_thread
from mcp import Client
from node_clients import NodeClients

from sora_mcp.config import Settings
from sora_mcp.server import build_server

pytestmark = pytest.mark.slow  # real subprocesses: Node clients, stdio and HTTP servers

SERVER_COMMAND = [sys.executable, "-m", "sora_mcp"]
HTTP_TOKEN = "interop-http-token-0123456789"
"""SORA_MCP_AUTH_TOKEN of the Streamable HTTP server; the Inspector sends it as a bearer token."""
TOOLS = set(TOOL_NAMES)
CLIENT_TIMEOUT = 90
"""Seconds one client run may take; a run takes 1-4 s, so only a hang reaches this."""


@dataclass(frozen=True)
class Gateway:
    """The fake gateway on a real loopback port, and where servers under test keep their journal and downloads."""

    fake: FakeGateway
    url: str
    state_dir: Path
    output_dir: Path

    def server_env(self) -> dict[str, str]:
        """What a host puts in the server's ``env`` block: the key, the gateway, folders, test-friendly timings."""
        return {
            "SORA_API_KEY": API_KEY,
            "SORA_BASE_URL": self.url,
            "SORA_STATE_DIR": str(self.state_dir),
            "SORA_OUTPUT_DIR": str(self.output_dir),
            "SORA_POLL_INTERVAL": "0.2",
            "SORA_RETRY_BACKOFF": "0",
        }

    def completed_video(self) -> str:
        """A video task created directly in the fake, dated a minute ago so that it is already completed."""
        task_id = str(self.fake.create({"model": "sora-2", "prompt": "a lighthouse in a storm"})["id"])
        self.fake.tasks[task_id].created_at -= 60
        return task_id

    def journaled_video(self) -> str:
        """A video created through sora-mcp in this process (the official client, in memory), so that the task
        journal in ``state_dir`` records it."""
        settings = Settings(api_key=API_KEY, base_url=self.url, state_dir=self.state_dir, output_dir=self.output_dir)

        async def create() -> str:
            async with Client(build_server(settings)) as client:
                prompt = f"a lantern festival, take {len(self.fake.tasks)}"
                result = await client.call_tool("create_video", {"prompt": prompt})
            assert result.structured_content is not None
            return str(result.structured_content["task_id"])

        return anyio.run(create)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A fake gateway for the whole module; videos finish 0.5 s after creation."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=0.5, character_seconds=0.3)
    with serve_in_thread(fake.build_app()) as url:
        yield Gateway(fake, url, tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("videos"))


def stdio_connection(gateway: Gateway) -> list[str]:
    """Inspector arguments that start ``python -m sora_mcp`` over stdio, its env given with ``-e``."""
    env_options = [item for name, value in gateway.server_env().items() for item in ("-e", f"{name}={value}")]
    return [*env_options, "--", *SERVER_COMMAND]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def http_server(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sora-mcp --transport streamable-http --port <free>`` as a subprocess requiring a bearer token (what a
    shared server does); yields its MCP endpoint once ``/healthz`` answers."""
    port = free_port()
    log = tmp_path_factory.mktemp("http-server") / "stderr.log"
    env = {"PATH": os.environ.get("PATH", ""), **gateway.server_env(), "SORA_MCP_AUTH_TOKEN": HTTP_TOKEN}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*SERVER_COMMAND, "--transport", "streamable-http", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
            while True:
                assert process.poll() is None, f"the HTTP server exited early:\n{log.read_text()[-3000:]}"
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                assert time.monotonic() < deadline, f"the HTTP server did not start:\n{log.read_text()[-3000:]}"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=["stdio", "streamable-http"])
def connection(request: pytest.FixtureRequest, gateway: Gateway) -> list[str]:
    """Inspector arguments that reach sora-mcp: started over stdio, or over Streamable HTTP with the token."""
    if request.param == "stdio":
        return stdio_connection(gateway)
    url: str = request.getfixturevalue("http_server")
    return ["--header", f"Authorization: Bearer {HTTP_TOKEN}", "--", url]


def run_inspector(clients: NodeClients, connection: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    """``mcp-inspector --cli --format json <options> <connection>``."""
    return subprocess.run(
        [clients.node, str(clients.inspector), "--cli", "--format", "json", *options, *connection],
        env=clients.env(),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )


def inspector_result(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The ``result`` of a successful Inspector run, or a failure showing what the Inspector said."""
    assert completed.returncode == 0, f"inspector exit {completed.returncode}:\n{completed.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(completed.stdout)["result"]
    return result


# ------------------------------------------------------------------------------------------ MCP Inspector


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_lists_every_tool_with_schemas(node_clients: NodeClients, connection: list[str], era: str) -> None:
    """The Inspector lists every tool, each with an input and an output schema, over stdio and Streamable HTTP,
    in both protocol eras."""
    result = inspector_result(run_inspector(node_clients, connection, "--protocol-era", era, "--method", "tools/list"))
    tools = {tool["name"]: tool for tool in result["tools"]}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool["inputSchema"]["type"] == "object"
        assert tool["outputSchema"]["type"] == "object"
    assert tools["get_task"]["annotations"]["readOnlyHint"] is True
    assert tools["create_video"]["annotations"]["readOnlyHint"] is False


@dataclass(frozen=True)
class ToolCase:
    """One successful call of a tool, and what its structured result and the gateway must show afterwards."""

    arguments: dict[str, Any]
    check: Callable[[dict[str, Any]], None]


def last_post(gateway: Gateway) -> tuple[str, Any]:
    """Path and JSON body of the last POST the fake gateway received."""
    request = next(request for request in reversed(gateway.fake.requests) if request.method == "POST")
    return request.path, request.json


def create_video_case(gateway: Gateway) -> ToolCase:
    # A prompt of its own: the journal would answer a repeat of an earlier create with the earlier task.
    prompt = f"a red kite over a windy beach, slow pan, take {len(gateway.fake.tasks)}"
    arguments = {"prompt": prompt, "duration": 10, "size": "16:9"}

    def check(task: dict[str, Any]) -> None:
        assert (task["kind"], task["status"]) == ("video", "queued")
        assert last_post(gateway) == ("/v1/videos/generations", {"model": "sora-2", **arguments})

    return ToolCase(arguments, check)


def create_character_case(gateway: Gateway) -> ToolCase:
    source = gateway.completed_video()

    def check(task: dict[str, Any]) -> None:
        assert (task["kind"], task["status"]) == ("character", "queued")
        expected = {"model": "sora-2", "from_task": source, "timestamps": "1,3"}
        assert last_post(gateway) == ("/v1/videos/generations", expected)

    return ToolCase({"from_task": source, "timestamps": "1,3"}, check)


def remix_video_case(gateway: Gateway) -> ToolCase:
    source = gateway.completed_video()

    def check(task: dict[str, Any]) -> None:
        assert (task["kind"], task["status"]) == ("video", "queued")
        assert task["task_id"] != source
        assert last_post(gateway) == (f"/v1/videos/{source}/remix", {"model": "sora-2", "prompt": "make it night"})

    return ToolCase({"task_id": source, "prompt": "make it night"}, check)


def download_video_case(gateway: Gateway) -> ToolCase:
    source = gateway.completed_video()

    def check(saved: dict[str, Any]) -> None:
        path = Path(saved["path"])
        assert (saved["task_id"], path.parent) == (source, gateway.output_dir.resolve())
        content = path.read_bytes()
        assert content == gateway.fake.media(source, "mp4")
        assert (saved["bytes"], saved["sha256"]) == (len(content), hashlib.sha256(content).hexdigest())

    return ToolCase({"task_id": source}, check)


def get_task_case(gateway: Gateway) -> ToolCase:
    source = gateway.completed_video()

    def check(task: dict[str, Any]) -> None:
        assert (task["task_id"], task["status"], task["progress"]) == (source, "completed", 100)
        assert task["video_url"] == f"{gateway.url}/files/{source}.mp4"

    return ToolCase({"task_id": source, "wait_seconds": 10}, check)


def player_state_case(gateway: Gateway) -> ToolCase:
    source = gateway.completed_video()

    def check(task: dict[str, Any]) -> None:
        assert (task["task_id"], task["kind"]) == (source, "video")
        assert task["status"] in ("queued", "in_progress", "completed")

    return ToolCase({"task_id": source}, check)


def list_tasks_case(gateway: Gateway) -> ToolCase:
    journaled = gateway.journaled_video()

    def check(found: dict[str, Any]) -> None:
        [task] = [task for task in found["tasks"] if task["task_id"] == journaled]
        assert (task["kind"], task["model"]) == ("video", "sora-2")

    return ToolCase({"limit": 50}, check)


def get_spending_case(gateway: Gateway) -> ToolCase:
    gateway.journaled_video()  # $1.00 at the list price, recorded in the journal the server reads

    def check(found: dict[str, Any]) -> None:
        assert found["today_usd"] >= 1.0 and found["prices"] == {"sora-2": 0.1, "sora-2-pro": 0.3}
        assert any(item["model"] == "sora-2" and item["tasks"] >= 1 for item in found["by_model"])

    return ToolCase({}, check)


def inspect_video_case(gateway: Gateway) -> ToolCase:
    source = gateway.completed_video()

    def check(seen: dict[str, Any]) -> None:
        assert (seen["task_id"], seen["source"], seen["duration_seconds"]) == (source, "streamed", 3.0)
        assert (seen["width"], seen["height"], seen["has_audio"]) == (320, 180, True)
        assert len(seen["contact_sheet"]["frame_times_seconds"]) == 6

    return ToolCase({"task_id": source}, check)


TOOL_CASES: dict[str, Callable[[Gateway], ToolCase]] = {
    "create_video": create_video_case,
    "create_character": create_character_case,
    "remix_video": remix_video_case,
    "download_video": download_video_case,
    "get_task": get_task_case,
    "list_tasks": list_tasks_case,
    "get_spending": get_spending_case,
    "player_state": player_state_case,
    "inspect_video": inspect_video_case,
}
"""One successful call per tool; a new tool needs its case here (the coverage test fails until it has one)."""


def test_every_listed_tool_has_an_inspector_call_case() -> None:
    """The per-tool interop cases cover exactly the tools the server lists, so a new tool cannot skip interop."""

    async def listed() -> set[str]:
        async with Client(build_server(Settings(sandbox=True))) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    assert set(TOOL_CASES) == anyio.run(listed) == TOOLS


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_inspector_calls_each_tool(
    node_clients: NodeClients, gateway: Gateway, connection: list[str], tool: str
) -> None:
    """Over stdio and Streamable HTTP, the Inspector calls each tool and gets its structured result (also as JSON
    text); the gateway saw the call."""
    case = TOOL_CASES[tool](gateway)
    completed = run_inspector(
        node_clients,
        connection,
        "--method",
        "tools/call",
        "--tool-name",
        tool,
        "--tool-args-json",
        json.dumps(case.arguments),
    )
    result = inspector_result(completed)
    assert result["isError"] is False
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    case.check(result["structuredContent"])
    assert all(
        request.headers["authorization"] == f"Bearer {API_KEY}"
        for request in gateway.fake.requests
        if request.path.startswith("/v1/")
    )


def test_inspector_app_info_accepts_the_player(node_clients: NodeClients, connection: list[str]) -> None:
    """The Inspector's MCP Apps probe finds the player on get_task and list_tasks, with its MIME type and CSP, and
    finds no app on download_video (exit code 2), over stdio and Streamable HTTP."""
    for tool in ("get_task", "list_tasks"):
        completed = run_inspector(
            node_clients, connection, "--advertise-apps", "--app-info", "--method", "tools/call", "--tool-name", tool
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        assert json.loads(completed.stdout)["appInfo"] == {
            "hasApp": True,
            "toolName": tool,
            "resourceUri": "ui://sora-mcp/player.html",
            "csp": {
                "resourceDomains": [
                    "https://files.dashlyai.cc",
                    "https://files.toapis.com",
                    "https://upload.toapis.com",
                ]
            },
            "prefersBorder": True,
            "resourceMimeType": "text/html;profile=mcp-app",
        }
    none = run_inspector(
        node_clients,
        connection,
        "--advertise-apps",
        "--app-info",
        "--method",
        "tools/call",
        "--tool-name",
        "download_video",
    )
    assert none.returncode == 2 and json.loads(none.stdout)["appInfo"]["hasApp"] is False


def test_inspector_sees_a_bad_argument_as_a_tool_error_with_exit_code_5(
    node_clients: NodeClients, gateway: Gateway
) -> None:
    """A refused argument reaches the Inspector as an isError result (its exit code 5); nothing is sent upstream."""
    sent_before = len(gateway.fake.requests)
    completed = run_inspector(
        node_clients,
        stdio_connection(gateway),
        "--method",
        "tools/call",
        "--tool-name",
        "create_video",
        "--tool-args-json",
        json.dumps({"prompt": "a cat", "model": "sora-2", "duration": 25}),
    )
    assert completed.returncode == 5, completed.stderr[-3000:]
    result = json.loads(completed.stdout)["result"]
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert "duration" in text
    assert "sora-2-pro" in text
    assert len(gateway.fake.requests) == sent_before


def test_inspector_gets_the_make_video_prompt(node_clients: NodeClients, connection: list[str]) -> None:
    """prompts/get through the Inspector, over stdio and Streamable HTTP, returns the filled-in walkthrough."""
    result = inspector_result(
        run_inspector(
            node_clients,
            connection,
            "--method",
            "prompts/get",
            "--prompt-name",
            "make_video",
            "--prompt-args",
            "idea=a paper boat in a rain gutter",
            "style=nostalgic",
            "duration=15",
        )
    )
    [message] = result["messages"]
    assert message["role"] == "user"
    text = message["content"]["text"]
    assert "My idea: a paper boat in a rain gutter" in text
    assert 'Pass style="nostalgic" to create_video' in text
    assert "duration: 15 s" in text


def test_inspector_reports_a_bad_prompt_argument_as_an_error(node_clients: NodeClients, gateway: Gateway) -> None:
    """An unknown style is a JSON-RPC error (Inspector exit code 1) whose message lists the allowed styles."""
    completed = run_inspector(
        node_clients,
        stdio_connection(gateway),
        "--method",
        "prompts/get",
        "--prompt-name",
        "make_video",
        "--prompt-args",
        "idea=x",
        "style=pop",
    )
    assert completed.returncode == 1
    error = json.loads(completed.stderr.strip().splitlines()[-1])["error"]
    assert error["message"] == (
        "Invalid arguments for make_video: style: must be one of comic, news, anime, selfie, nostalgic, "
        "thanksgiving (or empty); got 'pop'"
    )


# ------------------------------------------------------------------------------ official TypeScript SDK


def test_typescript_sdk_client_runs_the_whole_workflow_over_stdio(node_clients: NodeClients, gateway: Gateway) -> None:
    """The TypeScript SDK lists tools, creates a video, waits with progress, downloads it and reads the prompt."""
    fake = gateway.fake
    completed = subprocess.run(
        [node_clients.node, str(node_clients.sdk_script), *SERVER_COMMAND],
        env=node_clients.env(**gateway.server_env()),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)

    assert report["server"]["name"] == "sora-mcp"
    assert {tool["name"] for tool in report["tools"]} == TOOLS
    assert all(tool["hasOutputSchema"] for tool in report["tools"])

    created = report["created"]
    assert (created["kind"], created["status"]) == ("video", "queued")
    assert created["task_id"] in fake.tasks
    final = report["final"]
    assert (final["task_id"], final["status"], final["progress"]) == (created["task_id"], "completed", 100)
    assert final["video_url"].endswith(f"/files/{created['task_id']}.mp4")
    assert 1 <= report["waits"] <= 3

    saved = report["downloaded"]
    assert saved["task_id"] == created["task_id"]
    assert Path(saved["path"]).read_bytes() == fake.media(created["task_id"], "mp4")
    assert report["downloadLinks"] == [Path(saved["path"]).as_uri()]

    # At least the first answer and the final state; strictly increasing, so a final 100 after a first answer
    # that was already 100 (a slow machine) arrives as 100.01.
    progress = [event["progress"] for event in report["progress"]]
    assert len(progress) >= 2
    assert progress == sorted(progress)
    assert len(set(progress)) == len(progress)
    assert 100 <= progress[-1] < 101
    assert all(event["total"] == 100 and "waited" in event["message"] for event in report["progress"])

    assert report["badArgument"]["isError"] is True
    assert "size" in report["badArgument"]["text"]
    assert "16:9" in report["badArgument"]["text"]

    assert "My idea: a hot-air balloon over a glacier" in report["prompt"]
    assert 'model="sora-2-pro"' in report["prompt"]
