"""The event-loop lag sampler of the waiter benchmark and its bench-only routes, shared by ``lag_server.py``
(sora-mcp) and ``bare_waiter.py`` (the SDK floor).

The sampler is a task of the server's own event loop that sleeps 10 ms in a loop and records by how much each
sleep overshot: whatever holds the loop (a request parsed, a result serialized, a journal answer handled) shows
up as lag, which every other request on the loop waits through too.
"""

import asyncio
import cProfile
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PERIOD = 0.010


class LagSampler:
    """:meth:`install` it in a Starlette app: its routes before the app's own, :meth:`run` a task of the loop."""

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

    def routes(self) -> list[Route]:
        """``GET /bench/lag`` (the overshoots since the last ``?reset=1``: seconds, p50/p99/max, count) and
        ``GET /bench/profile`` (``?start=1`` a cProfile of the loop's thread, ``?stop=1`` written to the file
        ``BENCH_PROFILE`` names, ``pstats`` format)."""
        return [
            Route("/bench/lag", self.lag, methods=["GET"]),
            Route("/bench/profile", self.profile_route, methods=["GET"]),
        ]

    def install(self, app: Any, running: Callable[[], AbstractContextManager[Any]] = nullcontext) -> Any:
        """``app`` (a Starlette app) with the bench routes first and, once its own lifespan has started, the
        sampler running (and the context ``running()`` entered) until the app stops."""
        app.router.routes[:0] = self.routes()
        lifespan = app.router.lifespan_context

        @asynccontextmanager
        async def with_sampler(instance: Any) -> AsyncIterator[Any]:
            async with lifespan(instance) as state:
                with running():
                    sampler = asyncio.ensure_future(self.run())
                    try:
                        yield state
                    finally:
                        sampler.cancel()

        app.router.lifespan_context = with_sampler
        return app
