"""Saving finished videos (and thumbnails) to disk. No MCP here; the bytes move through ``transfer.py``.

Names are confined to one output folder: a caller-given name is a plain file name (no separators, no ``..``,
no hidden or reserved names), and a name that is a symbolic link is refused rather than written through.

Re-downloading is idempotent. A small manifest in the output folder (``.sora-mcp-downloads.json``) records, per
file, the task, size, modification time and SHA-256 we wrote; a file still matching its record is returned at
once without touching the network (so it works after the URL expired). Without a matching record the file is
fetched to a temporary file and compared by size and hash: the same content keeps the existing file as it is,
different content is refused (:class:`FileConflictError`), never overwritten.

Expired URLs (``expires_at`` in the past, or the media host answering 403, 404 or 410) are re-read from the
gateway once, then retried once with the fresh URL; after that the error says the file is gone.

:func:`download_task_video` returns facts (:class:`SavedVideo`); the MCP face writes the hint.
"""

import contextlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from sora_mcp.client import SoraClient
from sora_mcp.config import Settings
from sora_mcp.errors import (
    DownloadError,
    FileConflictError,
    InvalidArgumentError,
    MediaExpiredError,
    OutputDirError,
    TaskNotReadyError,
)
from sora_mcp.models import MAX_WAIT_SECONDS, Task
from sora_mcp.transfer import ByteProgress, SavedFile, save_url

logger = logging.getLogger(__name__)

APP_FOLDER = "sora-mcp"
MANIFEST_NAME = ".sora-mcp-downloads.json"
MAX_NAME_BYTES = 200
_IMAGE_SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp", ".gif": ".gif"}
_FORBIDDEN_CHARACTERS = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


# --------------------------------------------------------------------------------------------- where files go


def default_output_dir() -> Path:
    """``<Videos>/sora-mcp``, or ``<Downloads>/sora-mcp`` when there is no Videos folder (created on demand)."""
    from platformdirs import user_downloads_dir, user_videos_dir  # only a download pays for this import

    videos, downloads = Path(user_videos_dir()), Path(user_downloads_dir())
    base = videos if videos.is_dir() or not downloads.is_dir() else downloads
    return base / APP_FOLDER


def check_filename(name: str) -> str:
    """A caller-given file name made safe: a plain name inside the output folder, ending in ``.mp4``.

    Raises ``InvalidArgumentError('filename', ...)`` for separators, ``..``, absolute or drive paths, hidden
    names (they would hide the file, and our temporary files start with a dot), control characters,
    characters Windows forbids, reserved device names and names over 200 bytes.
    """
    name = name.strip()
    if not name.lower().endswith(".mp4"):
        name += ".mp4"
    problem = None
    if name == ".mp4":
        problem = "is empty"
    elif _FORBIDDEN_CHARACTERS.search(name):
        problem = 'must be a plain file name: no folders, no "/", "\\", ":" or control characters'
    elif name.startswith("."):
        problem = "must not start with '.'"
    elif _WINDOWS_RESERVED.match(name):
        problem = "is a reserved device name on Windows"
    elif len(name.encode()) > MAX_NAME_BYTES:
        problem = f"is longer than {MAX_NAME_BYTES} bytes"
    if problem:
        raise InvalidArgumentError(
            "filename", f"{problem}. Give a name like 'beach-sunset.mp4'; it is saved in the output folder."
        )
    return name


def default_filename(task_id: str) -> str:
    """``<task_id>.mp4``, with the ``:`` that some gateway ids contain (and Windows forbids) made ``_``."""
    return task_id.replace(":", "_") + ".mp4"


def prepare_output_dir(directory: Path) -> Path:
    """Create the output folder if needed and return its resolved path."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        resolved = directory.resolve(strict=True)
    except OSError as exc:
        raise OutputDirError(
            f"Cannot create the output folder {directory} ({exc.strerror or exc}). Set SORA_OUTPUT_DIR to a "
            "writable folder and restart the server."
        ) from None
    if not resolved.is_dir():
        raise OutputDirError(f"The output path {directory} is not a folder. Set SORA_OUTPUT_DIR to a folder.")
    return resolved


def existing_dir(directory: Path) -> Path | None:
    """The resolved folder if it exists (nothing is created), else None."""
    return directory.resolve() if directory.is_dir() else None


def confined_path(directory: Path, name: str) -> Path:
    """``directory / name``, refusing a name that is a symbolic link or would resolve outside ``directory``."""
    target = directory / name
    if target.is_symlink():
        raise FileConflictError(
            f"'{name}' in {directory} is a symbolic link; it is never written through. Pass another filename."
        )
    if target.resolve().parent != directory:
        raise InvalidArgumentError("filename", f"'{name}' would be saved outside the output folder {directory}")
    return target


# --------------------------------------------------------------------------------------------- the manifest

Role = Literal["video", "thumbnail"]


def _load_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def _record(directory: Path, saved: SavedFile, task_id: str, role: Role) -> None:
    """Remember a saved file. Best effort: without a record, the next call compares hashes instead."""
    files = _load_manifest(directory)
    try:
        stat = saved.path.stat()
    except OSError:
        return
    files[saved.path.name] = {
        "task_id": task_id,
        "role": role,
        "bytes": saved.size,
        "sha256": saved.sha256,
        "mtime_ns": stat.st_mtime_ns,
        "content_type": saved.content_type,
    }
    text = json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True)
    try:
        _write_atomically(directory / MANIFEST_NAME, text.encode())
    except OSError as exc:
        logger.debug("Could not update the download manifest in %s: %s", directory, exc)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def find_recorded(directory: Path, task_id: str, role: Role, name: str | None = None) -> SavedFile | None:
    """A file recorded for ``task_id`` (named ``name``, or any name) that is still exactly as we wrote it."""
    for file_name, entry in _load_manifest(directory).items():
        if entry.get("task_id") != task_id or entry.get("role") != role or (name and file_name != name):
            continue
        path = directory / file_name
        try:
            if path.is_symlink() or _MANIFEST_SEPARATORS.search(file_name):
                continue
            stat = path.stat()
        except OSError:
            continue
        if stat.st_size == entry.get("bytes") and stat.st_mtime_ns == entry.get("mtime_ns"):
            sha256, content_type = entry.get("sha256"), entry.get("content_type")
            if isinstance(sha256, str):
                kind = content_type if isinstance(content_type, str) else None
                return SavedFile(path, stat.st_size, sha256, kind, reused=True)
    return None


_MANIFEST_SEPARATORS = re.compile(r"[/\\]|^\.\.?$")


# --------------------------------------------------------------------------------------------- a task's files


class SavedVideo(NamedTuple):
    """What :func:`download_task_video` did: the files it saved or found, and what it could not save."""

    task_id: str
    video: SavedFile
    thumbnail: SavedFile | None
    wanted_thumbnail: bool
    has_thumbnail: bool
    """Whether the gateway gives a thumbnail for the task (True when the saved files were found without asking)."""
    thumbnail_problem: str | None = None


async def download_task_video(
    client: SoraClient,
    settings: Settings,
    task_id: str,
    *,
    filename: str | None,
    include_thumbnail: bool,
    now: float,
    on_progress: ByteProgress | None = None,
) -> SavedVideo:
    """Save the video of a completed task (and its thumbnail) into ``SORA_OUTPUT_DIR``; see the module docstring.

    ``settings`` gives the folder, the size cap (``SORA_MAX_DOWNLOAD_MB``) and the stall timeout (``SORA_TIMEOUT``).
    """
    output_dir = settings.output_dir or default_output_dir()
    max_bytes, read_timeout = settings.max_download_bytes, settings.timeout
    name = check_filename(filename) if filename is not None else None
    video = thumbnail = None
    if existing := existing_dir(output_dir):  # earlier downloads, or a name to refuse, exist only there
        video = find_recorded(existing, task_id, "video", name)
        thumbnail = find_recorded(existing, task_id, "thumbnail") if include_thumbnail else None
        if video is not None and (thumbnail is not None or not include_thumbnail):
            return SavedVideo(task_id, video, thumbnail, include_thumbnail, has_thumbnail=True)
        if video is None:
            confined_path(existing, name or default_filename(task_id))

    fetcher = await completed_video_media(client, task_id, now=now)
    directory = prepare_output_dir(output_dir)  # created only once there is something to save
    if video is None:
        target = confined_path(directory, name or default_filename(task_id))
        video = await fetcher.save(
            "video_url", target, max_bytes=max_bytes, read_timeout=read_timeout, on_progress=on_progress
        )
        _record(directory, video, task_id, "video")
    thumbnail_problem = None
    if include_thumbnail and thumbnail is None and (url := fetcher.task.thumbnail_url):
        suffix = _IMAGE_SUFFIXES.get(Path(urlsplit(url).path).suffix.lower(), ".jpg")
        try:  # the video is saved by now: a thumbnail problem is reported in the hint, not as a failure
            target = confined_path(directory, video.path.stem + suffix)
            thumbnail = await fetcher.save("thumbnail_url", target, max_bytes=max_bytes, read_timeout=read_timeout)
        except DownloadError as exc:
            thumbnail_problem = str(exc)
        else:
            _record(directory, thumbnail, task_id, "thumbnail")
    has_thumbnail = fetcher.task.thumbnail_url is not None
    return SavedVideo(task_id, video, thumbnail, include_thumbnail, has_thumbnail, thumbnail_problem)


async def completed_video_media(
    client: SoraClient, task_id: str, *, now: float, tool: str = "download_video"
) -> "TaskMedia":
    """The media of a completed video task, read from the gateway, its URLs refreshed once if ``expires_at`` has
    passed. Raises ``TaskNotReadyError`` (its advice names ``tool``) when the task has no video to fetch."""
    media = TaskMedia(client, task_id, await client.get_task(task_id), tool=tool)
    media.check_downloadable()
    if media.task.expires_at is not None and media.task.expires_at <= now:
        await media.refresh()
    return media


class TaskMedia:
    """The media of one task, with the one-time refresh of expired URLs shared by the video and thumbnail (and by
    ``inspect_video``, which streams the video to a temporary file the same way)."""

    def __init__(self, client: SoraClient, task_id: str, task: Task, *, tool: str = "download_video") -> None:
        self.client = client
        self.task_id = task_id
        self.task = task
        self.tool = tool
        self.refreshed = False

    def check_downloadable(self) -> None:
        task, task_id = self.task, self.task_id
        if task.kind != "video":
            raise TaskNotReadyError(
                f"Task {task_id} is a character task; only videos can be downloaded.",
                task_id=task_id,
                status=task.status,
            )
        if task.status == "failed":
            reason = task.error.message if task.error else "no reason given"
            raise TaskNotReadyError(
                f"Task {task_id} failed ({reason}); it has no video to download.",
                task_id=task_id,
                status=task.status,
            )
        if task.status != "completed":
            raise TaskNotReadyError(
                f"Task {task_id} is {task.status} ({task.progress}%), so there is no video yet. Call get_task "
                f"with task_id='{task_id}' and wait_seconds={MAX_WAIT_SECONDS} until it is completed, then "
                f"{self.tool}.",
                task_id=task_id,
                status=task.status,
            )
        if not task.video_url:
            raise TaskNotReadyError(
                f"Task {task_id} is completed but the gateway gave no video URL. Try again in a minute; if "
                "it persists, check the task on the gateway.",
                task_id=task_id,
                status=task.status,
            )

    async def refresh(self) -> None:
        """Re-read the task from the gateway once, for fresh media URLs."""
        self.refreshed = True
        self.task = await self.client.get_task(self.task_id, kind="video")
        self.check_downloadable()

    async def save(
        self,
        field: Literal["video_url", "thumbnail_url"],
        target: Path,
        *,
        max_bytes: int,
        read_timeout: float,
        on_progress: ByteProgress | None = None,
    ) -> SavedFile:
        while True:
            url = getattr(self.task, field)
            if not url:
                raise DownloadError(f"The gateway no longer gives a {field} for task {self.task.task_id}.")
            try:
                return await save_url(
                    self.client.http,
                    url,
                    target,
                    headers=self.client.media_headers(url),
                    max_bytes=max_bytes,
                    read_timeout=read_timeout,
                    on_progress=on_progress,
                )
            except MediaExpiredError as exc:
                if self.refreshed:
                    raise MediaExpiredError(
                        f"The {'video' if field == 'video_url' else 'thumbnail'} of task {self.task.task_id} can no "
                        f"longer be downloaded: {exc}, also with a fresh URL from the gateway. Result files expire "
                        "about 24 h after completion. Tell the user the file is gone; making it again means "
                        "creating (and paying for) a new video.",
                        status_code=exc.status_code,
                    ) from None
                logger.info("Media URL of %s refused (%s); re-reading the task", self.task.task_id, exc)
                await self.refresh()
