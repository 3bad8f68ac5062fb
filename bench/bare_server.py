"""The SDK floor: a bare ``MCPServer`` whose one tool does a single GET of a task and returns the JSON.

    python bench/bare_server.py stdio
    python bench/bare_server.py http PORT

It reads ``SORA_BASE_URL`` like sora-mcp does and shares one ``httpx2.AsyncClient`` through a lifespan, so the
comparison isolates what sora-mcp adds: settings, validation, retries, normalization, structured results.
"""

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.server import MCPServer
from mcp.server.mcpserver import Context


@asynccontextmanager
async def lifespan(_: MCPServer[httpx2.AsyncClient]) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=os.environ.get("SORA_BASE_URL", "http://127.0.0.1:9")) as http:
        yield http


# WARNING like sora-mcp's default, so both are timed without a log line per request.
server: MCPServer[httpx2.AsyncClient] = MCPServer("bare", lifespan=lifespan, log_level="WARNING")


@server.tool()
async def get_task(task_id: str, ctx: Context[httpx2.AsyncClient, Any]) -> dict[str, Any]:
    """Read one task."""
    response = await ctx.request_context.lifespan_context.get(f"/v1/videos/generations/{task_id}")
    result: dict[str, Any] = response.json()
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", port=int(sys.argv[2]))
    else:
        server.run()
