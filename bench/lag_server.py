"""sora-mcp over Streamable HTTP exactly as ``sora-mcp --transport streamable-http ARGS...`` runs it, plus an
event-loop lag sampler, for the waiter benchmark: ``python bench/lag_server.py ARGS...``.

The sampler is a task of the server's own event loop that sleeps 10 ms in a loop and records by how much each
sleep overshot: whatever holds the loop (a request parsed, a result serialized, a journal answer handled) shows
up as lag, which every other request on the loop waits through too. Bench-only routes, served before the app:

- ``GET /bench/lag`` answers the overshoots recorded since the last ``?reset=1`` (seconds, p50/p99/max, count);
- ``GET /bench/profile?start=1`` starts a cProfile of the event-loop thread, ``?stop=1`` stops it and writes the
  statistics to the file ``BENCH_PROFILE`` names (``pstats`` format).

Nothing in sora_mcp is changed: ``sora_mcp.http.create_app``, which ``serve`` calls, is wrapped to add the
routes and start the sampler in the app's lifespan.
"""

import asyncio
import cProfile
import os
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import sora_mcp.http
from sora_mcp.__main__ import main

PERIOD = 0.010


class LagSampler:
    def __init__(self) -> None:
        self.overshoots: list[float] = []
        self.profile: cProfile.Profile | None = None

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(PERIOD)
            self.overshoots.append(max(0.0, time.perf_counter() - started - PERIOD))

    def summary(self) -> dict[str, float]:
        values = sorted(self.overshoots) or [0.0]
        return {
            "count": len(self.overshoots),
            "p50": statistics.median(values),
            "p99": values[min(len(values) - 1, int(0.99 * len(values)))],
            "max": values[-1],
        }

    async def lag(self, request: Request) -> Response:
        answer = self.summary()
        if request.query_params.get("reset"):
            self.overshoots = []
        return JSONResponse(answer)

    async def profile_route(self, request: Request) -> Response:
        if request.query_params.get("start"):
            self.profile = cProfile.Profile()
            self.profile.enable()
        elif request.query_params.get("stop") and self.profile is not None:
            self.profile.disable()
            self.profile.dump_stats(os.environ["BENCH_PROFILE"])
            self.profile = None
        return JSONResponse({"ok": True})


SAMPLER = LagSampler()
_create_app = sora_mcp.http.create_app


def create_app(*args: Any, **kwargs: Any) -> Any:
    app = _create_app(*args, **kwargs)
    app.router.routes[:0] = [
        Route("/bench/lag", SAMPLER.lag, methods=["GET"]),
        Route("/bench/profile", SAMPLER.profile_route, methods=["GET"]),
    ]
    lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def with_sampler(application: Any) -> AsyncIterator[Any]:
        async with lifespan(application) as state:
            sampler = asyncio.ensure_future(SAMPLER.run())
            try:
                yield state
            finally:
                sampler.cancel()

    app.router.lifespan_context = with_sampler
    return app


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for a thousand connections, as in production
    sora_mcp.http.create_app = create_app
    main(["--transport", "streamable-http", *sys.argv[1:]])
