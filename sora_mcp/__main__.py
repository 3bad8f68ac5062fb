"""Command line: ``sora-mcp [--transport stdio|sse|streamable-http] [HTTP options] [--sandbox] [--log-level LEVEL]
[doctor]``.

With no command it serves MCP; ``sora-mcp doctor`` checks the set-up instead (``sora_mcp/doctor.py``). stdout
belongs to the MCP protocol on stdio, so everything here writes to stderr. Heavy imports (the MCP SDK, and for the
HTTP transports uvicorn and Starlette) happen only after the arguments are parsed, so ``--version`` and usage
errors answer at once and the stdio path never imports an HTTP server.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sora_mcp import __version__

if TYPE_CHECKING:
    from sora_mcp.config import Settings

TRANSPORTS = ("stdio", "sse", "streamable-http")
"""Transports ``--transport`` accepts; the HTTP ones are served by ``sora_mcp.http``."""
HTTP_ONLY_OPTIONS = {
    "host": "--host",
    "port": "--port",
    "path": "--path",
    "sse_path": "--sse-path",
    "message_path": "--message-path",
    "stateless": "--stateless",
    "allowed_hosts": "--allowed-host",
    "allowed_origins": "--allowed-origin",
    "allow_unauthenticated": "--allow-unauthenticated",
}
"""Options that only the HTTP transports take (argparse destination -> option)."""
ONLY_FOR = {"path": "streamable-http", "stateless": "streamable-http", "sse_path": "sse", "message_path": "sse"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sora-mcp",
        usage="%(prog)s [options] [doctor]",
        description="MCP server for Sora-2 video generation. Serves MCP over stdio by default. "
        "Configuration comes from SORA_* environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--transport", choices=TRANSPORTS, default="stdio", help="how MCP clients connect (default: stdio)"
    )
    http = parser.add_argument_group(
        "HTTP transports (sse, streamable-http)",
        "See the README, 'Running over HTTP'. Each has an SORA_MCP_* variable.",
    )
    http.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    http.add_argument("--port", type=_port, help="TCP port to listen on (default: 8000)")
    http.add_argument("--path", metavar="PATH", help="Streamable HTTP endpoint (default: /mcp)")
    http.add_argument("--sse-path", metavar="PATH", help="SSE stream endpoint (default: /sse)")
    http.add_argument("--message-path", metavar="PATH", help="SSE message endpoint (default: /messages/)")
    http.add_argument(
        "--stateless",
        action="store_true",
        default=None,
        help="Streamable HTTP without sessions, so replicas behind a plain load balancer share the clients "
        "(or SORA_MCP_STATELESS=1)",
    )
    http.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="NAME",
        help="a Host name clients use besides loopback, e.g. mcp.example.com; repeatable; required with a "
        "non-loopback --host (or SORA_MCP_ALLOWED_HOSTS=a,b)",
    )
    http.add_argument(
        "--allowed-origin",
        dest="allowed_origins",
        action="append",
        metavar="ORIGIN",
        help="a browser Origin allowed besides loopback, e.g. https://app.example.com; repeatable "
        "(or SORA_MCP_ALLOWED_ORIGINS=a,b)",
    )
    http.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=None,
        help="serve on a non-loopback --host without SORA_MCP_AUTH_TOKEN (only behind something that "
        "authenticates; or SORA_MCP_ALLOW_UNAUTHENTICATED=1)",
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        default=None,
        help="serve against the built-in simulated gateway: no key, no network, no cost (or SORA_SANDBOX=1)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="log level of the messages written to stderr (default: WARNING on stdio, INFO over HTTP)",
    )
    commands = parser.add_subparsers(dest="command", title="commands (optional)", metavar="COMMAND")
    commands.add_parser(
        "doctor",
        help="check the configuration, the gateway and the key, then exit (non-zero on problems)",
        description="Check the SORA_* configuration, reach the gateway with the key (a free probe), and print "
        "one OK/WARN/FAIL line per check. Exits 1 when a check failed. The key is never printed.",
    )
    return parser


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1-65535)")
    return port


def check_transport_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject options the chosen transport would silently ignore (like --port without an HTTP transport)."""
    for dest, option in HTTP_ONLY_OPTIONS.items():
        if getattr(args, dest) is None:
            continue
        if args.transport == "stdio":
            parser.error(f"{option} applies to --transport sse or streamable-http")
        only = ONLY_FOR.get(dest)
        if only is not None and args.transport != only:
            parser.error(f"{option} applies to --transport {only} only")


def configure_logging(level: str) -> None:
    """Log to stderr only: stdout carries JSON-RPC on stdio."""
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    if level != "DEBUG":
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("httpcore2").setLevel(logging.WARNING)
        # Shared by every uvicorn server in the process (the sandbox's too); sora_mcp.http logs the address.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_transport_options(parser, args)
    configure_logging(args.log_level or ("WARNING" if args.transport == "stdio" else "INFO"))
    if args.command == "doctor":
        from sora_mcp.doctor import run

        sys.exit(run(sandbox=bool(args.sandbox)))

    from pydantic import ValidationError

    from sora_mcp.config import Settings, describe_settings_error

    overrides: dict[str, Any] = {
        "sandbox": args.sandbox,
        "mcp_stateless": args.stateless,
        "mcp_allowed_hosts": args.allowed_hosts,
        "mcp_allowed_origins": args.allowed_origins,
        "mcp_allow_unauthenticated": args.allow_unauthenticated,
    }
    try:
        settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as exc:
        parser.exit(2, f"sora-mcp: {describe_settings_error(exc)}\n")
    if settings.api_key is None and not settings.sandbox:
        logging.getLogger("sora_mcp").warning(
            "SORA_API_KEY is not set: tools will answer with an error until it is (or run with --sandbox)"
        )

    if args.transport != "stdio":
        serve_http(parser, args, settings)
        return

    from sora_mcp import stdio

    stdio.run(settings)


def serve_http(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: "Settings") -> None:
    """Serve MCP over HTTP until SIGTERM/SIGINT; unsafe or inconsistent options exit 2 naming the fix."""
    from sora_mcp.http import HttpConfigError, serve

    options = {
        "host": args.host,
        "port": args.port,
        "mcp_path": args.path,
        "sse_path": args.sse_path,
        "message_path": args.message_path,
    }
    try:
        serve(
            settings,
            transport=args.transport,
            access_log=args.log_level == "DEBUG",
            **{name: value for name, value in options.items() if value is not None},
        )
    except HttpConfigError as exc:
        parser.exit(2, f"sora-mcp: {exc}\n")


if __name__ == "__main__":
    main()
