"""inspect_video: facts, a contact sheet and findings for a completed video, from the downloaded file or a stream.

Videos are the sandbox's sample and clips made here with PyAV (black frames, a frozen stretch), served by the fake
gateway over loopback HTTP as in ``test_download.py``; broken files (truncated, not a video) must give a clear error.
"""

import base64
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import av
import pytest
from conftest import API_KEY, make_settings
from fake_gateway import FakeGateway
from mcp import Client
from mcp.types import CallToolResult, ImageContent, TextContent

from sora_mcp.config import Settings
from sora_mcp.embedded import serve_app
from sora_mcp.inspect_video import Requested, findings
from sora_mcp.media_check import SHEET_MAX_BYTES, VideoCheckError, check_video
from sora_mcp.server import build_server

pytestmark = pytest.mark.anyio

MP4 = resources.files("sora_mcp").joinpath("assets", "sandbox.mp4").read_bytes()
JPEG = resources.files("sora_mcp").joinpath("assets", "sandbox.jpg").read_bytes()
PREFIX = "Error executing tool inspect_video: "


@pytest.fixture
def fake() -> FakeGateway:
    """A fake gateway whose videos complete at once."""
    return FakeGateway(api_key=API_KEY, video_seconds=0)


@pytest.fixture
async def gateway_url(fake: FakeGateway) -> AsyncIterator[str]:
    async with serve_app(fake.app) as url:
        yield url


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path.resolve() / "videos"


@pytest.fixture(autouse=True)
def temporary_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the streamed videos go (tempfile's folder), to check that nothing is left there."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@asynccontextmanager
async def connect(gateway_url: str, out: Path, mode: Any = "auto", **settings: Any) -> AsyncIterator[Client]:
    server = build_server(make_settings(base_url=gateway_url, output_dir=out, **settings))
    async with Client(server, mode=mode) as client:
        yield client


def completed_video(fake: FakeGateway, body: bytes | None = None) -> str:
    """A completed task of the fake (not created through the server: the journal does not know its request)."""
    task_id: str = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    if body is not None:
        fake.stream_file(f"/files/{task_id}.mp4", body=body, times=10)
    return task_id


def inspected(result: CallToolResult) -> tuple[dict[str, Any], bytes]:
    """The structured result (also the text item, as JSON) and the contact sheet's JPEG bytes."""
    assert result.is_error is False, result.content
    text, image = result.content
    assert isinstance(text, TextContent) and isinstance(image, ImageContent)
    assert json.loads(text.text) == result.structured_content
    assert image.mime_type == "image/jpeg"
    jpeg = base64.b64decode(image.data)
    assert jpeg.startswith(b"\xff\xd8") and len(jpeg) <= SHEET_MAX_BYTES
    assert result.structured_content is not None
    return dict(result.structured_content), jpeg


def error_text(result: CallToolResult) -> str:
    assert result.is_error is True
    [item] = result.content
    assert isinstance(item, TextContent)
    return item.text


def media_requests(fake: FakeGateway) -> list[str]:
    return [r.path for r in fake.requests if r.path.startswith("/files/")]


# --------------------------------------------------------------------------------------------- clips made here


def make_clip(
    path: Path,
    *,
    seconds: float = 6,
    size: tuple[int, int] = (128, 72),
    fps: int = 12,
    black: tuple[float, float] | None = None,
    frozen: tuple[float, float] | None = None,
    faststart: bool = False,
) -> bytes:
    """An H.264 MP4 of a moving pattern, optionally black over ``black`` and still over ``frozen`` (seconds)."""
    width, height = size
    pattern = bytes((16 + (x * 37) % 220) for x in range(4 * (width + height)))
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        held: av.VideoFrame | None = None
        for index in range(round(seconds * fps)):
            at = index / fps
            if black and black[0] <= at < black[1]:
                frame = _flat_frame(width, height, 16)
            elif frozen and frozen[0] <= at < frozen[1] and held is not None:
                frame = held
            else:
                frame = _pattern_frame(width, height, pattern, shift=index * 5)
                held = frame
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.read_bytes()


def _pattern_frame(width: int, height: int, pattern: bytes, shift: int) -> av.VideoFrame:
    frame = _flat_frame(width, height, 128)
    luma = frame.planes[0]
    rows = [pattern[(row * 3 + shift) % (len(pattern) // 2) :][:width] for row in range(height)]
    padding = bytes(luma.line_size - width)
    luma.update(b"".join(row + padding for row in rows))
    return frame


def _flat_frame(width: int, height: int, luma: int) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, (luma, 128, 128), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


# --------------------------------------------------------------------------------------------- the sandbox's video


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sandbox_video_gives_its_facts_a_contact_sheet_and_no_findings(
    fake: FakeGateway, gateway_url: str, out: Path, temporary_dir: Path, mode: str
) -> None:
    """Streamed to a temporary file (deleted afterwards): 3 s of 320x180 H.264 at 24 fps with AAC audio; six frames
    on the sheet; a task the journal does not know is compared with nothing."""
    task_id = completed_video(fake)
    async with connect(gateway_url, out, mode) as client:
        data, jpeg = inspected(await client.call_tool("inspect_video", {"task_id": task_id}))
    hint, sheet = data.pop("hint"), data.pop("contact_sheet")
    assert data == {
        "task_id": task_id,
        "source": "streamed",
        "duration_seconds": 3.0,
        "width": 320,
        "height": 180,
        "frame_rate": 24.0,
        "codec": "h264",
        "has_audio": True,
        "audio_codec": "aac",
        "findings": [],
        "samples_per_second": 4.0,
        "samples": 12,
    }
    assert sheet == {
        "frame_times_seconds": [0.25, 0.75, 1.25, 1.75, 2.25, 2.75],
        "columns": 3,
        "rows": 2,
        "width": 3 * 320 + 4 * 4,
        "height": 2 * 180 + 3 * 4,
        "bytes": len(jpeg),
    }
    assert hint.startswith("The image is a contact sheet of 6 frames at 0.25, 0.75, 1.25, 1.75, 2.25, 2.75 s")
    assert hint.endswith(
        "The request is not in this server's task journal, so its duration and aspect ratio were not compared. No "
        "black frames or frozen stretches were found in 12 frames sampled 4 times per second."
    )
    assert media_requests(fake) == [f"/files/{task_id}.mp4"]
    assert os.listdir(temporary_dir) == []
    assert out.name not in os.listdir(out.parent)  # nothing saved


async def test_the_built_in_sandbox_video_goes_through_and_the_request_is_compared(tmp_path: Path) -> None:
    """In sandbox mode the sample video (3 s, 16:9) is checked against the request the journal recorded: 10 s and
    9:16 were asked for, so both differ; the hint says that is expected in the sandbox."""
    settings = Settings(sandbox=True, sandbox_seconds=0.1, state_dir=tmp_path, output_dir=tmp_path / "videos")
    async with Client(build_server(settings)) as client:
        created = await client.call_tool("create_video", {"prompt": "a cat", "size": "9:16", "wait_seconds": 5})
        assert created.structured_content is not None and created.structured_content["status"] == "completed"
        task_id = created.structured_content["task_id"]
        data, _ = inspected(await client.call_tool("inspect_video", {"task_id": task_id}))
    assert (data["requested_duration_seconds"], data["requested_aspect_ratio"]) == (10, "9:16")
    assert [(f["kind"], f["expected"], f["actual"]) for f in data["findings"]] == [
        ("duration_mismatch", "10 s", "3 s"),
        ("aspect_ratio_mismatch", "9:16", "320x180 (16:9)"),
    ]
    assert data["findings"][0]["note"] == "The video lasts 3 s; the request asked for 10 s."
    assert data["hint"].startswith("[Sandbox: simulated task, nothing was billed] The image is a contact sheet")
    assert "Findings: aspect ratio mismatch, duration mismatch (see findings[].note)" in data["hint"]
    assert data["hint"].endswith("so a duration or aspect ratio mismatch is expected here.")


async def test_a_downloaded_video_is_inspected_from_its_file_without_fetching_it_again(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    task_id = completed_video(fake)
    async with connect(gateway_url, out) as client:
        saved = await client.call_tool("download_video", {"task_id": task_id})
        assert saved.structured_content is not None
        before = len(fake.requests)
        data, _ = inspected(await client.call_tool("inspect_video", {"task_id": task_id}))
    assert (data["source"], data["path"]) == ("downloaded_file", saved.structured_content["path"])
    assert fake.requests[before:] == []  # neither the gateway nor the media host was asked


# --------------------------------------------------------------------------------------------- findings


async def test_black_frames_and_a_frozen_stretch_are_found_with_their_times(
    fake: FakeGateway, gateway_url: str, out: Path, tmp_path: Path
) -> None:
    """A clip black from 2 s to 3 s and still from 4 s to 5.5 s: both found, at the sample times around them."""
    clip = make_clip(tmp_path / "clip.mp4", black=(2, 3), frozen=(4, 5.5))
    task_id = completed_video(fake, clip)
    async with connect(gateway_url, out) as client:
        data, _ = inspected(await client.call_tool("inspect_video", {"task_id": task_id}))
    assert (data["duration_seconds"], data["width"], data["height"], data["has_audio"]) == (6.0, 128, 72, False)
    assert [(f["kind"], f["start_seconds"], f["end_seconds"]) for f in data["findings"]] == [
        ("black", 2.0, 2.75),
        ("frozen", 4.0, 5.25),
    ]
    black, frozen = (f["note"] for f in data["findings"])
    assert black.startswith("Black or near-black frames from 2 s to 2.75 s (sampled 4 times per second).")
    assert frozen.startswith("No visible motion from 4 s to 5.25 s (sampled 4 times per second)")
    assert "Findings: black, frozen (see findings[].note). Tell the user what was found" in data["hint"]


def test_a_clip_that_moves_all_along_has_no_findings(tmp_path: Path) -> None:
    report = check_video(Path(_write(tmp_path, make_clip(tmp_path / "c.mp4"))), deadline=time.monotonic() + 30)
    assert findings(report, None) == []
    assert findings(report, Requested(duration=6, duration_is_default=False, aspect_ratio="16:9")) == []
    assert len(report.samples) == 24 and all(s.change is None or s.change > 5 for s in report.samples)


def test_a_portrait_video_against_a_landscape_request_and_another_duration_differ(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "p.mp4", seconds=3, size=(72, 128))
    report = check_video(Path(_write(tmp_path, clip)), deadline=time.monotonic() + 30)
    found = findings(report, Requested(duration=10, duration_is_default=True, aspect_ratio="16:9"))
    assert [(f.kind, f.expected, f.actual) for f in found] == [
        ("duration_mismatch", "10 s", "3 s"),
        ("aspect_ratio_mismatch", "16:9", "72x128 (9:16)"),
    ]
    assert (report.sheet.columns, report.sheet.rows) == (3, 2)
    assert report.sheet.height > report.sheet.width  # portrait tiles


def _write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "check.mp4"
    path.write_bytes(data)
    return str(path)


# --------------------------------------------------------------------------------------------- broken files


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "The file is not a video: it is a web page."),
        (JPEG, "The file is not a video: it is an image (image/jpeg)."),
        (b'{"error": "gone"}', "The file is not a video: it is JSON."),
        (b"\x00" * 4096, "The file is not a video: it is not an MP4, MOV or WebM video."),
    ],
)
async def test_content_that_is_not_a_video_is_a_clear_error(
    fake: FakeGateway, gateway_url: str, out: Path, temporary_dir: Path, body: bytes, expected: str
) -> None:
    task_id = completed_video(fake, body)
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("inspect_video", {"task_id": task_id})
    assert error_text(result) == PREFIX + expected
    assert os.listdir(temporary_dir) == []


async def test_a_truncated_file_is_a_clear_error(
    fake: FakeGateway, gateway_url: str, out: Path, tmp_path: Path
) -> None:
    """Cut in half: without its index (written last) the MP4 cannot be opened; with the index first (faststart),
    decoding fails where the data ends."""
    clip = make_clip(tmp_path / "clip.mp4")
    fast = make_clip(tmp_path / "fast.mp4", faststart=True)
    cut, fast_cut = completed_video(fake, clip[: len(clip) // 2]), completed_video(fake, fast[: len(fast) // 2])
    async with connect(gateway_url, out) as client:
        first = error_text(await client.call_tool("inspect_video", {"task_id": cut}))
        second = error_text(await client.call_tool("inspect_video", {"task_id": fast_cut}))
    assert first == PREFIX + (
        "The file is not a readable video: it is corrupt or truncated (Invalid data found when processing input)."
    )
    assert second == PREFIX + (
        "Decoding the video failed: it is corrupt or truncated (Invalid data found when processing input)."
    )


def test_a_deadline_stops_decoding_with_a_clear_error(tmp_path: Path) -> None:
    path = Path(_write(tmp_path, MP4))
    with pytest.raises(VideoCheckError, match=r"^Decoding took too long; stopped at "):
        check_video(path, deadline=time.monotonic() - 1)


# --------------------------------------------------------------------------------------------- fetching


async def test_a_task_without_a_video_yet_says_to_wait_then_inspect(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    fake.video_seconds = 100
    running = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("inspect_video", {"task_id": running})
    assert error_text(result) == (
        f"{PREFIX}Task {running} is queued (0%), so there is no video yet. Call get_task with task_id='{running}' "
        "and wait_seconds=50 until it is completed, then inspect_video."
    )
    assert media_requests(fake) == []


async def test_the_download_cap_and_an_expired_url_apply_as_for_download_video(
    fake: FakeGateway, gateway_url: str, out: Path, temporary_dir: Path
) -> None:
    """Over SORA_MAX_DOWNLOAD_MB nothing is decoded; a refused URL is re-read from the gateway once."""
    big = completed_video(fake, MP4 * 30)  # about 1.2 MB
    refused = completed_video(fake)
    fake.fault("GET", f"/files/{refused}.mp4", status=403)
    async with connect(gateway_url, out, max_download_mb=1) as client:
        too_large = error_text(await client.call_tool("inspect_video", {"task_id": big}))
        data, _ = inspected(await client.call_tool("inspect_video", {"task_id": refused}))
    assert too_large.startswith(PREFIX + "The file is 1.2 MB, over the 1 MB limit (SORA_MAX_DOWNLOAD_MB).")
    assert data["duration_seconds"] == 3.0
    assert media_requests(fake)[-2:] == [f"/files/{refused}.mp4"] * 2
    assert os.listdir(temporary_dir) == []


async def test_inspect_video_is_listed_as_a_free_read_only_idempotent_open_world_tool(mcp_client: Client) -> None:
    tools = {tool.name: tool for tool in (await mcp_client.list_tools()).tools}
    tool = tools["inspect_video"]
    assert tool.title == "Inspect a video"
    assert tool.annotations is not None
    hints = tool.annotations
    assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (
        True,
        False,
        True,
        True,
    )
    assert tool.description is not None and "Free: the gateway does not charge for it" in tool.description
    assert list(tool.input_schema["properties"]) == ["task_id"]


@pytest.mark.parametrize("size", [(16, 16), (800, 40), (40, 800)])
def test_tiny_and_very_wide_videos_get_a_contact_sheet_without_labels_that_do_not_fit(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """A tile too small for its time label gets none (the times are in the data); nothing overflows the sheet."""
    report = check_video(
        Path(_write(tmp_path, make_clip(tmp_path / "c.mp4", size=size))), deadline=time.monotonic() + 30
    )
    assert report.sheet is not None and report.sheet.jpeg.startswith(b"\xff\xd8")
    assert len(report.sheet.times) == 6
