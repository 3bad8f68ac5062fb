"""sora-mcp: an MCP server for Sora-2 video generation through the dashlyai gateway."""

__version__ = "0.1.0"
