"""Serve the sandbox gateway on a loopback port for the benchmarks: ``python bench/gateway.py PORT``.

Tasks never finish (a long render), so every ``get_task`` does the same work.
"""

import sys

import anyio

from sora_mcp.embedded import serve_app
from sora_mcp.sandbox import SandboxGateway


async def main(port: int) -> None:
    gateway = SandboxGateway(video_seconds=10**9)
    async with serve_app(gateway.app, port=port):
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]))
