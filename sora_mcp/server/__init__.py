"""The MCP face of sora-mcp, one room per concern:

- ``app.py``: ``build_server()``: lifespan, state, registration;
- ``state.py``: ``AppState``, what every tool call reaches;
- ``tools.py``: the tools, each a module-level ``async def``;
- ``guidance.py``: every sentence the model reads (instructions, hints, notes);
- ``errors.py``: the one error-to-tool-error boundary;
- ``results.py``: tasks, lists and downloads as ``CallToolResult``s, progress reporters;
- ``toolset.py``: the output-schema workaround (schemas generated once);
- ``resources.py`` and ``prompts.py``: ``task://``, ``tasks://recent`` and ``make_video``.

The way from a tool call to the gateway runs one direction: tools → ``TaskService`` (``tasks.py``) →
``SoraClient`` (``client.py``) and ``Journal`` (``journal.py``). The HTTP transports are in ``sora_mcp.http``.
"""

from sora_mcp.server.app import SERVER_NAME, build_server, open_client
from sora_mcp.server.state import AppState

__all__ = ["SERVER_NAME", "AppState", "build_server", "open_client"]
