"""The SDK floor of the waiter benchmark: a bare ``MCPServer`` over stateless Streamable HTTP whose ``get_task``
does the least a wait can do, with the same lag sampler as ``lag_server.py``: ``python bench/bare_waiter.py PORT``.

``get_task(task_id, wait_seconds=0)`` reads the task once and, with ``wait_seconds``, sleeps that long and reads
it again: no validation, journal, shared polls, progress or normalization, one ``httpx2.AsyncClient``. It also
serves ``/healthz`` and collects garbage as sora-mcp does (``server_collection``), so that what section 11
compares is the work per call: what is left of a 1,000-call burst's lag here is the SDK's and uvicorn's, not
sora-mcp's.
"""

import os
import resource
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import uvicorn
from lag import LagSampler
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sora_mcp.collector import server_collection

SAMPLER = LagSampler()


@asynccontextmanager
async def lifespan(_: MCPServer[httpx2.AsyncClient]) -> AsyncIterator[httpx2.AsyncClient]:
    limits = httpx2.Limits(max_connections=32, max_keepalive_connections=32)  # sora-mcp's gateway pool
    headers = {"Authorization": f"Bearer {os.environ['SORA_API_KEY']}"}
    # A minute to get a pooled connection and an answer, not httpx2's 5 s: under a 1,000-call burst a call waits
    # its turn for one of the 32 connections longer than that, and the floor should queue, not fail.
    timeout = httpx2.Timeout(60.0)
    async with httpx2.AsyncClient(
        base_url=os.environ["SORA_BASE_URL"], headers=headers, limits=limits, timeout=timeout
    ) as http:
        yield http


server: MCPServer[httpx2.AsyncClient] = MCPServer("bare-waiter", lifespan=lifespan, log_level="WARNING")


@server.tool()
async def get_task(task_id: str, ctx: Context[httpx2.AsyncClient, Any], wait_seconds: int = 0) -> dict[str, Any]:
    """Read one task; with ``wait_seconds``, read it again that many seconds later."""
    http = ctx.request_context.lifespan_context
    task: dict[str, Any] = (await http.get(f"/v1/videos/generations/{task_id}")).json()
    if wait_seconds:
        await anyio.sleep(wait_seconds)
        task = (await http.get(f"/v1/videos/generations/{task_id}")).json()
    return task


@server.custom_route("/healthz", methods=["GET"])
async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def app() -> Any:
    return SAMPLER.install(server.streamable_http_app(stateless_http=True), running=server_collection)


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvicorn.run(app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", backlog=2048)
