"""MCP over HTTP: both transports in both protocol eras on real uvicorn, security, concurrency, replicas, shutdown.

In-process tests serve `create_app(...)` with uvicorn on a free loopback port (`serve_app(..., lifespan=True)`)
and the fake gateway over real HTTP; the replica and shutdown tests run `sora-mcp` (and uvicorn's factory mode)
as subprocesses.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any

import anyio
import httpx2
import pytest
from conftest import API_KEY, INITIALIZE, STREAMABLE_ACCEPT, make_settings
from fake_gateway import FakeGateway, serve_in_thread
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult

from sora_mcp import __version__
from sora_mcp.__main__ import main
from sora_mcp.client import GATEWAY_CONNECTIONS
from sora_mcp.config import Settings
from sora_mcp.embedded import serve_app
from sora_mcp.http import HttpConfigError, HttpTransport, check_exposure, create_app, is_loopback
from sora_mcp.server import build_server

pytestmark = pytest.mark.anyio

TOKEN = "mcp-token-canary-4f9c2e7a1b"
MODES = ["auto", "legacy"]
ERA = {"auto": "2026-07-28", "legacy": "2025-11-25"}
TRANSPORTS: list[HttpTransport] = ["streamable-http", "sse"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture
async def gateway_url(fake: FakeGateway) -> AsyncIterator[str]:
    """The fake gateway over real loopback HTTP, in this event loop."""
    async with serve_app(fake.build_app()) as url:
        yield url


@asynccontextmanager
async def serving(settings: Settings, transport: HttpTransport = "streamable-http") -> AsyncIterator[str]:
    """The HTTP app on real uvicorn on a free loopback port, lifespan included; yields its base URL."""
    async with serve_app(create_app(settings, transport=transport), lifespan=True) as url:
        yield url


@asynccontextmanager
async def mcp_session(
    url: str, transport: HttpTransport, mode: str = "auto", token: str | None = None
) -> AsyncIterator[Client]:
    """The official MCP client connected to a server at base `url`, optionally sending a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with AsyncExitStack() as stack:
        if transport == "sse":
            target: Any = sse_client(f"{url}/sse", headers=headers)
        else:
            http = await stack.enter_async_context(create_mcp_http_client(headers=headers))
            target = streamable_http_client(f"{url}/mcp", http_client=http)
        yield await stack.enter_async_context(Client(target, mode=mode))


async def served_tool_names() -> list[str]:
    """The tools the server lists in memory, to compare with what HTTP clients see."""
    async with Client(build_server(make_settings())) as client:
        return sorted(tool.name for tool in (await client.list_tools()).tools)


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def subprocess_env(gateway_url: str, **extra: str) -> dict[str, str]:
    """The environment of a server subprocess: nothing inherited but PATH, the key and the fake's URL."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "SORA_STATE_DIR": os.environ["SORA_STATE_DIR"],
        "SORA_API_KEY": API_KEY,
        "SORA_BASE_URL": gateway_url,
        "SORA_RETRY_BACKOFF": "0",
        "SORA_POLL_INTERVAL": "0.2",
        **extra,
    }


@contextmanager
def server_process(
    args: list[str], env: dict[str, str], preexec_fn: Callable[[], None] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A server subprocess, killed if the test leaves it running."""
    process = subprocess.Popen(
        args,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


async def wait_until_healthy(url: str, process: subprocess.Popen[str]) -> None:
    """Poll GET /healthz until the subprocess serves it (it imports the SDK first)."""
    async with httpx2.AsyncClient(base_url=url, timeout=2) as http:
        with anyio.fail_after(30):
            while True:
                assert process.poll() is None, process.communicate()[1]
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                await anyio.sleep(0.1)


# --------------------------------------------------------------------------------------------- the tools over HTTP


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tools_work_over_each_http_transport_in_both_protocol_eras(
    gateway_url: str, transport: HttpTransport, mode: str
) -> None:
    """Over SSE and Streamable HTTP, in both eras: list the tools, create a video, wait for it with progress."""
    async with serving(make_settings(base_url=gateway_url), transport) as url, mcp_session(url, transport, mode) as mcp:
        assert mcp.protocol_version == ERA[mode]
        tools = await mcp.list_tools()
        assert sorted(tool.name for tool in tools.tools) == await served_tool_names()
        created = structured(await mcp.call_tool("create_video", {"prompt": "a cat on a skateboard"}))
        assert created["status"] == "queued"

        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total, message))

        with anyio.fail_after(20):
            done = await mcp.call_tool(
                "get_task", {"task_id": created["task_id"], "wait_seconds": 20}, progress_callback=on_progress
            )
    assert structured(done)["status"] == "completed"
    assert structured(done)["video_url"]
    values = [value for value, _, _ in progress]
    assert len(values) >= 2 and values == sorted(set(values)), progress
    assert values[-1] == 100 and {total for _, total, _ in progress} == {100}
    assert progress[-1][2] is not None and progress[-1][2].startswith("completed 100%")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_healthz_answers_version_and_transport_without_authentication(
    gateway_url: str, transport: HttpTransport
) -> None:
    """GET /healthz is 200 with a small JSON body even when a token is required and the Host is an LB's IP."""
    settings = make_settings(base_url=gateway_url, mcp_auth_token=TOKEN)
    async with serving(settings, transport) as url, httpx2.AsyncClient(base_url=url) as http:
        answers = [await http.get("/healthz"), await http.get("/healthz", headers={"Host": "10.1.2.3:8000"})]
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "version": __version__, "transport": transport}


# --------------------------------------------------------------------------------------------- security


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_foreign_host_and_origin_headers_are_refused_with_the_fix_named(
    gateway_url: str, transport: HttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    """DNS-rebinding protection on loopback: a foreign Host gets 421 and a foreign Origin 403, as JSON-RPC
    errors naming the option to change; nothing is logged above WARNING (no traceback)."""
    path = "/sse" if transport == "sse" else "/mcp"
    async with serving(make_settings(base_url=gateway_url), transport) as url, httpx2.AsyncClient(base_url=url) as http:

        async def attempt(headers: dict[str, str]) -> httpx2.Response:
            if transport == "sse":
                return await http.get(path, headers=headers)
            return await http.post(path, json=INITIALIZE, headers={**STREAMABLE_ACCEPT, **headers})

        foreign_host = await attempt({"Host": "evil.example.com"})
        rebound_host = await attempt({"Host": "evil.example.com:8000"})
        foreign_origin = await attempt({"Origin": "https://evil.example.com"})
    assert (foreign_host.status_code, rebound_host.status_code, foreign_origin.status_code) == (421, 421, 403)
    assert foreign_host.json()["error"]["message"].startswith("Invalid Host header.")
    assert "--allowed-host / SORA_MCP_ALLOWED_HOSTS" in foreign_host.json()["error"]["message"]
    assert "--allowed-origin / SORA_MCP_ALLOWED_ORIGINS" in foreign_origin.json()["error"]["message"]
    assert [record.getMessage() for record in caplog.records if record.levelno > logging.WARNING] == []


async def test_allowed_hosts_and_origins_are_accepted(gateway_url: str) -> None:
    """Hosts in SORA_MCP_ALLOWED_HOSTS are accepted on any port, allowed origins too; other names stay refused."""
    settings = make_settings(
        base_url=gateway_url,
        mcp_allowed_hosts="mcp.example.com, api.example.com:8443",
        mcp_allowed_origins="https://app.example.com",
    )
    async with serving(settings) as url, httpx2.AsyncClient(base_url=url) as http:

        async def status(**headers: str) -> int:
            answer = await http.post("/mcp", json=INITIALIZE, headers={**STREAMABLE_ACCEPT, **headers})
            return answer.status_code

        assert await status(Host="mcp.example.com") == 200
        assert await status(Host="mcp.example.com:443") == 200
        assert await status(Host="api.example.com:8443") == 200
        assert await status(Host="api.example.com:9000") == 421
        assert await status(Host="localhost:1234", Origin="https://app.example.com") == 200
        assert await status(Host="mcp.example.com", Origin="https://mcp.example.com.evil.example") == 403


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_configured_token_is_required_and_checked(
    gateway_url: str, transport: HttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    """With SORA_MCP_AUTH_TOKEN: no token, a wrong one or another scheme get 401 with WWW-Authenticate: Bearer;
    the right one works; the token never reaches the log."""
    caplog.set_level(logging.DEBUG)
    path = "/sse" if transport == "sse" else "/mcp"
    settings = make_settings(base_url=gateway_url, mcp_auth_token=TOKEN)
    async with serving(settings, transport) as url:
        async with httpx2.AsyncClient(base_url=url) as http:

            async def attempt(authorization: str | None) -> httpx2.Response:
                headers = {"Authorization": authorization} if authorization else {}
                if transport == "sse":
                    return await http.get(path, headers=headers)
                return await http.post(path, json=INITIALIZE, headers={**STREAMABLE_ACCEPT, **headers})

            missing = await attempt(None)
            wrong = await attempt(f"Bearer {TOKEN}x")
            basic = await attempt(f"Basic {TOKEN}")
        for refused in (missing, wrong, basic):
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "SORA_MCP_AUTH_TOKEN" in refused.json()["error"]["message"]
        assert missing.headers["www-authenticate"] == 'Bearer realm="sora-mcp"'
        assert wrong.headers["www-authenticate"] == 'Bearer realm="sora-mcp", error="invalid_token"'

        async with mcp_session(url, transport, token=TOKEN) as mcp:
            created = structured(await mcp.call_tool("create_video", {"prompt": "a cat"}))
        assert created["status"] == "queued"
    assert "Refused an MCP request from 127.0.0.1: no bearer token" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_with_a_token_only_healthz_is_open_and_every_other_request_gets_the_same_401(
    gateway_url: str, transport: HttpTransport
) -> None:
    """Unknown paths, HEAD and every method get the one 401 the MCP endpoint gives, so nothing tells a prober
    which paths exist; GET and HEAD /healthz alone answer without the token, and OAuth discovery answers 404 (a
    static token offers no OAuth, and a 401 there would start a flow that cannot end)."""
    settings = make_settings(base_url=gateway_url, mcp_auth_token=TOKEN)
    answers: dict[tuple[str, str], httpx2.Response] = {}
    discovery = [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/register",
    ]
    async with serving(settings, transport) as url, httpx2.AsyncClient(base_url=url) as http:
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            for path in (
                "/healthz",
                "/mcp",
                "/sse",
                "/messages/",
                "/",
                "/admin",
                "/mcp/../x",
                "/healthz/x",
                *discovery,
            ):
                answers[method, path] = await http.request(method, path)
    for path in discovery:
        for method in ("GET", "POST"):
            assert answers[method, path].status_code == 404, (method, path)
            assert "takes a static bearer token, not OAuth" in answers[method, path].json()["error_description"]
        del answers["GET", path], answers["POST", path], answers["HEAD", path], answers["OPTIONS", path]
        for method in ("PUT", "PATCH", "DELETE"):
            del answers[method, path]  # 405: not an MCP path either
    open_ = {key for key, answer in answers.items() if answer.status_code != 401}
    assert open_ == {("GET", "/healthz"), ("HEAD", "/healthz")}
    assert {answers[key].status_code for key in open_} == {200}
    challenges = {answer.headers.get("www-authenticate") for key, answer in answers.items() if key not in open_}
    assert challenges == {'Bearer realm="sora-mcp"'}
    bodies = {
        answer.content for (method, _), answer in answers.items() if method != "HEAD" and answer.status_code == 401
    }
    assert len(bodies) == 1 and b"SORA_MCP_AUTH_TOKEN" in bodies.pop()
    assert all(answers[key].content == b"" for key in answers if key[0] == "HEAD")


async def test_the_mcp_client_reports_a_missing_token_with_the_servers_message(gateway_url: str) -> None:
    """A Streamable HTTP client without the token fails to connect with an MCPError that says what to send."""
    settings = make_settings(base_url=gateway_url, mcp_auth_token=TOKEN)
    async with serving(settings) as url:
        with pytest.RaisesGroup(
            pytest.RaisesExc(MCPError, match="Authorization: Bearer <token>"), flatten_subgroups=True
        ):
            async with mcp_session(url, "streamable-http", mode="legacy"):
                pass  # pragma: no cover


@pytest.mark.parametrize(
    ("args", "fixes"),
    [
        (["--transport", "streamable-http", "--host", "0.0.0.0"], ["--allowed-host", "SORA_MCP_ALLOWED_HOSTS"]),
        (
            ["--transport", "sse", "--host", "192.0.2.10", "--allowed-host", "mcp.example.com"],
            ["SORA_MCP_AUTH_TOKEN", "--allow-unauthenticated"],
        ),
    ],
    ids=["no-allowed-hosts", "no-token"],
)
@pytest.mark.slow
def test_a_non_loopback_host_without_protection_refuses_to_start(args: list[str], fixes: list[str]) -> None:
    """`sora-mcp` on a non-loopback --host exits 2 before binding, without allowed hosts or without a token,
    with a message naming the option and the variable that fix it."""
    env = {"PATH": os.environ.get("PATH", ""), "SORA_API_KEY": API_KEY, "SORA_STATE_DIR": os.environ["SORA_STATE_DIR"]}
    result = subprocess.run(
        [sys.executable, "-m", "sora_mcp", *args, "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"sora-mcp: --host {args[3]} is not a loopback address")
    for fix in fixes:
        assert fix in result.stderr
    assert API_KEY not in result.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("mcp.example.com", False),
    ],
)
def test_loopback_hosts_are_recognized(host: str, loopback: bool) -> None:
    """Only loopback names and addresses count as loopback; wildcard binds and other names do not."""
    assert is_loopback(host) is loopback


def test_exposure_is_allowed_with_hosts_and_a_token_or_an_explicit_opt_out() -> None:
    """A non-loopback bind starts with allowed hosts plus a token, or plus --allow-unauthenticated."""
    check_exposure(make_settings(mcp_allowed_hosts="mcp.example.com", mcp_auth_token=TOKEN), "0.0.0.0")
    check_exposure(make_settings(mcp_allowed_hosts="mcp.example.com", mcp_allow_unauthenticated=True), "::")
    check_exposure(make_settings(), "127.0.0.1")
    with pytest.raises(HttpConfigError, match="SORA_MCP_AUTH_TOKEN"):
        check_exposure(make_settings(mcp_allowed_hosts="mcp.example.com"), "10.0.0.2")


async def test_the_factory_refuses_unauthenticated_requests_arriving_on_a_non_loopback_address() -> None:
    """An app factory cannot see uvicorn's --host: without a token, a request that arrived on a non-loopback
    address is refused with 403 naming SORA_MCP_AUTH_TOKEN (the socket address is all the ASGI scope has)."""
    app = create_app(make_settings())
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://192.0.2.10:8000") as http:
        answer = await http.post("/mcp", json=INITIALIZE, headers=STREAMABLE_ACCEPT)
    assert answer.status_code == 403
    assert "SORA_MCP_AUTH_TOKEN" in answer.json()["error"]["message"]


async def test_the_factory_reads_its_settings_from_the_environment(
    gateway_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`create_app()` with no arguments (uvicorn --factory) takes the token and the rest from SORA_* variables."""
    monkeypatch.setenv("SORA_API_KEY", API_KEY)
    monkeypatch.setenv("SORA_BASE_URL", gateway_url)
    monkeypatch.setenv("SORA_MCP_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("SORA_MCP_STATELESS", "1")
    async with serve_app(create_app(), lifespan=True) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            refused = await http.post("/mcp", json=INITIALIZE, headers=STREAMABLE_ACCEPT)
        async with mcp_session(url, "streamable-http", mode="legacy", token=TOKEN) as mcp:
            tools = await mcp.list_tools()
    assert refused.status_code == 401
    assert sorted(tool.name for tool in tools.tools) == await served_tool_names()


# --------------------------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize("era_headers", [{}, {"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}])
async def test_malformed_wrong_type_and_oversized_requests_get_json_rpc_errors(
    gateway_url: str, era_headers: dict[str, str]
) -> None:
    """Streamable HTTP, both eras: malformed JSON, a wrong content type and a body over 4 MiB are answered at
    once with JSON-RPC errors (400/400/413), and the server keeps serving."""
    headers = {**STREAMABLE_ACCEPT, **era_headers}
    async with serving(make_settings(base_url=gateway_url)) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            with anyio.fail_after(10):
                malformed = await http.post(
                    "/mcp", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
                )
                wrong_type = await http.post("/mcp", content=b"{}", headers={**headers, "Content-Type": "text/plain"})
                oversized = await http.post(
                    "/mcp",
                    content=b" " * (4 * 1024 * 1024 + 1),
                    headers={**headers, "Content-Type": "application/json"},
                )
        assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, -32700)
        assert (wrong_type.status_code, wrong_type.json()["error"]["message"]) == (400, "Invalid Content-Type header")
        assert oversized.status_code == 413
        assert oversized.json()["error"]["message"] == "Request body too large. The limit is 4 MiB per request."
        async with mcp_session(url, "streamable-http") as mcp:
            assert sorted(tool.name for tool in (await mcp.list_tools()).tools) == await served_tool_names()


async def test_an_oversized_tool_call_fails_with_a_message_naming_the_limit(gateway_url: str) -> None:
    """An MCP client sending a 5 MB argument gets an MCPError that names the 4 MiB limit; nothing hangs."""
    async with serving(make_settings(base_url=gateway_url)) as url, mcp_session(url, "streamable-http") as mcp:
        with anyio.fail_after(10), pytest.raises(MCPError) as refused:
            await mcp.call_tool("create_video", {"prompt": "x" * (5 * 1024 * 1024)})
        assert str(refused.value) == "Request body too large. The limit is 4 MiB per request."
        assert structured(await mcp.call_tool("create_video", {"prompt": "a cat"}))["status"] == "queued"


async def test_bad_posts_to_the_sse_message_endpoint_get_errors(gateway_url: str) -> None:
    """SSE: malformed JSON, a wrong content type, an oversized body and an unknown session get 4xx JSON-RPC
    errors; the open SSE connection survives them."""
    async with serving(make_settings(base_url=gateway_url), "sse") as url, httpx2.AsyncClient(base_url=url) as http:
        with anyio.fail_after(10):
            async with http.stream("GET", "/sse") as stream:
                lines = stream.aiter_lines()
                assert await anext(lines) == "event: endpoint"
                endpoint = (await anext(lines)).removeprefix("data: ")
                json_type = {"Content-Type": "application/json"}
                malformed = await http.post(endpoint, content=b"{not json", headers=json_type)
                wrong_type = await http.post(endpoint, content=b"{}", headers={"Content-Type": "text/plain"})
                oversized = await http.post(endpoint, content=b" " * (4 * 1024 * 1024 + 1), headers=json_type)
                unknown = await http.post("/messages/?session_id=" + "0" * 32, json=INITIALIZE)
                accepted = await http.post(endpoint, json=INITIALIZE)
    assert [r.status_code for r in (malformed, wrong_type, oversized, unknown)] == [400, 400, 413, 404]
    assert all(r.json()["error"]["code"] == -32600 for r in (malformed, wrong_type, oversized, unknown))
    assert accepted.status_code == 202


# --------------------------------------------------------------------------------------------- one client per process


async def test_a_hundred_concurrent_clients_share_one_gateway_connection_pool(
    gateway_url: str, fake: FakeGateway
) -> None:
    """100 concurrent MCP clients (half per era) each create a video and wait for it over Streamable HTTP:
    no call fails, and the gateway sees a bounded pool of connections, not one per call."""
    failures: list[str] = []
    completed: list[str] = []

    async def agent(number: int, url: str) -> None:
        mode = MODES[number % 2]
        try:
            async with mcp_session(url, "streamable-http", mode) as mcp:
                created = structured(await mcp.call_tool("create_video", {"prompt": f"clip {number}"}))
                done = structured(await mcp.call_tool("get_task", {"task_id": created["task_id"], "wait_seconds": 20}))
                completed.append(done["status"])
        except Exception as exc:  # every failure is collected and reported below
            failures.append(f"agent {number} ({mode}): {exc!r}")

    async with serving(make_settings(base_url=gateway_url)) as url:
        with anyio.fail_after(90):
            async with anyio.create_task_group() as group:
                for number in range(100):
                    group.start_soon(agent, number, url)
    assert failures == []
    assert completed == ["completed"] * 100
    gateway_calls = [r for r in fake.requests if r.path.startswith("/v1/")]
    assert sum(r.method == "POST" for r in gateway_calls) == 100
    assert len(gateway_calls) >= 200
    # A connection (client port) was open at least from its first request to its last. The gateway may close an
    # idle one (uvicorn's keep-alive is 5 s) and the pool open another, so the bound is on connections open at
    # the same time, not on ports seen over the whole test.
    spans: dict[object, list[float]] = {}
    for call in gateway_calls:
        span = spans.setdefault(call.client, [call.received_at, call.received_at])
        span[0], span[1] = min(span[0], call.received_at), max(span[1], call.received_at)
    events = [(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()]
    open_now = peak = 0
    for _, change in sorted(events, key=lambda event: (event[0], -event[1])):  # opens before closes
        open_now += change
        peak = max(peak, open_now)
    assert 1 < peak <= GATEWAY_CONNECTIONS, f"{peak} connections at once for {len(gateway_calls)} gateway calls"
    assert len(spans) < len(gateway_calls) / 2  # connections are reused, not opened per call


async def test_sse_connections_share_the_process_gateway_client(gateway_url: str, fake: FakeGateway) -> None:
    """The SSE transport enters the MCP lifespan once per connection; five open connections still use the one
    gateway client: their calls, one after another, all travel on a single kept-alive connection."""
    async with serving(make_settings(base_url=gateway_url), "sse") as url, AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(mcp_session(url, "sse", MODES[n % 2])) for n in range(5)]
        for number, mcp in enumerate(sessions):
            structured(await mcp.call_tool("create_video", {"prompt": f"clip {number}"}))
    creates = [r for r in fake.requests if r.method == "POST"]
    assert len(creates) == 5
    assert len({r.client for r in creates}) == 1


# --------------------------------------------------------------------------------------------- CLI and start-up


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "8000"], "--port applies to --transport sse or streamable-http"),
        (["--allowed-host", "mcp.example.com"], "--allowed-host applies to --transport sse or streamable-http"),
        (["--transport", "sse", "--stateless"], "--stateless applies to --transport streamable-http only"),
        (["--transport", "sse", "--path", "/x"], "--path applies to --transport streamable-http only"),
        (["--transport", "streamable-http", "--sse-path", "/x"], "--sse-path applies to --transport sse only"),
        (["--transport", "streamable-http", "--port", "99999"], "'99999' is not a TCP port (1-65535)"),
    ],
)
def test_options_the_transport_would_ignore_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """HTTP options without an HTTP transport, or for the other HTTP transport, stop with exit code 2."""
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_the_stdio_path_imports_only_what_start_up_needs() -> None:
    """Building the stdio server imports neither sora_mcp's HTTP transports and OAuth (nor PyJWT), nor the sandbox,
    nor the download code or inspect_video's PyAV (loaded on first use), nor the PostgreSQL driver (only with
    SORA_DATABASE_URL): every import is start-up time in the user's editor."""
    modules = ("sora_mcp.http", "sora_mcp.oauth", "jwt", "sora_mcp.sandbox", "sora_mcp.download")
    modules += ("sora_mcp.journal_postgres", "psycopg", "sora_mcp.inspect_video", "sora_mcp.media_check", "av")
    code = (
        "import sys, sora_mcp.__main__, sora_mcp.server, sora_mcp.config\n"
        "sora_mcp.server.build_server(sora_mcp.config.Settings())\n"
        f"print(sorted(m for m in {modules!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stderr


# --------------------------------------------------------------------------------------------- replicas and shutdown


class AlternatingBalancer(httpx2.AsyncBaseTransport):
    """A plain load balancer in front of replicas, with no stickiness: successive POSTs of one JSON-RPC method
    go to successive replicas (so two tool calls in a row never share one). It records who served each call."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = ports
        self._sent: Counter[str] = Counter()
        self._upstream = httpx2.AsyncHTTPTransport()
        self.tool_calls: list[tuple[str, int]] = []
        """(tool name, port of the replica that served it)."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self._ports[0]
        if request.method == "POST":
            message = json.loads(request.content)
            method = str(message.get("method"))
            port = self._ports[self._sent[method] % len(self._ports)]
            self._sent[method] += 1
            if method == "tools/call":
                self.tool_calls.append((message["params"]["name"], port))
        request.url = request.url.copy_with(port=port)
        return await self._upstream.handle_async_request(request)

    async def aclose(self) -> None:
        await self._upstream.aclose()


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait until `predicate()` holds (for state that another thread or process changes); callers bound it."""
    while True:
        if predicate():
            return
        await anyio.sleep(0.02)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.slow
async def test_stateless_replicas_serve_a_create_on_one_and_its_get_task_on_the_other(mode: str) -> None:
    """Two stateless replicas (`sora-mcp --stateless` and `uvicorn --factory sora_mcp.http:create_app`) behind
    a balancer that alternates requests: a client creates on one and waits for the task on the other."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=0.3)
    with serve_in_thread(fake.build_app()) as gateway:
        ports = [free_port(), free_port()]
        env = subprocess_env(gateway)
        cli = [sys.executable, "-m", "sora_mcp", "--transport", "streamable-http", "--stateless", "--port"]
        factory = [sys.executable, "-m", "uvicorn", "--factory", "sora_mcp.http:create_app", "--port"]
        with (
            server_process([*cli, str(ports[0])], env) as first,
            server_process([*factory, str(ports[1]), "--log-level", "warning"], {**env, "SORA_MCP_STATELESS": "1"}),
        ):
            await wait_until_healthy(f"http://127.0.0.1:{ports[0]}", first)
            await wait_until_healthy(f"http://127.0.0.1:{ports[1]}", first)
            balancer = AlternatingBalancer(ports)
            timeout = httpx2.Timeout(30, read=300)
            async with (
                httpx2.AsyncClient(transport=balancer, timeout=timeout) as http,
                Client(streamable_http_client(f"http://127.0.0.1:{ports[0]}/mcp", http_client=http), mode=mode) as mcp,
            ):
                created = structured(await mcp.call_tool("create_video", {"prompt": "a cat"}))
                with anyio.fail_after(20):
                    done = await mcp.call_tool("get_task", {"task_id": created["task_id"], "wait_seconds": 20})
    assert structured(done)["status"] == "completed"
    [(create, create_port), (get, get_port)] = balancer.tool_calls
    assert (create, get) == ("create_video", "get_task")
    assert {create_port, get_port} == set(ports)


@pytest.mark.parametrize(
    ("transport", "mode"), [("streamable-http", "auto"), ("streamable-http", "legacy"), ("sse", "auto")]
)
@pytest.mark.slow
async def test_sigterm_ends_waits_at_once_lets_a_create_finish_and_exits_0(transport: HttpTransport, mode: str) -> None:
    """SIGTERM during a get_task(wait_seconds=30) and a slow create: the wait returns the task's state at once,
    the create still answers its task id, the process exits 0 within seconds, no traceback, the port is free."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    with serve_in_thread(fake.build_app()) as gateway:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "sora_mcp", "--transport", transport, "--port", str(port)]
        with server_process(command, subprocess_env(gateway)) as process:
            await wait_until_healthy(url, process)
            results: dict[str, CallToolResult] = {}
            async with mcp_session(url, transport, mode) as mcp:
                task_id = structured(await mcp.call_tool("create_video", {"prompt": "a slow one"}))["task_id"]
                fake.hang("POST", "/v1/videos/generations", seconds=1.5)
                waiting = anyio.Event()

                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    waiting.set()

                async def wait() -> None:
                    arguments = {"task_id": task_id, "wait_seconds": 30}
                    results["wait"] = await mcp.call_tool("get_task", arguments, progress_callback=on_progress)

                async def create() -> None:
                    results["create"] = await mcp.call_tool("create_video", {"prompt": "in flight"})

                with anyio.fail_after(20):
                    async with anyio.create_task_group() as group:
                        group.start_soon(wait)
                        group.start_soon(create)
                        await waiting.wait()
                        await eventually(lambda: sum(r.method == "POST" for r in fake.requests) == 2)
                        signalled = anyio.current_time()
                        process.send_signal(signal.SIGTERM)
                        await eventually(lambda: "wait" in results)
                        wait_returned = anyio.current_time() - signalled
            returncode = await anyio.to_thread.run_sync(lambda: process.wait(timeout=20))
            stopped = anyio.current_time() - signalled
            stderr = process.communicate()[1]
    assert wait_returned < 3
    assert structured(results["wait"])["status"] == "queued"
    in_flight = structured(results["create"])
    assert in_flight["task_id"] in fake.tasks and in_flight["task_id"] != task_id
    assert returncode == 0, stderr
    assert stopped < 10
    assert "Traceback" not in stderr and " ERROR " not in stderr, stderr
    assert port_is_free(port)


async def test_an_abandoned_session_is_closed_after_the_idle_setting_and_the_cap_holds(gateway_url: str) -> None:
    """SORA_MCP_SESSION_IDLE_SECONDS closes a session nobody DELETEs (the SDK's 30 minutes let them pile up), and
    SORA_MCP_MAX_SESSIONS refuses sessions beyond the cap."""
    settings = make_settings(base_url=gateway_url, mcp_session_idle_seconds=0.5, mcp_max_sessions=2)
    headers = {**STREAMABLE_ACCEPT, "Content-Type": "application/json"}
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    async with serving(settings) as url, httpx2.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
        opened = [await http.post("/mcp", json=INITIALIZE) for _ in range(3)]
        assert [response.status_code for response in opened] == [200, 200, 503]
        session = opened[0].headers["mcp-session-id"]
        assert (await http.post("/mcp", json=listing, headers={"mcp-session-id": session})).status_code == 200
        statuses = []
        for pause in (1.0, 2.0, 4.0):  # each pause longer than the idle setting (a request restarts the clock)
            await anyio.sleep(pause)
            statuses.append((await http.post("/mcp", json=listing, headers={"mcp-session-id": session})).status_code)
            if statuses[-1] == 404:
                break
        assert statuses[-1] == 404, statuses
        after_expiry = await http.post("/mcp", json=INITIALIZE)
    assert after_expiry.status_code == 200  # the expired sessions freed their places under the cap


def test_a_busy_port_stops_the_command_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """The port is taken: exit 2 with a message naming --port, and no "starting" line before it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            main(["--transport", "streamable-http", "--port", str(port), "--sandbox"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "pass --port with a free one" in err
    assert "starting MCP" not in err
