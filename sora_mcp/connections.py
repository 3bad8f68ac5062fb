"""Connection limits for the HTTP transports: slow or idle clients cannot hold the server.

uvicorn bounds the idle time between requests (keep-alive) but not the time a client takes to send a request:
a client trickling its headers or body one byte a second holds its connection, and a file descriptor, for as
long as it likes, token or not. With :class:`ConnectionLimits` applied (:func:`guarded_protocol` for uvicorn's
h11 protocol, :class:`BudgetedSocket` for the listening socket):

- a **header deadline**: a connection must deliver a request's complete headers within ``header_seconds`` of
  opening (or of its previous response); else it gets ``408`` and is closed;
- a **body deadline**: the whole body must arrive within ``body_seconds`` of the headers; else it is closed;
- a **connection cap**: beyond ``max_connections`` open at once, a new connection takes the place of the oldest
  one that is *waiting* (no request in progress: a slow client, or an idle keep-alive), so slow clients cannot
  starve a client that sends its request at once; only when none waits is the new one closed;
- a **descriptor budget**: the listening socket stops accepting (for asyncio's one-second pause) while the
  process has ``descriptor_budget`` files open, so the gateway client and the journal always have descriptors
  left, whatever arrives. asyncio accepts a batch of up to ``accept_batch`` connections before any of them
  reaches the cap check, and closing an evicted one takes an event-loop turn, so the cap sits six batches below
  the budget.

A request in progress (an MCP call, an SSE event stream) is never cut by these rules.
"""

import asyncio
import errno
import logging
import os
import resource
import socket
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 48
"""File descriptors never given to client connections: the gateway's pool (32), the journal, logs and pipes."""
MAX_DEFAULT_CONNECTIONS = 1000
"""The default connection cap when the file-descriptor limit allows more."""
REQUEST_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
    b"Content-Length: 55\r\n\r\nRequest Timeout: send the whole request without pausing"
)
DESCRIPTOR_DIRS = ("/proc/self/fd", "/dev/fd")


@dataclass(frozen=True)
class ConnectionLimits:
    """What the HTTP server enforces (see the module docstring); :meth:`for_process` sizes it."""

    header_seconds: float
    body_seconds: float
    max_connections: int
    descriptor_budget: int
    accept_batch: int

    @classmethod
    def for_process(
        cls, header_seconds: float, body_seconds: float, max_connections: int | None = None
    ) -> "ConnectionLimits":
        """Limits sized by this process's soft file-descriptor limit; ``max_connections`` overrides the cap."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        descriptors = 1 << 20 if soft == resource.RLIM_INFINITY else soft
        budget = max(16, descriptors - RESERVED_DESCRIPTORS)
        batch = min(2048, max(8, descriptors // 32))
        default_cap = max(8, min(MAX_DEFAULT_CONNECTIONS, budget - 6 * batch))
        return cls(header_seconds, body_seconds, max_connections or default_cap, budget, batch)


UNCOUNTED_SHARE = 8
"""After a count of open descriptors, ``room // UNCOUNTED_SHARE`` accepts go ahead without counting again."""


class DescriptorBudgetReached(OSError):
    """Raised by :meth:`BudgetedSocket.accept`; asyncio treats it as EMFILE and pauses accepting for a second."""

    def __init__(self, budget: int) -> None:
        super().__init__(errno.EMFILE, f"{budget} file descriptors open: not accepting for now")


class BudgetedSocket(socket.socket):
    """A listening socket that refuses to accept while the process has ``budget`` descriptors open."""

    budget: int = 0
    _warned_at: float = 0.0
    _unchecked: int = 0
    """Accepts left before the descriptors are counted again (listing them costs O(open files)), for a second."""
    _counted_at: float = 0.0

    @classmethod
    def wrap(cls, sock: socket.socket, budget: int) -> "BudgetedSocket":
        wrapped = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        wrapped.budget = budget
        return wrapped

    def accept(self) -> tuple[socket.socket, Any]:
        if self._unchecked > 0 and time.monotonic() - self._counted_at < 1.0:
            self._unchecked -= 1
            return super().accept()
        open_now = open_descriptors()
        if open_now >= self.budget:
            if time.monotonic() - self._warned_at > 1:  # asyncio retries the rest of its batch at once
                self._warned_at = time.monotonic()
                logger.warning("Not accepting connections for a second: %d file descriptors open", self.budget)
            raise DescriptorBudgetReached(self.budget)
        # Far from the budget, the next accepts need no count: an eighth of the room left, leaving the rest for
        # what else opens meanwhile (gateway connections, files); near it, every accept counts.
        self._unchecked = (self.budget - open_now) // UNCOUNTED_SHARE
        self._counted_at = time.monotonic()
        return super().accept()


def open_descriptors() -> int:
    """Files this process has open, or 0 where the system does not list them."""
    for folder in DESCRIPTOR_DIRS:
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 0


class QuietBudgetPauses(logging.Filter):
    """Drops asyncio's error-and-traceback report of a :class:`DescriptorBudgetReached` pause (logged above)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DescriptorBudgetReached))


def guarded_protocol(limits: ConnectionLimits) -> type["GuardedH11Protocol"]:
    """uvicorn's h11 protocol with ``limits``: pass it as ``uvicorn.Config(http=...)``. Each call makes a class
    with its own registry of waiting connections (one per server)."""
    namespace = {"limits": limits, "waiting": OrderedDict(), "closures": ClosureReport()}
    return type("GuardedH11Protocol", (GuardedH11Protocol,), namespace)


class GuardedH11Protocol(H11Protocol):
    """One HTTP connection under :class:`ConnectionLimits`; use :func:`guarded_protocol` to get a server's class."""

    limits: ClassVar[ConnectionLimits]
    waiting: ClassVar[OrderedDict["GuardedH11Protocol", None]]
    """Connections with no request in progress, oldest first: the ones a new connection may replace."""
    closures: ClassVar["ClosureReport"]

    _deadline: asyncio.TimerHandle | None = None
    _cycle_seen: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_a_waiting_connection():
            self.closures.add("refused: the cap was reached and none was waiting")
            self.transport.close()
            return
        self._wait_for_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle is not self._cycle_seen:  # a request's headers are in
            self._cycle_seen = cycle
            self.waiting.pop(self, None)
            self._cancel_deadline()
            if cycle.more_body:
                self._deadline = self.loop.call_later(self.limits.body_seconds, self._too_slow, "body")
        elif not cycle.more_body:  # its body is complete
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is self._cycle_seen:
            self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting.pop(self, None)
        self._cancel_deadline()
        super().connection_lost(exc)

    def _wait_for_request(self) -> None:
        self.waiting[self] = None
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.limits.header_seconds, self._too_slow, "headers")

    def _evict_a_waiting_connection(self) -> bool:
        for other in self.waiting:
            if other is not self:
                self.closures.add("waiting ones closed to admit new ones")
                other._close()
                return True
        return False

    def _too_slow(self, part: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        seconds = self.limits.header_seconds if part == "headers" else self.limits.body_seconds
        self.closures.add(f"request {part} slower than {seconds:g} s")
        if part == "headers":
            self.transport.write(REQUEST_TIMEOUT_ANSWER)
        self._close()

    def _close(self) -> None:
        self.waiting.pop(self, None)
        self._cancel_deadline()
        if not self.transport.is_closing():
            self.transport.close()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class ClosureReport:
    """Counts the connections the limits closed, by reason, and logs the counts at most once a minute (the first
    one at once): under a flood of slow clients a line per connection would flood the log instead."""

    def __init__(self, interval: float = 60.0) -> None:
        self._interval = interval
        self._counts: Counter[str] = Counter()
        self._reported_at = -interval

    def add(self, reason: str) -> None:
        self._counts[reason] += 1
        now = time.monotonic()
        if now - self._reported_at >= self._interval:
            counts = ", ".join(f"{count} {why}" for why, count in self._counts.most_common())
            logger.warning("Connection limits closed HTTP connections (since the last report): %s", counts)
            self._counts.clear()
            self._reported_at = now
