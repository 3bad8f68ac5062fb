"""The in-chat player (an MCP App): the tools that open it, its HTML resource and CSP, the app-only tool, the saved
video it plays after expiry, and, in a real headless Chromium, a test host that shows progress then a playing video.
"""

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import make_settings, not_installed
from fake_gateway import FakeGateway
from mcp import Client
from mcp.types import BlobResourceContents, TextResourceContents
from node_clients import NodeClients
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from sora_mcp.config import DEFAULT_MEDIA_ORIGINS, Settings
from sora_mcp.embedded import serve_app
from sora_mcp.server import build_server
from sora_mcp.server.player import PLAYER_URI, SANDBOX_ORIGINS

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
HOST_PAGE = Path(__file__).parent / "player_host" / "host.html"
DRIVER = Path(__file__).parent / "interop" / "player_host.mjs"
ARTIFACTS = ROOT / ".test-artifacts"
"""Where the Chromium test keeps its screenshot (git-ignored)."""
OPENS_PLAYER = {"create_video", "create_character", "remix_video", "get_task", "list_tasks"}


async def test_the_tools_that_show_a_task_open_the_player_and_player_state_is_for_the_app_only(
    mcp_client: Client,
) -> None:
    tools = {tool.name: tool for tool in (await mcp_client.list_tools()).tools}
    linked = {name for name, tool in tools.items() if (tool.meta or {}).get("ui", {}).get("resourceUri") == PLAYER_URI}
    assert linked == OPENS_PLAYER | {"player_state"}
    assert tools["player_state"].meta == {"ui": {"resourceUri": PLAYER_URI, "visibility": ["app"]}}
    assert all("visibility" not in tools[name].meta["ui"] for name in OPENS_PLAYER)  # type: ignore[index]
    assert tools["download_video"].meta is None and tools["get_spending"].meta is None


async def test_the_player_resource_is_one_self_contained_html_file_with_its_csp(mcp_client: Client) -> None:
    listed = {str(r.uri): r for r in (await mcp_client.list_resources()).resources}
    assert listed[PLAYER_URI].mime_type == "text/html;profile=mcp-app"
    [content] = (await mcp_client.read_resource(PLAYER_URI)).contents
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == "text/html;profile=mcp-app"
    assert content.meta == {"ui": {"csp": {"resourceDomains": list(DEFAULT_MEDIA_ORIGINS)}, "prefersBorder": True}}
    html = content.text
    assert len(html.encode()) < 60 * 1024
    assert html.startswith("<!DOCTYPE html>")
    # No CDN, no external script, style or font: everything the view needs is in the file.
    assert not re.search(r"<script[^>]+src=|<link\b|@import|url\(\s*['\"]?https?:|src=\"https?:", html)
    for method in ("ui/initialize", "ui/notifications/initialized", "tools/call", "resources/read", "ui/message"):
        assert f'"{method}"' in html, method


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"SORA_SANDBOX": "1"}, [*DEFAULT_MEDIA_ORIGINS, *SANDBOX_ORIGINS]),
        ({"SORA_MEDIA_ORIGINS": "https://cdn.example.com, https://media.example.com:8443"},
         ["https://cdn.example.com", "https://media.example.com:8443"]),
    ],
)  # fmt: skip
async def test_the_csp_names_the_configured_origins_and_the_sandbox(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: list[str]
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    async with Client(build_server(make_settings())) as client:
        [content] = (await client.read_resource(PLAYER_URI)).contents
    assert content.meta is not None and content.meta["ui"]["csp"]["resourceDomains"] == expected


def test_a_media_origin_must_be_an_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("SORA_MEDIA_ORIGINS", "https://cdn.example.com/videos")
    with pytest.raises(ValidationError, match=r"is not an origin such as https://app\.example\.com"):
        Settings()


async def test_player_state_reads_the_task_without_waiting(mcp_client: Client, fake: FakeGateway) -> None:
    task_id = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    result = await mcp_client.call_tool("player_state", {"task_id": task_id})
    assert result.is_error is False and result.structured_content is not None
    assert (result.structured_content["task_id"], result.structured_content["kind"]) == (task_id, "video")
    assert sum(1 for r in fake.requests if r.method == "GET") == 1  # one read: no waiting, no polling


async def test_the_saved_video_resource_serves_what_download_video_saved(tmp_path: Path) -> None:
    """Before download_video: not found, saying what to do. After: the file's bytes as a blob (sandbox media)."""
    settings = Settings(sandbox=True, sandbox_seconds=0.2, state_dir=tmp_path / "state", output_dir=tmp_path / "out")
    async with Client(build_server(settings)) as client:
        created = await client.call_tool("create_video", {"prompt": "a cat"})
        task_id = (created.structured_content or {})["task_id"]
        done = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 10})
        assert (done.structured_content or {})["status"] == "completed"
        uri = f"sora-video://{task_id}"
        with pytest.raises(Exception, match=r"call download_video\(task_id="):
            await client.read_resource(uri)
        downloaded = await client.call_tool("download_video", {"task_id": task_id})
        assert downloaded.is_error is False and downloaded.structured_content is not None
        saved = Path(downloaded.structured_content["path"])
        [content] = (await client.read_resource(uri)).contents
    assert isinstance(content, BlobResourceContents)
    assert content.mime_type == "video/mp4"
    assert base64.b64decode(content.blob) == await anyio.Path(saved).read_bytes()


# ------------------------------------------------------------------------------------------ in a real browser


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        not_installed("Chromium", "chromium")
    return found


def _host_app(client: Client, setup: dict[str, Any]) -> Starlette:
    """The test host page, its setup (the view's HTML and CSP, the tool call it shows) and the relay to sora-mcp."""

    async def page(_: Request) -> Response:
        return FileResponse(HOST_PAGE)

    async def initial(_: Request) -> Response:
        return JSONResponse(setup)

    async def rpc(request: Request) -> Response:
        message = json.loads(await request.body())
        params = message["params"]
        try:
            if message["method"] == "tools/call":
                result = await client.call_tool(params["name"], params.get("arguments") or {})
            else:
                result = await client.read_resource(params["uri"])
        except Exception as exc:  # relayed to the view as a JSON-RPC error, as a host would
            return JSONResponse({"error": {"code": -32603, "message": str(exc)}})
        return JSONResponse({"result": result.model_dump(mode="json", by_alias=True, exclude_none=True)})

    routes = [Route("/", page), Route("/setup", initial), Route("/rpc", rpc, methods=["POST"])]
    return Starlette(routes=routes)


@pytest.mark.slow
async def test_in_chromium_the_player_shows_progress_then_plays_the_video(
    node_clients: NodeClients, tmp_path: Path
) -> None:
    """A live sandbox server, the player in a sandboxed iframe of a test host in headless Chromium: the view
    polls player_state while the video renders, then plays it; a screenshot is kept as a test artifact."""
    chromium = _chromium()
    settings = Settings(sandbox=True, sandbox_seconds=3, state_dir=tmp_path / "state", output_dir=tmp_path / "out")
    async with Client(build_server(settings)) as client:
        arguments = {"prompt": "a cat surfing at sunset"}
        created = await client.call_tool("create_video", arguments)
        assert created.is_error is False and created.structured_content is not None
        assert created.structured_content["status"] in ("queued", "in_progress")
        [view] = (await client.read_resource(PLAYER_URI)).contents
        assert isinstance(view, TextResourceContents) and view.meta is not None
        setup = {
            "html": view.text,
            "resourceDomains": view.meta["ui"]["csp"]["resourceDomains"],
            "toolInput": arguments,
            "toolResult": created.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        screenshot = tmp_path / "player.png"
        async with serve_app(_host_app(client, setup)) as url:
            with anyio.fail_after(90):
                driven = await anyio.run_process(
                    [node_clients.node, str(DRIVER), url + "/", str(screenshot)],
                    env=node_clients.env(CHROMIUM=chromium),
                    check=False,
                )
    assert driven.returncode == 0, driven.stderr.decode()[-3000:]
    seen = json.loads(driven.stdout.decode().strip().splitlines()[-1])
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, ARTIFACTS / "player.png")
    assert seen["errors"] == [], seen
    assert seen["played"] is True, seen
    states = seen["states"]
    # The host samples the view's state every 50 ms: "loading" may pass unseen, "progress" lasts for seconds.
    assert "progress" in states and states[-1] == "playing", states
    assert states.index("progress") < states.index("playing")
    assert "player_state" in seen["calls"]
    assert seen["video"]["src"].startswith("http://127.0.0.1:") and seen["video"]["src"].endswith(".mp4")
    assert seen["video"]["currentTime"] > 0 and seen["video"]["paused"] is False
    assert screenshot.stat().st_size > 5_000
