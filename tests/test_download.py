"""download_video and inline thumbnails, against the fake gateway serving real bytes over loopback HTTP.

Downloads go through a real socket (``serve_app``) because ``httpx2.ASGITransport`` buffers whole bodies: only a
real connection streams, can be capped mid-body, and can break mid-body.
"""

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from conftest import API_KEY, make_settings
from fake_gateway import FakeGateway, ManualClock
from mcp import Client
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from sora_mcp.download import MANIFEST_NAME, check_filename, default_output_dir
from sora_mcp.embedded import serve_app
from sora_mcp.errors import InvalidArgumentError
from sora_mcp.images import sniff_image_type
from sora_mcp.server import build_server

pytestmark = pytest.mark.anyio

MP4 = resources.files("sora_mcp").joinpath("assets", "sandbox.mp4").read_bytes()
JPEG = resources.files("sora_mcp").joinpath("assets", "sandbox.jpg").read_bytes()
MB = 1024 * 1024


@pytest.fixture
def fake() -> FakeGateway:
    """A fake gateway whose videos complete at once."""
    return FakeGateway(api_key=API_KEY, video_seconds=0)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The output folder (not created yet: the server creates it on demand), as the server resolves it."""
    return tmp_path.resolve() / "videos"


@pytest.fixture
async def gateway_url(fake: FakeGateway) -> AsyncIterator[str]:
    """The fake gateway served over loopback HTTP."""
    async with serve_app(fake.app) as url:
        yield url


@asynccontextmanager
async def connect(
    gateway_url: str, out: Path, mode: Any = "auto", clock: Callable[[], float] = time.time, **settings: Any
) -> AsyncIterator[Client]:
    """An MCP client of a server whose own HTTP client talks to the fake over real sockets."""
    server = build_server(make_settings(base_url=gateway_url, output_dir=out, **settings), clock=clock)
    async with Client(server, mode=mode) as client:
        yield client


def completed_video(fake: FakeGateway, **body: Any) -> str:
    task_id: str = fake.create({"model": "sora-2", "prompt": "a cat", **body})["id"]
    return task_id


def file_requests(fake: FakeGateway) -> list[str]:
    return [r.path for r in fake.requests if r.path.startswith("/files/")]


def gateway_paths(fake: FakeGateway) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests]


def error_text(result: CallToolResult) -> str:
    assert result.is_error is True
    [item] = result.content
    assert isinstance(item, TextContent)
    return item.text


def folder(out: Path) -> list[str]:
    """Every name in the output folder, hidden ones (temporary files, the manifest) included."""
    return sorted(os.listdir(out)) if out.exists() else []


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def place(directory: Path, name: str, data: bytes) -> Path:
    """Put a file into ``directory`` (created if needed), as the user or another program might have."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------- downloading


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_download_video_saves_the_file_and_returns_path_hash_and_a_resource_link(
    fake: FakeGateway, gateway_url: str, out: Path, mode: str
) -> None:
    """The MP4 lands in the output folder as <task_id>.mp4 with the same bytes; the result names it three ways."""
    task_id = completed_video(fake)
    async with connect(gateway_url, out, mode) as client:
        result = await client.call_tool("download_video", {"task_id": task_id})
    assert result.is_error is False
    path = out / f"{task_id}.mp4"
    assert path.read_bytes() == MP4
    assert result.structured_content is not None
    data = dict(result.structured_content)
    hint = data.pop("hint")
    assert data == {
        "task_id": task_id,
        "path": str(path),
        "bytes": len(MP4),
        "sha256": sha256(MP4),
        "content_type": "video/mp4",
        "already_downloaded": False,
    }
    assert hint.startswith(f"Saved the video to {path} (") and hint.endswith("Tell the user where the file is.")
    text, link = result.content
    assert isinstance(text, TextContent) and json.loads(text.text) == result.structured_content
    assert isinstance(link, ResourceLink)
    assert (link.uri, link.name, link.mime_type, link.size) == (path.as_uri(), path.name, "video/mp4", len(MP4))
    assert folder(out) == sorted([MANIFEST_NAME, path.name])


async def test_include_thumbnail_saves_the_thumbnail_beside_the_video(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """With include_thumbnail, the JPEG is saved as <name>.jpg and gets its own resource link."""
    task_id = completed_video(fake)
    async with connect(gateway_url, out) as client:
        result = await client.call_tool(
            "download_video", {"task_id": task_id, "include_thumbnail": True, "filename": "Cat Video"}
        )
    assert result.is_error is False
    assert result.structured_content is not None
    thumbnail = out / "Cat Video.jpg"
    assert result.structured_content["path"] == str(out / "Cat Video.mp4")
    assert result.structured_content["thumbnail_path"] == str(thumbnail)
    assert thumbnail.read_bytes() == JPEG
    links = [item for item in result.content if isinstance(item, ResourceLink)]
    assert [(link.uri, link.mime_type) for link in links] == [
        ((out / "Cat Video.mp4").as_uri(), "video/mp4"),
        (thumbnail.as_uri(), "image/jpeg"),
    ]


async def test_a_video_without_thumbnail_says_so_and_still_downloads(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """include_thumbnail on a video the gateway gives no thumbnail for is no error: the hint says so."""
    task_id = completed_video(fake, metadata={"thumbnail": False})
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", {"task_id": task_id, "include_thumbnail": True})
    assert result.structured_content is not None
    assert "thumbnail_path" not in result.structured_content
    assert "The gateway gave no thumbnail for this video." in result.structured_content["hint"]
    assert file_requests(fake) == [f"/files/{task_id}.mp4"]


async def test_downloading_again_is_a_no_op_that_returns_the_same_path(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """A second call finds the recorded file untouched and returns it without any request, even for the
    thumbnail; the file is not rewritten."""
    task_id = completed_video(fake)
    arguments = {"task_id": task_id, "include_thumbnail": True}
    async with connect(gateway_url, out) as client:
        first = await client.call_tool("download_video", arguments)
        path = out / f"{task_id}.mp4"
        written = path.stat().st_mtime_ns
        requests_before = len(fake.requests)
        second = await client.call_tool("download_video", arguments)
        without_name = await client.call_tool("download_video", {"task_id": task_id})
    assert first.structured_content is not None and second.structured_content is not None
    assert second.structured_content["already_downloaded"] is True
    assert second.structured_content["hint"].startswith(f"The video was already saved at {path}")
    for key in ("path", "bytes", "sha256", "content_type", "thumbnail_path"):
        assert second.structured_content[key] == first.structured_content[key], key
    assert without_name.structured_content is not None
    assert without_name.structured_content["path"] == str(path)
    assert len(fake.requests) == requests_before
    assert path.stat().st_mtime_ns == written


async def test_a_file_given_a_custom_name_is_found_again_without_the_name(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """download_video(task_id) after download_video(task_id, filename=...) returns the named file."""
    task_id = completed_video(fake)
    async with connect(gateway_url, out) as client:
        await client.call_tool("download_video", {"task_id": task_id, "filename": "holiday.mp4"})
        again = await client.call_tool("download_video", {"task_id": task_id})
    assert again.structured_content is not None
    assert again.structured_content["path"] == str(out / "holiday.mp4")
    assert folder(out) == [MANIFEST_NAME, "holiday.mp4"]


async def test_without_a_record_the_same_content_is_recognised_by_hash_and_kept(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """A file placed by other means (no manifest) is compared by size and SHA-256 after fetching: identical
    bytes keep the existing file untouched and report already_downloaded."""
    task_id = completed_video(fake)
    path = place(out, f"{task_id}.mp4", MP4)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", {"task_id": task_id})
    assert result.structured_content is not None
    assert result.structured_content["already_downloaded"] is True
    assert result.structured_content["sha256"] == sha256(MP4)
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert folder(out) == sorted([MANIFEST_NAME, path.name])


async def test_an_existing_file_with_other_content_is_never_overwritten(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """A name holding different bytes is refused with what to do; the file and the folder stay as they were."""
    task_id = completed_video(fake)
    place(out, "mine.mp4", b"the user's own video")
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", {"task_id": task_id, "filename": "mine.mp4"})
    assert error_text(result) == (
        f"Error executing tool download_video: 'mine.mp4' already exists in {out} with different "
        "content and is never overwritten. Pass another filename, or ask the user to move that file away."
    )
    assert (out / "mine.mp4").read_bytes() == b"the user's own video"
    assert folder(out) == ["mine.mp4"]


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
async def test_a_file_over_the_size_cap_is_refused_and_nothing_is_left(
    fake: FakeGateway, gateway_url: str, out: Path, declare_length: bool
) -> None:
    """Over SORA_MAX_DOWNLOAD_MB the download stops (at once with a Content-Length, mid-stream without one)."""
    task_id = completed_video(fake)
    fake.stream_file(f"/files/{task_id}.mp4", body=b"\0" * (MB + MB // 2), declare_length=declare_length)
    async with connect(gateway_url, out, max_download_mb=1) as client:
        result = await client.call_tool("download_video", {"task_id": task_id})
    size = "is 1.5 MB, over" if declare_length else "is over"
    assert error_text(result) == (
        f"Error executing tool download_video: The file {size} the 1 MB limit (SORA_MAX_DOWNLOAD_MB). "
        "Nothing was saved. Raise SORA_MAX_DOWNLOAD_MB to allow it, or give the user video_url to download it "
        "themselves."
    )
    assert folder(out) == []


async def test_a_connection_dropped_mid_stream_leaves_no_partial_file(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """A body cut off halfway is an error saying to try again, nothing is kept, and trying again works."""
    task_id = completed_video(fake)
    body = os.urandom(MB)
    fake.stream_file(f"/files/{task_id}.mp4", body=body, drop_after=300_000)
    async with connect(gateway_url, out) as client:
        broken = await client.call_tool("download_video", {"task_id": task_id})
        assert folder(out) == []
        fake.stream_file(f"/files/{task_id}.mp4", body=body, declare_length=False)
        retried = await client.call_tool("download_video", {"task_id": task_id})
    message = error_text(broken)
    assert message.startswith("Error executing tool download_video: The download from 127.0.0.1:")
    assert "broke off (RemoteProtocolError" in message
    assert message.endswith("Nothing was saved; try download_video again.")
    assert retried.structured_content is not None
    assert retried.structured_content["sha256"] == sha256(body)
    assert retried.structured_content["content_type"] == "video/mp4"
    assert (out / f"{task_id}.mp4").read_bytes() == body


async def test_a_media_host_that_stops_sending_times_out_with_a_clear_error(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """After SORA_TIMEOUT seconds without data the download is stopped, and nothing is kept."""
    task_id = completed_video(fake)
    fake.stream_file(f"/files/{task_id}.mp4", body=os.urandom(64 * 1024), chunk_delay=1.5)
    async with connect(gateway_url, out, timeout=0.5) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("download_video", {"task_id": task_id})
    assert error_text(result) == (
        f"Error executing tool download_video: The media host {gateway_url.removeprefix('http://')} sent nothing "
        "for 0.5 s; the download was stopped. Try download_video again (SORA_TIMEOUT sets this limit)."
    )
    assert folder(out) == []


async def test_progress_is_reported_while_downloading_strictly_increasing_and_throttled(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """A slow download reports bytes so far and the total a few times (not per chunk), ending at the total."""
    task_id = completed_video(fake)
    body = os.urandom(16 * 64 * 1024)
    fake.stream_file(f"/files/{task_id}.mp4", body=body, chunk_delay=0.1)
    reports: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        reports.append((done, total, message))

    async with connect(gateway_url, out) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("download_video", {"task_id": task_id}, progress_callback=progress)
    assert result.is_error is False
    done = [report[0] for report in reports]
    assert 2 <= len(done) < 16
    assert done == sorted(set(done))
    assert reports[-1] == (len(body), len(body), "downloaded 1.0 MB of 1.0 MB")
    assert all(total == len(body) for _, total, _ in reports)


async def test_media_on_another_host_never_receives_the_api_key(fake: FakeGateway, gateway_url: str, out: Path) -> None:
    """The Bearer key goes to the gateway's own origin only: a media URL on another origin (here the same app
    on a second port) is fetched without it."""
    task_id = completed_video(fake)
    async with serve_app(fake.app) as media_url, connect(gateway_url, out) as client:
        fake.public_url = media_url
        result = await client.call_tool("download_video", {"task_id": task_id})
    assert result.is_error is False
    status_read, media = fake.requests
    assert status_read.headers["authorization"] == f"Bearer {API_KEY}"
    assert media.path == f"/files/{task_id}.mp4"
    assert "authorization" not in media.headers
    assert media.headers["user-agent"].startswith("sora-mcp/")


# --------------------------------------------------------------------------------------------- names and folders


@pytest.mark.parametrize(
    "name",
    ["../escape.mp4", "/etc/passwd", "sub/video.mp4", "..\\escape.mp4", "C:\\video.mp4", "..", ".hidden.mp4", " "],
)
async def test_traversal_absolute_and_hidden_names_are_rejected_before_any_request(
    fake: FakeGateway, gateway_url: str, out: Path, tmp_path: Path, name: str
) -> None:
    """A filename that is not a plain name is a tool error naming `filename`; nothing is fetched or written."""
    task_id = completed_video(fake)
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", {"task_id": task_id, "filename": name})
    message = error_text(result)
    assert message.startswith("Error executing tool download_video: Invalid argument filename: "), message
    assert "Give a name like 'beach-sunset.mp4'" in message
    assert fake.requests == []
    assert sorted(os.listdir(tmp_path)) == ["state"]  # only the task journal (conftest); no output folder


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip", "clip.mp4"),
        ("clip.MP4", "clip.MP4"),
        ("my.video", "my.video.mp4"),
        (" beach sunset ", "beach sunset.mp4"),
    ],
)
def test_plain_names_get_an_mp4_extension(name: str, expected: str) -> None:
    """A plain name is kept (trimmed), with `.mp4` added unless it is there."""
    assert check_filename(name) == expected


@pytest.mark.parametrize("name", ["con", "NUL.mp4", "a" * 210, "tab\there", "what?.mp4"])
def test_names_windows_cannot_hold_are_rejected(name: str) -> None:
    """Reserved device names, over-long names, control and Windows-forbidden characters are refused."""
    with pytest.raises(InvalidArgumentError) as caught:
        check_filename(name)
    assert caught.value.field == "filename"


@pytest.mark.parametrize("filename", [None, "escape.mp4"])
async def test_a_symbolic_link_out_of_the_folder_is_never_written_through(
    fake: FakeGateway, gateway_url: str, out: Path, tmp_path: Path, filename: str | None
) -> None:
    """A name that is a symlink (pointing outside) is refused before any request; the outside file is intact."""
    task_id = completed_video(fake)
    outside = place(tmp_path, "outside.txt", b"precious")
    name = filename or f"{task_id}.mp4"
    os.makedirs(out)
    os.symlink(outside, out / name)
    arguments = {"task_id": task_id} | ({"filename": filename} if filename else {})
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", arguments)
    assert error_text(result) == (
        f"Error executing tool download_video: '{name}' in {out} is a symbolic link; it is never "
        "written through. Pass another filename."
    )
    assert outside.read_bytes() == b"precious"
    assert os.readlink(out / name) == str(outside)
    assert fake.requests == []


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write into: mode 555, and immutable when the tests run as root (root ignores modes)."""
    path = tmp_path / "read-only"
    path.mkdir()
    path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    immutable = False
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: no folder is read-only for root")
        immutable = True
    try:
        yield path
    finally:
        if immutable:
            subprocess.run([str(shutil.which("chattr")), "-i", str(path)], check=True)
        path.chmod(stat.S_IRWXU)


async def test_a_read_only_output_folder_is_a_clear_error(
    fake: FakeGateway, gateway_url: str, read_only_dir: Path
) -> None:
    """Writing into a read-only folder fails with a message naming it and SORA_OUTPUT_DIR; nothing is left."""
    task_id = completed_video(fake)
    async with connect(gateway_url, read_only_dir) as client:
        result = await client.call_tool("download_video", {"task_id": task_id})
    message = error_text(result)
    assert message.startswith(
        f"Error executing tool download_video: Cannot write into the output folder {read_only_dir}"
    )
    assert "Set SORA_OUTPUT_DIR to a writable folder" in message
    assert folder(read_only_dir) == []


async def test_an_output_path_below_a_file_is_a_clear_error(
    fake: FakeGateway, gateway_url: str, tmp_path: Path
) -> None:
    """An output folder that cannot be created (its parent is a file) is refused before any media request."""
    place(tmp_path, "a-file", b"x")
    out = tmp_path / "a-file" / "videos"
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", {"task_id": completed_video(fake)})
    message = error_text(result)
    assert message.startswith(f"Error executing tool download_video: Cannot create the output folder {out} (")
    assert file_requests(fake) == []


def test_the_default_folder_is_sora_mcp_in_videos_else_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SORA_OUTPUT_DIR files go to ~/Videos/sora-mcp, or ~/Downloads/sora-mcp when only that exists."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert default_output_dir() == tmp_path / "Videos" / "sora-mcp"
    (tmp_path / "Downloads").mkdir()
    assert default_output_dir() == tmp_path / "Downloads" / "sora-mcp"
    (tmp_path / "Videos").mkdir()
    assert default_output_dir() == tmp_path / "Videos" / "sora-mcp"


# --------------------------------------------------------------------------------------------- task states and expiry


async def test_tasks_without_a_video_get_an_error_saying_what_to_do(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """Running: poll first. Failed: no video. Character: only videos. No media request is made."""
    fake.video_seconds = 100
    running = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    fake.video_seconds = 0
    failed = fake.create({"model": "sora-2", "prompt": "a cat [fail]"})["id"]
    character = fake.create({"model": "sora-2", "url": "https://example.com/v.mp4", "timestamps": "1,3"})["id"]
    fake.tasks[character].created_at -= 100
    async with connect(gateway_url, out) as client:
        messages = [
            error_text(await client.call_tool("download_video", {"task_id": task_id}))
            for task_id in (running, failed, character)
        ]
    prefix = "Error executing tool download_video: "
    assert messages == [
        f"{prefix}Task {running} is queued (0%), so there is no video yet. Call get_task with task_id='{running}' "
        "and wait_seconds=50 until it is completed, then download_video.",
        f"{prefix}Task {failed} failed (Generation failed: Content violates the content policy); it has no video "
        "to download.",
        f"{prefix}Task {character} is a character task; only videos can be downloaded.",
    ]
    assert file_requests(fake) == []
    assert folder(out) == []


async def test_an_unknown_task_is_the_usual_not_found_error(fake: FakeGateway, gateway_url: str, out: Path) -> None:
    """A task id the gateway does not know gets get_task's 404 message."""
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", {"task_id": "task_unknown"})
    assert "No task 'task_unknown' exists for this API key" in error_text(result)


async def test_a_refused_media_url_is_re_read_from_the_gateway_once_then_fetched_again(
    fake: FakeGateway, gateway_url: str, out: Path
) -> None:
    """403 from the media host (a stale signed URL) makes the tool re-read the task and fetch the fresh URL."""
    task_id = completed_video(fake)
    fake.fault("GET", f"/files/{task_id}.mp4", status=403)
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", {"task_id": task_id})
    assert result.is_error is False
    status = f"GET /v1/videos/generations/{task_id}"
    media = f"GET /files/{task_id}.mp4"
    assert gateway_paths(fake) == [status, media, status, media]
    assert (out / f"{task_id}.mp4").read_bytes() == MP4


async def test_a_url_past_expires_at_is_refreshed_first_and_a_gone_file_is_a_clear_error(
    gateway_url: str, fake: FakeGateway, out: Path
) -> None:
    """With expires_at in the past the task is re-read before fetching; when the host still refuses, the error
    says the file is gone and what that means."""
    clock = ManualClock()
    fake.clock = clock
    task_id = completed_video(fake)
    clock.advance(86400 + 60)
    async with connect(gateway_url, out, clock=clock) as client:
        result = await client.call_tool("download_video", {"task_id": task_id})
    assert error_text(result) == (
        f"Error executing tool download_video: The video of task {task_id} can no longer be downloaded: the media "
        f"host {gateway_url.removeprefix('http://')} answered HTTP 403, also with a fresh URL from the gateway. "
        "Result files expire about 24 h after completion. Tell the user the file is gone; making it again means "
        "creating (and paying for) a new video."
    )
    status = f"GET /v1/videos/generations/{task_id}"
    assert gateway_paths(fake) == [status, status, f"GET /files/{task_id}.mp4"]
    assert folder(out) == []


async def test_a_gone_thumbnail_does_not_fail_the_saved_video(fake: FakeGateway, gateway_url: str, out: Path) -> None:
    """When only the thumbnail cannot be fetched, the video is returned and the hint says why no thumbnail."""
    task_id = completed_video(fake)
    fake.fault("GET", f"/files/{task_id}.jpg", status=410, times=2)
    async with connect(gateway_url, out) as client:
        result = await client.call_tool("download_video", {"task_id": task_id, "include_thumbnail": True})
    assert result.structured_content is not None
    assert result.structured_content["path"] == str(out / f"{task_id}.mp4")
    assert "thumbnail_path" not in result.structured_content
    assert "The thumbnail was not saved: The thumbnail of task" in result.structured_content["hint"]
    assert folder(out) == sorted([MANIFEST_NAME, f"{task_id}.mp4"])


# --------------------------------------------------------------------------------------------- inline thumbnails


def images(result: CallToolResult) -> list[ImageContent]:
    return [item for item in result.content if isinstance(item, ImageContent)]


async def test_completed_get_task_shows_the_thumbnail_as_an_image(mcp_client: Client, fake: FakeGateway) -> None:
    """The structured Task comes with the thumbnail as an image content item, in both protocol eras."""
    task_id = completed_video(fake)
    result = await mcp_client.call_tool("get_task", {"task_id": task_id})
    assert result.is_error is False
    assert result.structured_content is not None and result.structured_content["status"] == "completed"
    text, image = result.content
    assert isinstance(text, TextContent) and json.loads(text.text) == result.structured_content
    assert isinstance(image, ImageContent)
    assert (image.mime_type, base64.b64decode(image.data)) == ("image/jpeg", JPEG)


async def test_a_wait_that_ends_completed_shows_the_thumbnail_too(mcp_client: Client, fake: FakeGateway) -> None:
    """get_task with wait_seconds returns the image once the task completed."""
    task_id = completed_video(fake)
    result = await mcp_client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 1})
    assert len(images(result)) == 1


@pytest.mark.parametrize(
    "problem",
    ["too-large-declared", "too-large-chunked", "server-error", "not-an-image", "expired"],
)
async def test_a_thumbnail_that_cannot_be_shown_is_left_out_silently(
    mcp_client: Client, fake: FakeGateway, problem: str
) -> None:
    """Over 256 KB, an error answer or a body that is not an image: the Task is returned without an image."""
    task_id = completed_video(fake)
    path = f"/files/{task_id}.jpg"
    big = b"\xff\xd8\xff" + b"\0" * (256 * 1024)
    if problem == "too-large-declared":
        fake.fault("GET", path, status=200, content=big, content_type="image/jpeg")
    elif problem == "too-large-chunked":
        fake.stream_file(path, body=big, content_type="image/jpeg", declare_length=False)
    elif problem == "server-error":
        fake.fault("GET", path, status=500)
    elif problem == "not-an-image":
        fake.fault("GET", path, status=200, text="<html>login</html>", content_type="image/jpeg")
    else:
        fake.fault("GET", path, status=403)
    result = await mcp_client.call_tool("get_task", {"task_id": task_id})
    assert result.is_error is False
    assert result.structured_content is not None and result.structured_content["status"] == "completed"
    assert images(result) == []
    assert file_requests(fake) == [path]


async def test_inline_thumbnails_can_be_turned_off(fake: FakeGateway) -> None:
    """With SORA_INLINE_THUMBNAILS=0 no thumbnail is fetched or shown."""
    task_id = completed_video(fake)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app)) as http:
        server = build_server(make_settings(inline_thumbnails=False), http_client=http)
        async with Client(server) as client:
            result = await client.call_tool("get_task", {"task_id": task_id})
    assert result.structured_content is not None and result.structured_content["thumbnail_url"].endswith(".jpg")
    assert images(result) == []
    assert file_requests(fake) == []


async def test_no_thumbnail_is_fetched_for_unfinished_or_thumbnail_less_tasks(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """A running task or a video without a thumbnail gets no image and causes no media request."""
    plain = completed_video(fake, metadata={"thumbnail": False})
    fake.video_seconds = 100
    running = completed_video(fake)
    for task_id in (plain, running):
        assert images(await mcp_client.call_tool("get_task", {"task_id": task_id})) == []
    assert file_requests(fake) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (JPEG, "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"GIF89a....", "image/gif"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "image/webp"),
        (b"<html>", None),
        (b"", None),
    ],
    ids=["jpeg", "png", "gif", "webp", "html", "empty"],
)
def test_image_types_are_recognised_by_their_first_bytes(data: bytes, expected: str | None) -> None:
    """Only real JPEG, PNG, GIF and WebP data is offered as an image."""
    assert sniff_image_type(data) == expected
