"""uvicorn inside the current event loop, on a loopback port: the sandbox gateway, the tests and the benchmark use it.

The server configures no logging, writes no access log and installs no signal handlers, so it is safe inside a
stdio MCP server (stdout stays JSON-RPC only) and inside a test.
"""

import socket
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager, contextmanager

import anyio
from starlette.types import ASGIApp


@asynccontextmanager
async def serve_app(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, lifespan: bool = False
) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in the current event loop; yield its base URL.

    Safe inside a stdio MCP server: uvicorn configures no logging, writes no access log and
    installs no signal handlers. Port 0 picks a free port. ``lifespan`` runs the app's lifespan
    (the MCP HTTP app needs it). Shuts down on exit.
    """
    import uvicorn  # only sandbox mode and tests pay for importing the server

    class EmbeddedServer(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield  # the host application owns the signals

    # No websockets (nothing to import), and at most 2 s for open requests to finish on exit.
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on" if lifespan else "off",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = EmbeddedServer(config)
    with listen(host, port) as sock:
        bound_port = sock.getsockname()[1]
        url = f"http://[{host}]:{bound_port}" if sock.family == socket.AF_INET6 else f"http://{host}:{bound_port}"
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield url
            finally:
                server.should_exit = True


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket for uvicorn to serve on (IPv6 when ``host`` is an IPv6 address, brackets or not).

    uvicorn leaves pre-bound sockets without TCP_NODELAY (accepted ones inherit it from here); without it every
    response waits ~40 ms for a delayed ACK. Raises ``OSError`` when the address cannot be had (a busy port).
    """
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.create_server((address, port), family=family, backlog=2048)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
