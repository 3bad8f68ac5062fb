"""The in-chat player: an MCP App (``ui://sora-mcp/player.html``) that hosts which render Apps show next to a result.

- The create tools and ``get_task`` carry ``_meta.ui.resourceUri`` (:data:`PLAYER_META`); ``list_tasks`` opens the
  same view as a gallery. Hosts without Apps (Claude Code) ignore it: every result keeps its full text and
  structured content.
- The view (``assets/player.html``, one self-contained file: no CDN, no external script) speaks the Apps bridge
  (JSON-RPC over ``postMessage``) to its host. It shows a running task's progress by calling the app-only tool
  ``player_state`` (``visibility: ["app"]``: hidden from the model, free), then a ``<video controls>`` of the
  result, or the failure. Its Content-Security-Policy allows media from ``SORA_MEDIA_ORIGINS`` (and the sandbox's
  loopback origin in sandbox mode).
- After ``download_video``, the view plays the saved file, read as a resource blob (``sora-video://{task_id}``),
  once the gateway's link has expired.
- Actions (download; a character from 1-3 s picked on the timeline) call the tools through the host, so a paid
  one meets the same confirmation as when the model calls it; a quote is handed to the chat, never confirmed by
  the view itself.
"""

from functools import cache
from pathlib import Path
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.apps import Apps, ResourceCsp
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from sora_mcp.config import Settings
from sora_mcp.images import megabytes
from sora_mcp.models import check_task_id
from sora_mcp.server.state import app_state

PLAYER_URI = "ui://sora-mcp/player.html"
PLAYER_META: dict[str, Any] = {"ui": {"resourceUri": PLAYER_URI}}
"""The ``_meta`` of a tool whose result the player shows."""
APP_ONLY_META: dict[str, Any] = {"ui": {"resourceUri": PLAYER_URI, "visibility": ["app"]}}
"""The ``_meta`` of a tool only the player calls (hosts hide it from the model)."""
SAVED_VIDEO_URI = "sora-video://{task_id}"
MAX_SAVED_VIDEO_BYTES = 64 * 1024 * 1024
"""The largest saved video the player reads as one resource blob (base64 in one JSON-RPC message)."""
SANDBOX_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*")


PLAYER_FILE = Path(__file__).resolve().parent.parent / "assets" / "player.html"


@cache
def player_html() -> str:
    return PLAYER_FILE.read_text(encoding="utf-8")


def media_origins(settings: Settings) -> list[str]:
    """Where the view may load videos and images from: ``SORA_MEDIA_ORIGINS``, and the sandbox's loopback."""
    origins = list(settings.media_origins)
    if settings.sandbox:
        origins.extend(SANDBOX_ORIGINS)
    return list(dict.fromkeys(origins))


def player_extension(settings: Settings) -> Apps:
    """The Apps extension with the player's HTML resource (advertises ``io.modelcontextprotocol/ui``)."""
    apps = Apps()
    apps.add_html_resource(
        PLAYER_URI,
        player_html(),
        name="player",
        title="Sora player",
        description="Shows a task's progress, then plays the video (or shows the character); as a gallery for "
        "list_tasks.",
        csp=ResourceCsp(resource_domains=media_origins(settings)),
        prefers_border=True,
    )
    return apps


async def saved_video(task_id: str, ctx: Context[Any, Any]) -> bytes:
    """The video ``download_video`` saved for ``task_id``, as it is on disk (the player plays it once the
    gateway's link has expired)."""
    from sora_mcp.download import default_output_dir, find_recorded

    try:
        checked = check_task_id(task_id)
    except ValueError as exc:
        raise ResourceNotFoundError(f"task_id: {exc}") from None
    settings = app_state(ctx).settings
    directory = settings.output_dir or default_output_dir()
    saved = find_recorded(directory, checked, "video")
    if saved is None:
        raise ResourceNotFoundError(
            f"No saved video of task {checked} in {directory}: call download_video(task_id={checked!r}) first."
        )
    if saved.size > MAX_SAVED_VIDEO_BYTES:
        raise ResourceError(
            f"The saved video of task {checked} is {megabytes(saved.size)}, more than the player reads "
            f"({megabytes(MAX_SAVED_VIDEO_BYTES)}): open {saved.path} instead."
        )
    return await anyio.Path(saved.path).read_bytes()


def register_player(server: MCPServer[Any]) -> None:
    """The saved-video resource template (the HTML resource comes with :func:`player_extension`)."""
    server.resource(
        SAVED_VIDEO_URI,
        name="saved-video",
        title="Saved video",
        description="A video saved by download_video, as MP4 bytes (the in-chat player plays it after the "
        "gateway's link expired).",
        mime_type="video/mp4",
    )(saved_video)
