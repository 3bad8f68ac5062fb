"""Tool results: ``Task``s, task lists and downloads as ``CallToolResult``s, and the progress reporters of waits
and downloads.

Every result carries its data twice: as structured content (validated against the tool's output schema) and as
the same compact JSON in a text item, for clients that show only text. Fields without a value are left out.
"""

import base64
import json
import logging
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, ConfigDict, Field

from sora_mcp.client import ProgressCallback
from sora_mcp.errors import DownloadError
from sora_mcp.models import ContactSheet, DownloadResult, Task, VideoFinding, VideoInspection
from sora_mcp.server.guidance import download_hint, finding_note, human_size, inspection_hint
from sora_mcp.server.state import AppState, ToolContext

if TYPE_CHECKING:  # the download and inspection code is imported on first use (start-up does not need it)
    from sora_mcp.download import SavedVideo
    from sora_mcp.inspect_video import Inspection
    from sora_mcp.transfer import ByteProgress

logger = logging.getLogger(__name__)


class TaskList(BaseModel):
    """Tasks from the journal, newest first."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    tasks: list[Task] = Field(
        description="Each with its last known state; submissions whose outcome is unknown have no task_id."
    )


def task_data(task: Task) -> dict[str, Any]:
    """A ``Task`` as compact JSON data: fields without a value, and an empty characters list, are left out."""
    data = task.model_dump(mode="json", exclude_none=True)
    if not data.get("characters"):
        data.pop("characters", None)
    return data


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def task_result(task: Task) -> CallToolResult:
    """A ``Task`` as structured content plus the same compact JSON as text."""
    return data_result(task_data(task))


def list_result(tasks: list[Task]) -> CallToolResult:
    """``{"tasks": [...]}`` as structured content plus the same compact JSON as text."""
    return data_result({"tasks": [task_data(task) for task in tasks]})


def data_result(data: dict[str, Any]) -> CallToolResult:
    """JSON data as structured content plus the same compact JSON as text."""
    return CallToolResult(content=[TextContent(type="text", text=to_json(data))], structured_content=data)


async def with_thumbnail(result: CallToolResult, task: Task, state: AppState) -> CallToolResult:
    """Add a completed video's thumbnail as an image, when there is a small one; never fails the call."""
    url = task.thumbnail_url
    if not state.settings.inline_thumbnails or task.kind != "video" or task.status != "completed" or not url:
        return result
    from sora_mcp.transfer import fetch_small_image

    client = state.tasks.client
    try:
        data, media_type = await fetch_small_image(client.http, url, headers=client.media_headers(url))
    except DownloadError as exc:
        logger.debug("No inline thumbnail for %s: %s", task.task_id, exc)
        return result
    image = ImageContent(type="image", data=base64.b64encode(data).decode("ascii"), mime_type=media_type)
    return result.model_copy(update={"content": [*result.content, image]})


def download_result(saved: "SavedVideo") -> CallToolResult:
    """A download as a ``DownloadResult`` in structured content, compact JSON text, and a ``resource_link`` per
    saved file (a ``file://`` URI), so that clients that show files can offer them."""
    video, thumbnail = saved.video, saved.thumbnail
    result = DownloadResult(
        task_id=saved.task_id,
        path=str(video.path),
        bytes=video.size,
        sha256=video.sha256,
        content_type=video.content_type,
        thumbnail_path=str(thumbnail.path) if thumbnail else None,
        already_downloaded=video.reused,
        hint=download_hint(saved),
    )
    data = result.model_dump(mode="json", exclude_none=True)
    content: list[ContentBlock] = [
        TextContent(type="text", text=to_json(data)),
        _file_link(video.path, video.content_type or "video/mp4", video.size, "The downloaded video"),
    ]
    if thumbnail is not None:
        media_type = mimetypes.guess_type(thumbnail.path.name)[0] or "image/jpeg"
        content.append(_file_link(thumbnail.path, media_type, None, "The video's thumbnail"))
    return CallToolResult(content=content, structured_content=data)


def _file_link(path: Path, media_type: str, size: int | None, description: str) -> ResourceLink:
    return ResourceLink(
        type="resource_link",
        name=path.name,
        uri=path.as_uri(),
        mime_type=media_type,
        size=size,
        description=description,
    )


def wait_reporter(ctx: ToolContext, wait_seconds: int) -> ProgressCallback:
    """Progress notifications for a wait: the gateway's percentage, nudged so values strictly increase (the
    spec requires it, and clients that reset their timeout on progress need a fresh value every time)."""
    last_reported = -1.0

    async def report(task: Task | None, waited: float) -> None:
        nonlocal last_reported
        progress = task.progress if task else 0
        value = float(progress) if progress > last_reported else round(last_reported + 0.01, 2)
        last_reported = value
        state = f"{task.status} {progress}%" if task else "asking the gateway"
        await ctx.report_progress(value, 100, f"{state} (waited {waited:.0f}s of {wait_seconds}s)")

    return report


def byte_reporter(ctx: ToolContext) -> "ByteProgress":
    """Progress notifications for a download: bytes so far (strictly increasing) of the total when known."""
    last_reported = 0

    async def report(done: int, total: int | None) -> None:
        nonlocal last_reported
        if done > last_reported:
            last_reported = done
            of = f" of {human_size(total)}" if total else ""
            await ctx.report_progress(done, total, f"downloaded {human_size(done)}{of}")

    return report


def inspection_result(inspection: "Inspection", *, sandbox: bool) -> CallToolResult:
    """An inspection as a ``VideoInspection`` in structured content, the same compact JSON as text, and the contact
    sheet as a JPEG image, so that a model that sees images can judge the frames."""
    report, requested, sheet = inspection.report, inspection.requested, inspection.report.sheet
    findings = [
        VideoFinding(
            kind=finding.kind,
            start_seconds=finding.start,
            end_seconds=finding.end,
            expected=finding.expected,
            actual=finding.actual,
            note=finding_note(finding, report.samples_per_second),
        )
        for finding in inspection.findings
    ]
    result = VideoInspection(
        task_id=inspection.task_id,
        source=inspection.source,
        path=str(inspection.path) if inspection.path is not None else None,
        duration_seconds=report.duration,
        width=report.width,
        height=report.height,
        frame_rate=report.frame_rate,
        codec=report.codec,
        has_audio=report.audio_codec is not None,
        audio_codec=report.audio_codec,
        requested_duration_seconds=requested.duration if requested else None,
        requested_aspect_ratio=requested.aspect_ratio if requested else None,
        findings=findings,
        samples_per_second=report.samples_per_second,
        samples=len(report.samples),
        contact_sheet=ContactSheet(
            frame_times_seconds=sheet.times,
            columns=sheet.columns,
            rows=sheet.rows,
            width=sheet.width,
            height=sheet.height,
            bytes=len(sheet.jpeg),
        ),
        hint=inspection_hint(inspection, sandbox=sandbox),
    )
    data = result.model_dump(mode="json", exclude_none=True)
    image = ImageContent(type="image", data=base64.b64encode(sheet.jpeg).decode("ascii"), mime_type="image/jpeg")
    return CallToolResult(content=[TextContent(type="text", text=to_json(data)), image], structured_content=data)
