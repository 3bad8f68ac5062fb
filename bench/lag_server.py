"""sora-mcp over Streamable HTTP exactly as ``sora-mcp --transport streamable-http ARGS...`` runs it, plus an
event-loop lag sampler, for the waiter benchmark: ``python bench/lag_server.py ARGS...``.

The sampler and its bench-only routes (``/bench/lag``, ``/bench/profile``, served before the app) are
``lag.py``'s.

Nothing in sora_mcp is changed: ``sora_mcp.http.create_app``, which ``serve`` calls, is wrapped to add the
routes and start the sampler in the app's lifespan.
"""

import resource
import sys
from typing import Any

from lag import LagSampler

import sora_mcp.http
from sora_mcp.__main__ import main

SAMPLER = LagSampler()
_create_app = sora_mcp.http.create_app


def create_app(*args: Any, **kwargs: Any) -> Any:
    return SAMPLER.install(_create_app(*args, **kwargs))


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for a thousand connections, as in production
    sora_mcp.http.create_app = create_app
    main(["--transport", "streamable-http", *sys.argv[1:]])
