"""MCP over HTTP: Streamable HTTP and SSE, safe to expose, one gateway client per process.

:func:`create_app` builds the ASGI app; called without arguments it is the factory for
``uvicorn --factory sora_mcp.http:create_app`` and reads everything from ``SORA_*`` variables. It serves:

- ``GET /healthz``: ``200 {"status": "ok", "version": ..., "transport": ...}``, without authentication;
- the MCP endpoint: ``/mcp`` (Streamable HTTP) or ``/sse`` + ``/messages/`` (SSE). Requests pass, in order, the
  bearer-token check (``SORA_MCP_AUTH_TOKEN``, constant-time; with ``SORA_MCP_OAUTH_ISSUER``, OAuth access tokens
  too, see :mod:`sora_mcp.oauth`) or, without either, the loopback-only check; then
  the SDK's DNS-rebinding protection, always configured explicitly (loopback plus ``SORA_MCP_ALLOWED_HOSTS``),
  and its 4 MiB body limit. Every refusal on the way is answered as a JSON-RPC error (:class:`JsonRpcErrors`).

The app's lifespan opens the one ``SoraClient`` (and the sandbox gateway) for the whole process: the SSE
transport enters the MCP server's lifespan once per connection, so a client opened there would be one per
connection. :func:`serve` runs the app for ``sora-mcp --transport ...``: it refuses unsafe exposure before
binding, bounds slow clients and open connections (:mod:`sora_mcp.connections`), and on SIGTERM/SIGINT stops
gracefully (see :class:`GracefulServer`) and returns normally.
"""

import hmac
import ipaddress
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from http import HTTPStatus
from typing import Literal

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.types import INVALID_REQUEST
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sora_mcp import __version__
from sora_mcp.client import SoraClient
from sora_mcp.collector import server_collection
from sora_mcp.config import LOOPBACK_NAMES, Settings, describe_settings_error, is_loopback
from sora_mcp.connections import BudgetedSocket, ConnectionLimits, QuietBudgetPauses, guarded_protocol
from sora_mcp.embedded import listen
from sora_mcp.oauth import JwtVerifier, OAuthBearerAuth, ResourceServer, bearer_credentials
from sora_mcp.server import build_server, open_client

logger = logging.getLogger(__name__)

HttpTransport = Literal["sse", "streamable-http"]
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MCP_PATH = "/mcp"
DEFAULT_SSE_PATH = "/sse"
DEFAULT_MESSAGE_PATH = "/messages/"
HEALTH_PATH = "/healthz"
MAX_REQUEST_BODY_BYTES = 4 * 1024 * 1024
"""Larger MCP request bodies are answered 413 before they are parsed (room for base64 reference images)."""
DRAIN_SECONDS = 20.0
"""On SIGTERM/SIGINT, how long gateway requests under way (a create above all) may take to finish."""
STREAMS_CLOSE_SECONDS = 5
"""After the drain, how long uvicorn waits for connections to close before cancelling what is left."""


class HttpConfigError(ValueError):
    """Unsafe or inconsistent HTTP settings; the message names the option or variable that fixes it."""


class ProcessClient:
    """The process's one ``SoraClient``: the app's lifespan opens it, every MCP session and connection uses it."""

    def __init__(self) -> None:
        self.client: SoraClient | None = None

    def __call__(self) -> SoraClient:
        if self.client is None:
            raise RuntimeError("the gateway client is not open: serve the app with its lifespan (uvicorn does)")
        return self.client


def create_app(
    settings: Settings | None = None,
    *,
    transport: HttpTransport = "streamable-http",
    mcp_path: str = DEFAULT_MCP_PATH,
    sse_path: str = DEFAULT_SSE_PATH,
    message_path: str = DEFAULT_MESSAGE_PATH,
) -> Starlette:
    """The ASGI app serving MCP over ``transport``; without ``settings`` they come from the environment.

    The app never checks the address it is bound to (a factory cannot see uvicorn's ``--host``): without
    ``SORA_MCP_AUTH_TOKEN`` or ``SORA_MCP_ALLOW_UNAUTHENTICATED``, MCP requests arriving on a non-loopback
    address are answered 403. :func:`check_exposure` is the start-up version of that rule.
    """
    settings = _checked_settings(settings, transport, (mcp_path, sse_path, message_path)).served_over_http()
    gateway = ProcessClient()
    server = build_server(settings, client=gateway)
    security = transport_security(settings)
    mcp_app: ASGIApp
    if transport == "streamable-http":
        mcp_app = server.streamable_http_app(
            streamable_http_path=mcp_path,
            stateless_http=settings.mcp_stateless,
            session_idle_timeout=settings.mcp_session_idle_seconds,
            max_sessions=settings.mcp_max_sessions,
            transport_security=security,
            max_request_body_size=MAX_REQUEST_BODY_BYTES,
        )
        endpoint = mcp_path
    else:
        mcp_app = server.sse_app(
            sse_path=sse_path,
            message_path=message_path,
            transport_security=security,
            max_request_body_size=MAX_REQUEST_BODY_BYTES,
        )
        endpoint = f"{sse_path} (messages to {message_path})"
        mcp_app = SseConnectionCheck(mcp_app, security, sse_path)
    resource_server = ResourceServer.from_settings(settings, mcp_path if transport == "streamable-http" else sse_path)
    verifier: JwtVerifier | None = None
    if resource_server is not None:
        verifier = JwtVerifier(resource_server)
        mcp_app = OAuthBearerAuth(mcp_app, resource_server, verifier, settings.mcp_auth_token)
    elif settings.mcp_auth_token is not None:
        mcp_app = BearerTokenAuth(mcp_app, settings.mcp_auth_token)
    elif not settings.mcp_allow_unauthenticated:
        mcp_app = LoopbackOnly(mcp_app)
    mcp_app = JsonRpcErrors(mcp_app)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            gateway.client = await stack.enter_async_context(open_client(settings))
            stack.callback(setattr, gateway, "client", None)
            if verifier is not None:
                await stack.enter_async_context(verifier)  # its one HTTP client, for the issuer's keys
            if transport == "streamable-http":
                # A mounted app's own lifespan never runs: the host runs the session manager (and so the MCP
                # server's lifespan, once for the process).
                await stack.enter_async_context(server.session_manager.run())
            stack.enter_context(server_collection())  # see sora_mcp.collector: short collector pauses under load
            mode = _mode(settings)
            logger.info("sora-mcp %s starting MCP over %s at %s (%s)", __version__, transport, endpoint, mode)
            if settings.mcp_stateless and settings.mcp_state_key is None:
                logger.warning(
                    "Stateless without SORA_MCP_STATE_KEY: if several replicas serve behind a balancer, a "
                    "2026-07-28 client's answer to a question (the user's yes to a cost) that reaches another "
                    "replica is refused. Give every replica the same SORA_MCP_STATE_KEY (32+ random characters)."
                )
            yield

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__, "transport": transport})

    routes: list[Route | Mount] = [Route(HEALTH_PATH, health, methods=["GET"])]
    if resource_server is not None:  # the metadata; the authorization server's own paths are the issuer's
        routes.extend([*resource_server.metadata_routes(), *no_oauth_routes(resource_server.not_here)])
    elif settings.mcp_auth_token is not None:
        routes.extend(no_oauth_routes())
    app = Starlette(routes=[*routes, Mount("/", app=mcp_app)], lifespan=lifespan)
    app.state.gateway = gateway
    return app


def _checked_settings(settings: Settings | None, transport: HttpTransport, paths: tuple[str, ...]) -> Settings:
    """``settings`` (read from the environment when None), refused with ``HttpConfigError`` where they do not fit
    ``transport`` or an endpoint path is not absolute."""
    if settings is None:
        try:
            settings = Settings()
        except ValidationError as exc:
            raise HttpConfigError(describe_settings_error(exc)) from None
    if settings.mcp_stateless and transport != "streamable-http":
        raise HttpConfigError(
            "--stateless (SORA_MCP_STATELESS) applies to --transport streamable-http only: SSE keeps a session "
            "per connection"
        )
    for path in paths:
        if not path.startswith("/"):
            raise HttpConfigError(f"an endpoint path must start with '/', got {path!r}")
    return settings


OAUTH_DISCOVERY_PATHS = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
)
OAUTH_DEFAULT_ENDPOINTS = ("/register", "/authorize", "/token")
"""Where MCP clients look for OAuth (RFC 9728 and RFC 8414 metadata, also path-suffixed; the 2025-03-26 default
endpoints) after a 401."""
NO_OAUTH = (
    "Not found: this server takes a static bearer token, not OAuth. Configure the client with the header "
    "Authorization: Bearer <token> (the server's SORA_MCP_AUTH_TOKEN)."
)


def no_oauth_routes(message: str = NO_OAUTH) -> list[Route]:
    """With only the static token, OAuth discovery answers 404, not 401: a client that finds no metadata does not
    start an OAuth flow that cannot end (Claude Code reported "Dynamic Client Registration rejected (HTTP 401)").
    With OAuth on, these paths answer 404 too, except the protected-resource metadata (served first): ``message``
    then says where the authorization server is."""

    async def not_offered(_: Request) -> Response:
        return JSONResponse({"error": "not_found", "error_description": message}, status_code=404)

    methods = ["GET", "HEAD", "POST", "OPTIONS"]
    routes = [Route(path, not_offered, methods=methods) for path in (*OAUTH_DISCOVERY_PATHS, *OAUTH_DEFAULT_ENDPOINTS)]
    routes += [Route(f"{path}/{{rest:path}}", not_offered, methods=methods) for path in OAUTH_DISCOVERY_PATHS]
    return routes


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection, always on: ``Host`` must be loopback or an allowed host, ``Origin`` (sent by
    browsers) a loopback or allowed origin. Without this the SDK turns protection off on non-loopback binds."""
    hosts: list[str] = []
    loopback = [f"[{name}]" if ":" in name else name for name in LOOPBACK_NAMES]  # as in a Host header
    for host in (*loopback, *settings.mcp_allowed_hosts):
        hosts.extend([host] if _has_port(host) else [host, f"{host}:*"])
    origins = [f"http://{host}{port}" for host in loopback for port in ("", ":*")]
    origins.extend(settings.mcp_allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse to serve on a non-loopback ``host`` without allowed hosts, or without a token unless that is
    explicitly allowed. The message names the option or variable that fixes it."""
    if is_loopback(host):
        return
    if not settings.mcp_allowed_hosts:
        raise HttpConfigError(
            f"--host {host} is not a loopback address, so clients will reach this server under other host names, "
            "which DNS-rebinding protection rejects until they are listed. Add --allowed-host NAME for each name "
            "clients use (repeatable, e.g. --allowed-host mcp.example.com), or set "
            "SORA_MCP_ALLOWED_HOSTS=mcp.example.com,..."
        )
    authenticated = settings.mcp_auth_token is not None or settings.mcp_oauth_issuer is not None
    if not authenticated and not settings.mcp_allow_unauthenticated:
        raise HttpConfigError(
            f"--host {host} is not a loopback address and SORA_MCP_AUTH_TOKEN is not set: anyone who reaches the "
            "port could spend the gateway account. Set SORA_MCP_AUTH_TOKEN to a long random secret (clients then "
            "send Authorization: Bearer <token>), or SORA_MCP_OAUTH_ISSUER and SORA_MCP_PUBLIC_URL for OAuth, or "
            "pass --allow-unauthenticated (or set SORA_MCP_ALLOW_UNAUTHENTICATED=1) if something in front of this "
            "server already authenticates."
        )


class BearerTokenAuth:
    """ASGI middleware: every request needs ``Authorization: Bearer <token>``, compared in constant time.

    Anything else is answered ``401`` with ``WWW-Authenticate: Bearer``. The token is never logged.
    """

    def __init__(self, app: ASGIApp, token: SecretStr) -> None:
        self._app = app
        self._token = token.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        credentials = bearer_credentials(scope)
        # compare_digest takes as long for any wrong token of a given length: no timing hint of the right one.
        if credentials is not None and hmac.compare_digest(credentials, self._token):
            await self._app(scope, receive, send)
            return
        problem = "no bearer token" if credentials is None else "a wrong bearer token"
        logger.warning("Refused an MCP request from %s: %s", _peer(scope), problem)
        challenge = 'Bearer realm="sora-mcp"' + ("" if credentials is None else ', error="invalid_token"')
        message = (
            f"Unauthorized ({problem}): send the header Authorization: Bearer <token>, with the token set in this "
            "server's SORA_MCP_AUTH_TOKEN."
        )
        await PlainTextResponse(message, 401, {"WWW-Authenticate": challenge})(scope, receive, send)


class LoopbackOnly:
    """ASGI middleware for serving without a token: requests must arrive on a loopback address.

    ``sora-mcp`` refuses such a bind at start-up (:func:`check_exposure`); this covers an app factory run
    under ``uvicorn --host 0.0.0.0``, whose address the factory cannot see.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        local_host = server[0] if scope["type"] == "http" and server else None
        if local_host is None or not _is_ip(local_host) or is_loopback(local_host):
            await self._app(scope, receive, send)
            return
        message = (
            f"Forbidden: this server is reachable on {local_host} without SORA_MCP_AUTH_TOKEN. Set "
            "SORA_MCP_AUTH_TOKEN, or SORA_MCP_ALLOW_UNAUTHENTICATED=1 if something in front of it authenticates."
        )
        logger.warning("Refused an MCP request from %s: no SORA_MCP_AUTH_TOKEN on a non-loopback address", _peer(scope))
        await PlainTextResponse(message, 403)(scope, receive, send)


class SseConnectionCheck:
    """ASGI middleware: DNS-rebinding checks for new SSE connections, done with the SDK's own validator.

    The SDK's SSE handler refuses a bad ``Host``/``Origin`` too, but then raises, which logs a traceback per
    refused connection; refusing here first keeps the log to one warning line.
    """

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings, sse_path: str) -> None:
        self._app = app
        self._check = TransportSecurityMiddleware(security)
        self._sse_path = sse_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self._sse_path:
            refusal = await self._check.validate_request(Request(scope, receive))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self._app(scope, receive, send)


ERROR_HINTS = {
    403: "Browsers may call only from loopback origins and those in --allowed-origin / SORA_MCP_ALLOWED_ORIGINS.",
    413: f"The limit is {MAX_REQUEST_BODY_BYTES // (1024 * 1024)} MiB per request.",
    421: "This server answers to loopback names and to the hosts in --allowed-host / SORA_MCP_ALLOWED_HOSTS.",
}
"""What to do about a refusal the SDK words without a hint, by HTTP status."""


class JsonRpcErrors:
    """ASGI middleware: the MCP endpoint's plain-text refusals (wrong content type, body too large, foreign
    ``Host``, missing token...) become JSON-RPC error objects, with the same status and headers.

    MCP clients show the message of a JSON-RPC error body; for a plain-text one they report only "Server
    returned an error response". JSON and event-stream answers pass through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        refusal: Message | None = None
        body = bytearray()

        async def send_as_json_rpc(message: Message) -> None:
            nonlocal refusal
            if message["type"] == "http.response.start" and message["status"] >= 400:
                content_type = Headers(raw=message["headers"]).get("content-type", "")
                if not content_type.startswith(("application/json", "text/event-stream")):
                    refusal = message
                    return
            if refusal is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                await _json_rpc_error(refusal, bytes(body))(scope, receive, send)

        await self._app(scope, receive, send_as_json_rpc)


def _json_rpc_error(refusal: Message, body: bytes) -> Response:
    status: int = refusal["status"]
    text = body.decode("utf-8", "replace").strip() or HTTPStatus(status).phrase
    if hint := ERROR_HINTS.get(status):
        text = f"{text}. {hint}"
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in refusal["headers"]
        if name.lower() not in (b"content-type", b"content-length")
    }
    error = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": text}}
    return JSONResponse(error, status_code=status, headers=headers)


class GracefulServer(uvicorn.Server):
    """uvicorn with a shutdown that loses no answer: on SIGTERM/SIGINT it stops accepting connections, ends
    every ``get_task`` wait at once (each returns the task's current state), lets gateway requests under way
    (a create above all, whose task id must reach the agent) finish for up to ``DRAIN_SECONDS``, then closes the
    remaining event streams and the connections. A second SIGINT skips the drain."""

    def __init__(self, config: uvicorn.Config, gateway: ProcessClient) -> None:
        super().__init__(config)
        self._gateway = gateway

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for listener in self.servers:
            for sock in listener.sockets:
                host, port = sock.getsockname()[:2]
                logger.info("Listening on http://%s:%d", f"[{host}]" if ":" in host else host, port)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logger.info("Stopping: no new connections; waits end now, gateway requests under way may finish")
        for listener in self.servers:
            listener.close()
        client = self._gateway.client
        if client is not None:
            client.stop_waiting()
            with anyio.move_on_after(DRAIN_SECONDS):
                # Polls: force_exit (a second SIGINT) is a plain attribute set by a signal handler.
                while client.requests_in_flight and not self.force_exit:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            await anyio.sleep(0.2)  # the last answers reach their response streams
        from sse_starlette.sse import AppStatus  # the SDK's SSE responses end when this is set

        AppStatus.should_exit = True
        await super().shutdown(sockets)


def serve(
    settings: Settings,
    *,
    transport: HttpTransport,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    mcp_path: str = DEFAULT_MCP_PATH,
    sse_path: str = DEFAULT_SSE_PATH,
    message_path: str = DEFAULT_MESSAGE_PATH,
    access_log: bool = False,
) -> None:
    """Serve MCP over HTTP until SIGTERM/SIGINT, then stop gracefully and return.

    Raises :class:`HttpConfigError` before binding anything when :func:`check_exposure` refuses ``host``.
    """
    check_exposure(settings, host)
    limits = connection_limits(settings)
    # Bind before anything starts: a busy port is an error, not a log line after "starting".
    listener = BudgetedSocket.wrap(_listen(host, port), limits.descriptor_budget)
    app = create_app(settings, transport=transport, mcp_path=mcp_path, sse_path=sse_path, message_path=message_path)
    from sse_starlette.sse import AppStatus

    # sse-starlette would end every event stream the moment a signal arrives, answers in flight included;
    # GracefulServer ends them itself, after the drain.
    AppStatus.enable_automatic_graceful_drain = False
    config = uvicorn.Config(
        app,
        host=host.strip("[]"),
        port=port,
        log_config=None,
        access_log=access_log,
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=STREAMS_CLOSE_SECONDS,
        http=guarded_protocol(limits),
        backlog=limits.accept_batch,
    )
    logging.getLogger("asyncio").addFilter(QuietBudgetPauses())
    with listener, _signals_end_cleanly():
        GracefulServer(config, app.state.gateway).run(sockets=[listener])


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The slow-client and connection limits :func:`serve` gives uvicorn (see :mod:`sora_mcp.connections`)."""
    return ConnectionLimits.for_process(
        settings.mcp_header_timeout_seconds, settings.mcp_body_timeout_seconds, settings.mcp_max_connections
    )


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; raises ``HttpConfigError`` naming the fix when it cannot be had."""
    try:
        return listen(host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise HttpConfigError(
            f"cannot listen on {host}:{port} ({reason}): another program, or another sora-mcp, may use the port; "
            "pass --port with a free one, or stop the other"
        ) from None


@contextmanager
def _signals_end_cleanly() -> Iterator[None]:
    """uvicorn re-raises the signal that stopped it once its shutdown is done, which would end the process
    with that signal's status; the graceful stop is all a signal should do here, so the process exits 0."""
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _stopped_already) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped_already(signum: int, frame: object) -> None:
    """Signal handler outside uvicorn's serving window: the server has stopped or is stopping."""


def _has_port(host: str) -> bool:
    return ":" in host.rpartition("]")[2]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "an unknown client"


def _mode(settings: Settings) -> str:
    auth = "bearer token required" if settings.mcp_auth_token else "no authentication"
    if settings.mcp_oauth_issuer is not None:
        also = " or the bearer token" if settings.mcp_auth_token else ""
        auth = f"OAuth access tokens from {settings.mcp_oauth_issuer}{also}"
    parts = [
        auth,
        "stateless" if settings.mcp_stateless else "sessions",
        f"allowed hosts: {', '.join(('loopback', *settings.mcp_allowed_hosts))}",
    ]
    if settings.sandbox:
        parts.append("SANDBOX gateway")
    return "; ".join(parts)
