"""MCP over stdio, as ``sora-mcp`` runs it: the SDK's transport, with two gaps closed.

- A line that is not a JSON-RPC message (garbage, or JSON holding a lone surrogate, half of an emoji) is dropped
  by the SDK without an answer, and a client waiting on that request's id waits forever. Here it is answered
  with a JSON-RPC parse error (``-32700``), or for JSON that is no JSON-RPC message an invalid-request error
  (``-32600``), with the request's id when one can be read from the line. The answer
  goes through the SDK's own writer, so it never tears another message on stdout.
- SIGTERM or SIGINT (a client closing the server) ends waits at once (``SoraClient.stop_waiting``), lets tool
  calls under way finish for up to ``DRAIN_SECONDS`` (a create in flight delivers its task id), then exits. The
  SDK reads stdin in a worker thread that a cancellation cannot stop (the process would live on until the next
  line); here stdin is read by a daemon thread of our own, so the process can end whatever stdin does.
"""

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import mcp_types as types
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared._context_streams import ContextReceiveStream, ContextSendStream
from mcp.shared.message import SessionMessage

from sora_mcp.client import SoraClient
from sora_mcp.config import Settings
from sora_mcp.server.app import build_server, open_client
from sora_mcp.server.toolset import CheckedTool

logger = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0
"""On SIGTERM/SIGINT, how long tool calls under way (a create above all) may take to finish."""


def run(settings: Settings) -> None:
    """Serve ``build_server(settings)`` over stdio until stdin closes or a signal ends it."""
    anyio.run(serve, settings)


async def serve(settings: Settings) -> None:
    stdin = cast("anyio.AsyncFile[str]", StdinLines())
    async with open_client(settings) as sora:
        with anyio.CancelScope() as stop:  # around the transport too: its reader and writer end with it
            async with stdio_server(stdin=stdin) as (sdk_read, write), anyio.create_task_group() as group:
                server = build_server(settings, client=sora)
                group.start_soon(_drain_on_signal, sora, stop)
                await _run(server, AnsweringReadStream(sdk_read, write), write)
                stop.cancel()  # stdin closed: the session is over


class StdinLines:
    """The lines of stdin, read by a daemon thread (which never keeps the process alive), with backpressure."""

    def __init__(self) -> None:
        self._fd = sys.stdin.fileno()
        self._send, self._receive = anyio.create_memory_object_stream[str](16)
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._read, args=(token,), name="sora-mcp stdin", daemon=True).start()

    def _read(self, token: anyio.lowlevel.EventLoopToken) -> None:
        # os.read on the descriptor, not sys.stdin.buffer: a daemon thread blocked inside a buffered reader holds
        # its lock, and the interpreter aborts at exit ("could not acquire lock ... at interpreter shutdown").
        pending = b""
        try:
            while chunk := os.read(self._fd, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    anyio.from_thread.run(self._send.send, line.decode("utf-8", errors="replace") + "\n", token=token)
            if pending:
                anyio.from_thread.run(self._send.send, pending.decode("utf-8", errors="replace"), token=token)
        except (OSError, RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # stdin, the event loop or the reader is gone: the server is stopping
        try:
            anyio.from_thread.run_sync(self._send.close, token=token)
        except RuntimeError:
            return

    def __aiter__(self) -> AsyncIterator[str]:
        return self._receive.__aiter__()


async def _run(server: MCPServer[Any], read: "AnsweringReadStream", write: ContextSendStream[Any]) -> None:
    lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async runs on the same streams
    await lowlevel.run(read, write, lowlevel.create_initialization_options())


class AnsweringReadStream:
    """The SDK's stdio read stream, answering each line it could not read with a parse error instead of handing
    the exception on (which the SDK drops silently). No task or stream of its own: the check is one ``isinstance``
    per message on the way through. ``last_context`` is passed through, as the SDK's dispatcher reads it."""

    def __init__(
        self, inner: ContextReceiveStream[SessionMessage | Exception], write: ContextSendStream[SessionMessage]
    ) -> None:
        self._inner = inner
        self._write = write

    @property
    def last_context(self) -> Any:
        return self._inner.last_context

    async def receive(self) -> SessionMessage:
        while True:
            item = await self._inner.receive()
            if isinstance(item, SessionMessage):
                return item
            logger.warning("Unreadable line on stdin, answered with a parse error: %s", _first_line(item))
            await self._write.send(SessionMessage(_parse_error(item)))

    def __aiter__(self) -> "AnsweringReadStream":
        return self

    async def __anext__(self) -> SessionMessage:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> "AnsweringReadStream":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _parse_error(exc: Exception) -> types.JSONRPCError:
    """The answer to an unreadable line: ``-32700`` when it is not JSON (for the SDK's parser, which refuses lone
    surrogates), ``-32600`` when it is JSON but no JSON-RPC message; with the request's id when one is readable."""
    items = _validation_errors(exc)
    if not items or any(item.get("type") == "json_invalid" for item in items):
        data = _json_or_none(items[0].get("input") if items else None)
        code, message = types.PARSE_ERROR, "Parse error: the line is not a JSON-RPC message"
        if _has_lone_surrogate(data):
            message += " (it holds a lone surrogate: half of a UTF-16 pair, as in a cut emoji)"
    else:
        data = next((item["input"] for item in items if isinstance(item.get("input"), dict)), None)
        code = types.INVALID_REQUEST
        message = (
            'Invalid Request: the line is JSON but not a JSON-RPC message (a request needs "jsonrpc": "2.0", '
            'an "id" and a "method")'
        )
    request_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        request_id = None
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


def _json_or_none(line: Any) -> Any:
    """The unreadable line as Python data, when it is JSON at all (Python's parser takes lone surrogates)."""
    if not isinstance(line, str | bytes):
        return None
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= character <= "\udfff" for character in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _validation_errors(exc: Exception) -> list[dict[str, Any]]:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return []
    try:
        return list(errors())
    except Exception:  # pragma: no cover - an exception type we did not expect
        return []


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


async def _drain_on_signal(sora: SoraClient, stop: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("%s: ending waits, letting tool calls under way finish", signal.Signals(signum).name)
            sora.stop_waiting()
            with anyio.move_on_after(DRAIN_SECONDS):
                while CheckedTool.calls_in_flight:  # noqa: ASYNC110 - a counter polled during shutdown only
                    await anyio.sleep(0.05)
            await anyio.sleep(0.2)  # the last answers reach the writer
            stop.cancel()
            return
