"""Command line: ``sora-mcp [--transport stdio] [--sandbox] [--log-level LEVEL] [--version]``.

stdout belongs to the MCP protocol on stdio, so everything here writes to stderr. Heavy imports (the MCP SDK)
happen only after the arguments are parsed, so ``--version`` and usage errors answer at once.
"""

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence

from sora_mcp import __version__

TRANSPORTS = ("stdio",)
"""Transports ``--transport`` accepts; the HTTP transports join this tuple with their runner."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sora-mcp",
        description="MCP server for Sora-2 video generation. Serves MCP over stdio by default. "
        "Configuration comes from SORA_* environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--transport", choices=TRANSPORTS, default="stdio", help="how MCP clients connect (default: stdio)"
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
        default="WARNING",
        help="log level of the messages written to stderr (default: WARNING)",
    )
    return parser


def configure_logging(level: str) -> None:
    """Log to stderr only: stdout carries JSON-RPC on stdio."""
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    if level != "DEBUG":
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("httpcore2").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)

    from pydantic import ValidationError

    from sora_mcp.config import Settings, describe_settings_error

    try:
        settings = Settings(sandbox=True) if args.sandbox else Settings()
    except ValidationError as exc:
        parser.exit(2, f"sora-mcp: {describe_settings_error(exc)}\n")
    if settings.api_key is None and not settings.sandbox:
        logging.getLogger("sora_mcp").warning(
            "SORA_API_KEY is not set: tools will answer with an error until it is (or run with --sandbox)"
        )

    from sora_mcp.server import build_server

    server = build_server(settings)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(args.transport)


if __name__ == "__main__":
    main()
