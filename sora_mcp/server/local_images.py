"""``create_video``'s local reference images, read once per call for the approval resolver and the tool body alike.

``LocalImages`` is a resolver-filled parameter (the SDK's ``Resolve``, deduplicated within a call): the cost
approval (``money.approve_video``) and ``create_video`` both receive the same :class:`PreparedImages`, so the files
are read once and both build the identical request (the approval checks duplicates by its hash). It never appears
in the tool's input schema.
"""

from typing import Annotated

from mcp.server.mcpserver import Resolve
from mcp.server.mcpserver.exceptions import ToolError

from sora_mcp.local_files import PreparedImages, prepare_images
from sora_mcp.server.errors import NOTHING_SENT
from sora_mcp.server.state import ToolContext, app_state


async def read_local_images(ctx: ToolContext, images: list[str] | None) -> PreparedImages:
    """The resolver: ``images`` with local entries read inside ``SORA_FILE_ROOTS`` (``local_files.py``)."""
    return await prepare_images(images, app_state(ctx).settings)


LocalImages = Annotated[PreparedImages, Resolve(read_local_images)]


def sendable(prepared: PreparedImages) -> list[str] | None:
    """The images to validate and send, or a tool error naming each local entry that cannot be (nothing sent)."""
    if prepared.problems:
        raise ToolError(NOTHING_SENT + "; ".join(prepared.problems))
    return prepared.images
