"""A scripted agent: start sora-mcp over stdio, create a video, wait for it with progress, print the result.

    python examples/agent.py --sandbox "a corgi surfing a wave at sunset"     # simulated, free
    SORA_API_KEY=sk-... python examples/agent.py "a corgi surfing a wave"     # real, costs money

It talks to the server exactly as an MCP host does, through the official client (``mcp.Client``), and follows
the workflow the server's instructions describe: one create, then ``get_task(wait_seconds=50)`` until done.
"""

import argparse
import os
import sys
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

WAIT_SECONDS = 50
MAX_WAITS = 20


def server_parameters(sandbox: bool) -> StdioServerParameters:
    """Run this checkout's server with the current interpreter; pass the SORA_* settings through."""
    env = {key: value for key, value in os.environ.items() if key.startswith("SORA_")}
    args = ["-m", "sora_mcp"] + (["--sandbox"] if sandbox else [])
    return StdioServerParameters(command=sys.executable, args=args, env=env)


async def on_progress(progress: float, total: float | None, message: str | None) -> None:
    print(f"  progress {progress:5.1f}/{total or 100:.0f}  {message or ''}", flush=True)


async def run(prompt: str, *, sandbox: bool, duration: int | None) -> dict[str, Any]:
    async with Client(server_parameters(sandbox)) as client:
        arguments: dict[str, Any] = {"prompt": prompt}
        if duration is not None:
            arguments["duration"] = duration
        created = await client.call_tool("create_video", arguments)
        if created.is_error:
            raise SystemExit(f"create_video failed: {created.content[0].text}")  # type: ignore[union-attr]
        task = created.structured_content or {}
        print(f"created {task['task_id']} ({task['status']})", flush=True)
        for _ in range(MAX_WAITS):
            if task["status"] in ("completed", "failed"):
                break
            result = await client.call_tool(
                "get_task",
                {"task_id": task["task_id"], "wait_seconds": WAIT_SECONDS},
                progress_callback=on_progress,
            )
            if result.is_error:
                raise SystemExit(f"get_task failed: {result.content[0].text}")  # type: ignore[union-attr]
            task = result.structured_content or {}
        return task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?", default="A golden retriever running on grass, sunny day")
    parser.add_argument("--sandbox", action="store_true", help="use the built-in simulated gateway (no key, free)")
    parser.add_argument("--duration", type=int, choices=(10, 15, 25), default=None)
    args = parser.parse_args()
    if not args.sandbox and not os.environ.get("SORA_API_KEY"):
        parser.error("set SORA_API_KEY, or pass --sandbox to try it without a key")
    task = anyio.run(lambda: run(args.prompt, sandbox=args.sandbox, duration=args.duration))
    print(f"status: {task['status']}")
    if task.get("video_url"):
        print(f"video:  {task['video_url']}")
    if task.get("error"):
        print(f"error:  {task['error']['message']}")
    print(f"hint:   {task.get('hint', '')}")
    if task["status"] != "completed":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
