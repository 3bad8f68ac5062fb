"""The garbage collector of an HTTP server process: fewer, never long, pauses however many calls are open.

Every open MCP call over HTTP holds about 700 tracked objects (the SDK's transport, session and task group,
anyio streams and cancel scopes, our wait), and a call that waits lives long enough to reach the oldest
generation. With CPython's default thresholds (700, 10, 10) 1,000 waiting calls meant about 800,000 tracked
objects and a full collection every second or so while they arrived, each holding the event loop for 110-650 ms
(``bench/waiters.py``: 4.1 s of the window's 25 s of CPU went to the collector, and every loop stall over 100 ms
was one of these). With :data:`SERVER_THRESHOLDS` the same window made no full collection and spent 0.7 s.

What the server holds for good (modules, classes, schemas, settings) is frozen once it is up
(:func:`gc.freeze`, which costs nothing: no collection first, whose pause a test process's heap would make
long): no collection scans it again. Cyclic garbage still goes: the young generations are
collected as before, only less often, and a full collection still comes after every
``SERVER_THRESHOLDS[0] * [1] * [2]`` net allocations (10 million; at 50 calls a second, about every
half minute).
"""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SERVER_THRESHOLDS = (10_000, 10, 100)
"""``gc.set_threshold`` while a server runs: a young collection per 10,000 net allocations (not 700), an older
one per 10 of those, a full one per 100 older ones (not 10)."""

_lock = threading.Lock()
_servers = 0
_previous: tuple[int, int, int] | None = None


@contextmanager
def server_collection() -> Iterator[None]:
    """Freeze what the process holds now and collect with :data:`SERVER_THRESHOLDS` until the last server of the
    process ends (the app's lifespan; tests run several apps in one process), then restore both."""
    global _servers, _previous
    with _lock:
        _servers += 1
        if _servers == 1:
            _previous = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*SERVER_THRESHOLDS)
    try:
        yield
    finally:
        with _lock:
            _servers -= 1
            if _servers == 0 and _previous is not None:
                gc.set_threshold(*_previous)
                gc.unfreeze()
                _previous = None
