"""Spend control over the real transports: the user's yes through elicitation over stdio (a subprocess) and over
Streamable HTTP (uvicorn on loopback), in both protocol eras; and two processes racing for the last dollar of a
budget. The fake gateway's request log proves what was sent."""

import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from conftest import make_settings
from fake_gateway import FakeGateway, serve_in_thread
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from test_http import AlternatingBalancer, serving
from test_money import NOTHING, Asker, creates
from test_stdio import gateway_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ANSWERS = ["true", "decline", "cancel"]
PROMPT = "a paper boat in a rain gutter"


@asynccontextmanager
async def stdio_client(env: dict[str, str], mode: str, asker: Asker | None = None) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "sora_mcp"], env=env)
    callback: dict[str, Any] = {"elicitation_callback": asker} if asker is not None else {}
    async with Client(params, mode=mode, **callback) as client:
        yield client


@asynccontextmanager
async def http_client(url: str, mode: str, asker: Asker) -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(create_mcp_http_client())
        target = streamable_http_client(f"{url}/mcp", http_client=http)
        yield await stack.enter_async_context(Client(target, mode=mode, elicitation_callback=asker))


def check_outcome(answer: str, asker: Asker, result: Any, fake: FakeGateway) -> None:
    [question] = asker.questions
    assert "create_video" in question.message and PROMPT in question.message
    if answer == "true":
        assert result.is_error is False and result.structured_content["status"] == "queued"
        assert creates(fake) == 1
    else:
        assert result.is_error is True
        assert NOTHING in result.content[0].text and "The user declined" in result.content[0].text
        assert creates(fake) == 0


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("answer", ANSWERS)
async def test_elicitation_over_stdio(mode: str, answer: str) -> None:
    fake = FakeGateway()
    asker = Asker(answer)
    with serve_in_thread(fake.build_app()) as url:
        env = gateway_env(url) | {"SORA_CONFIRM_ABOVE_USD": "0"}
        with anyio.fail_after(60):
            async with stdio_client(env, mode, asker) as client:
                result = await client.call_tool("create_video", {"prompt": PROMPT})
    check_outcome(answer, asker, result, fake)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("answer", ANSWERS)
async def test_elicitation_over_streamable_http(mode: str, answer: str) -> None:
    fake = FakeGateway()
    asker = Asker(answer)
    with serve_in_thread(fake.build_app()) as gateway:
        settings = make_settings(base_url=gateway, confirm_above_usd=0)
        with anyio.fail_after(60):
            async with serving(settings) as url, http_client(url, mode, asker) as client:
                result = await client.call_tool("create_video", {"prompt": PROMPT})
    check_outcome(answer, asker, result, fake)


async def test_two_processes_racing_for_the_last_dollar_create_exactly_once() -> None:
    """Two stdio servers sharing one journal, a daily budget of $1.00 and two $1.00 creates sent at once: exactly
    one goes through; the other is refused by the budget and sends nothing."""
    fake = FakeGateway()
    results: list[Any] = []
    with serve_in_thread(fake.build_app()) as url:
        env = gateway_env(url) | {"SORA_BUDGET_DAILY_USD": "1"}
        with anyio.fail_after(60):
            async with stdio_client(env, "auto") as first, stdio_client(env, "legacy") as second:
                ready = anyio.Event()

                async def create(client: Client, prompt: str) -> None:
                    await ready.wait()
                    results.append(await client.call_tool("create_video", {"prompt": prompt}))

                async with anyio.create_task_group() as group:
                    group.start_soon(create, first, "a red boat")
                    group.start_soon(create, second, "a blue boat")
                    await anyio.sleep(0.1)
                    ready.set()
    assert sorted(result.is_error for result in results) == [False, True]
    [refused] = [result for result in results if result.is_error]
    assert "SORA_BUDGET_DAILY_USD=$1.00" in refused.content[0].text and NOTHING in refused.content[0].text
    assert creates(fake) == 1


@pytest.mark.parametrize("shared_key", [True, False])
async def test_stateless_replicas_resume_each_others_question_with_a_shared_key(shared_key: bool) -> None:
    """2026-07-28: the question goes out from one replica, the answer comes back to the other (a balancer with
    no stickiness). With SORA_MCP_STATE_KEY on both, the second resumes the call and creates once;
    without it, it cannot unseal the state, and nothing is sent."""
    fake = FakeGateway()
    asker = Asker("true")
    key = {"mcp_state_key": "k" * 40} if shared_key else {}
    with serve_in_thread(fake.build_app()) as gateway:
        settings = make_settings(base_url=gateway, confirm_above_usd=0, mcp_stateless=True, **key)
        with anyio.fail_after(60):
            async with serving(settings) as first, serving(settings) as second:
                ports = [int(url.rsplit(":", 1)[1]) for url in (first, second)]
                balancer = AlternatingBalancer(ports)
                async with (
                    httpx2.AsyncClient(transport=balancer, timeout=30) as http,
                    Client(streamable_http_client(f"{first}/mcp", http_client=http), elicitation_callback=asker) as mcp,
                ):
                    if shared_key:
                        result = await mcp.call_tool("create_video", {"prompt": PROMPT})
                    else:
                        with pytest.raises(MCPError, match="requestState"):
                            await mcp.call_tool("create_video", {"prompt": PROMPT})
    assert [port for _, port in balancer.tool_calls] == ports  # asked by one replica, answered to the other
    assert len(asker.questions) == 1
    if shared_key:
        assert result.is_error is False and creates(fake) == 1
    else:
        assert creates(fake) == 0


async def test_a_stateless_server_without_a_state_key_warns_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    for key, warned in (({}, True), ({"mcp_state_key": "k" * 40}, False)):
        caplog.clear()
        async with serving(make_settings(mcp_stateless=True, **key)):
            pass
        assert ("Stateless without SORA_MCP_STATE_KEY" in caplog.text) is warned
