"""The SDK floor for start-up: a bare ``MCPServer`` with one trivial tool, served over stdio."""

from mcp.server import MCPServer

server = MCPServer("floor", log_level="WARNING")


@server.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    server.run()
