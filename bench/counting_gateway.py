"""The sandbox gateway for the waiter benchmark, counting the task reads it answers:
``python bench/counting_gateway.py PORT``.

Video tasks stay ``in_progress`` for good, their progress rising as a 3-minute render's would (to 99 %), so every
poll of a waiting ``get_task`` sees a running task and, now and then, a new state to record. ``GET /bench/gets``
answers the number of task reads (``GET /v1/...``) served so far; it is not counted itself.
"""

import sys

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sora_mcp.embedded import serve_app
from sora_mcp.sandbox import SandboxGateway, SandboxTask, TaskStatus

RENDER_SECONDS = 180.0


class RunningGateway(SandboxGateway):
    """Tasks never finish: ``in_progress`` from the start, a percent every 1.8 s up to 99."""

    def status_of(self, task: SandboxTask) -> tuple[TaskStatus, int]:
        elapsed = self.clock() - task.created_at
        return "in_progress", min(99, int(100 * elapsed / RENDER_SECONDS))


class CountingApp:
    """ASGI wrapper: counts ``GET /v1/...`` requests and serves the count at ``/bench/gets``."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.gets = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"] == "/bench/gets":
                await JSONResponse({"gets": self.gets})(scope, receive, send)
                return
            if scope["method"] == "GET" and scope["path"].startswith("/v1/"):
                self.gets += 1
        await self._app(scope, receive, send)


async def main(port: int) -> None:
    gateway = RunningGateway(video_seconds=10**9)
    async with serve_app(CountingApp(gateway.app), port=port):
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]))
