"""Saving finished videos (and thumbnails) to disk, and fetching a small thumbnail to show inline. No MCP here.

A download streams the media URL into a hidden temporary file next to the target (hashing and counting as it
goes, never holding the file in memory), enforces a size cap, flushes to disk, and only then renames the file
into place, so a cap, a dropped connection or a cancellation never leaves a partial file under the real name.

Names are confined to one output folder: a caller-given name is a plain file name (no separators, no ``..``,
no hidden or reserved names), and a name that is a symbolic link is refused rather than written through.

Re-downloading is idempotent. A small manifest in the output folder (``.sora-mcp-downloads.json``) records, per
file, the task, size, modification time and SHA-256 we wrote; a file still matching its record is returned at
once without touching the network (so it works after the URL expired). Without a matching record the file is
fetched to a temporary file and compared by size and hash: the same content keeps the existing file as it is,
different content is refused (:class:`FileConflictError`), never overwritten.

Expired URLs (``expires_at`` in the past, or the media host answering 403, 404 or 410) are re-read from the
gateway once, then retried once with the fresh URL; after that the error says the file is gone.
"""

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx2

from sora_mcp.client import SoraClient
from sora_mcp.errors import (
    DownloadError,
    DownloadTooLargeError,
    FileConflictError,
    InvalidArgumentError,
    MediaExpiredError,
    OutputDirError,
    TaskNotReadyError,
)
from sora_mcp.models import DownloadResult, Task

logger = logging.getLogger(__name__)

APP_FOLDER = "sora-mcp"
MANIFEST_NAME = ".sora-mcp-downloads.json"
EXPIRED_STATUSES = frozenset({403, 404, 410})
"""What a media host answers for an expired or revoked signed URL."""
DOWNLOAD_DEADLINE_SECONDS = 900.0
"""Longest a whole download may take; a stalled one fails sooner, after SORA_TIMEOUT without data."""
PROGRESS_INTERVAL_SECONDS = 0.5
THUMBNAIL_INLINE_MAX_BYTES = 256 * 1024
THUMBNAIL_INLINE_TIMEOUT_SECONDS = 5.0
MAX_NAME_BYTES = 200
_IMAGE_SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp", ".gif": ".gif"}
_FORBIDDEN_CHARACTERS = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)

ByteProgress = Callable[[int, int | None], Awaitable[None]]
"""Called while downloading with the bytes written so far (strictly increasing) and the total when known."""


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


class SavedFile(NamedTuple):
    """A file in the output folder as this module wrote (or found) it."""

    path: Path
    size: int
    sha256: str
    content_type: str | None
    reused: bool = False


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


# --------------------------------------------------------------------------------------------- streaming


async def save_url(
    http: httpx2.AsyncClient,
    url: str,
    target: Path,
    *,
    headers: dict[str, str],
    max_bytes: int,
    read_timeout: float,
    on_progress: ByteProgress | None = None,
) -> SavedFile:
    """Stream ``url`` into ``target``'s folder and move it into place; see the module docstring.

    Raises ``MediaExpiredError`` for 403/404/410 (the caller may refresh the URL), ``DownloadTooLargeError``,
    ``FileConflictError``, ``OutputDirError`` or ``DownloadError``; the target is then untouched.
    """
    host = urlsplit(url).netloc or url
    timeout = httpx2.Timeout(read_timeout, connect=min(read_timeout, 10.0))
    temporary: Path | None = None
    try:
        with anyio.fail_after(DOWNLOAD_DEADLINE_SECONDS):
            async with http.stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as response:
                content_type = _check_response(response, host, max_bytes)
                total = _content_length(response)
                temporary, size, sha256 = await _stream_to_temporary(
                    response, target, max_bytes=max_bytes, total=total, on_progress=on_progress
                )
        reused = await anyio.to_thread.run_sync(_move_into_place, temporary, target, size, sha256)
        return SavedFile(target, size, sha256, content_type, reused=reused)
    except TimeoutError:
        raise DownloadError(
            f"The download from {host} took longer than {DOWNLOAD_DEADLINE_SECONDS:.0f} s and was stopped. "
            "Try download_video again later."
        ) from None
    except httpx2.TimeoutException:
        raise DownloadError(
            f"The media host {host} sent nothing for {read_timeout:g} s; the download was stopped. Try "
            "download_video again (SORA_TIMEOUT sets this limit)."
        ) from None
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise DownloadError(
            f"The download from {host} broke off ({type(exc).__name__}: {exc}). Nothing was saved; try "
            "download_video again."
        ) from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)  # still there unless it was renamed into place


def _check_response(response: httpx2.Response, host: str, max_bytes: int) -> str | None:
    """The media type of a usable answer; raises for expired URLs, errors, HTML pages and oversize files."""
    status = response.status_code
    if status in EXPIRED_STATUSES:
        raise MediaExpiredError(f"the media host {host} answered HTTP {status}", status_code=status)
    if not response.is_success:
        raise DownloadError(f"The media host {host} answered HTTP {status}. Try download_video again later.")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower() or None
    if content_type in ("text/html", "application/xhtml+xml"):
        raise DownloadError(f"The media host {host} answered with an HTML page instead of the file.")
    total = _content_length(response)
    if total is not None and total > max_bytes:
        raise _too_large(total, max_bytes)
    return content_type


def _content_length(response: httpx2.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() and not response.headers.get("content-encoding") else None


def _too_large(size: int | None, max_bytes: int) -> DownloadTooLargeError:
    mb = 1024 * 1024
    what = f"is {size / mb:.1f} MB, over" if size is not None else "is over"
    return DownloadTooLargeError(
        f"The file {what} the {max_bytes / mb:g} MB limit (SORA_MAX_DOWNLOAD_MB). Nothing was saved. "
        "Raise SORA_MAX_DOWNLOAD_MB to allow it, or give the user video_url to download it themselves.",
        limit_bytes=max_bytes,
    )


async def _stream_to_temporary(
    response: httpx2.Response, target: Path, *, max_bytes: int, total: int | None, on_progress: ByteProgress | None
) -> tuple[Path, int, str]:
    """Write the body to a new hidden file beside ``target``; return it with its size and SHA-256."""
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise _unwritable(target.parent, exc) from None
    temporary = Path(name)
    digest = hashlib.sha256()
    size = 0
    reported = 0
    last_report = anyio.current_time()
    try:
        with os.fdopen(fd, "wb") as raw:
            file = anyio.wrap_file(raw)
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(total, max_bytes)
                digest.update(chunk)
                await _write(file, chunk, target.parent)
                now = anyio.current_time()
                if on_progress is not None and size > reported and now - last_report >= PROGRESS_INTERVAL_SECONDS:
                    reported, last_report = size, now
                    await on_progress(size, total)
            await _flush_to_disk(raw, target.parent)
        if total is not None and size != total:
            raise DownloadError(f"The media host sent {size} of {total} bytes. Nothing was saved; try again.")
        if on_progress is not None and size > reported:
            await on_progress(size, total)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary, size, digest.hexdigest()


async def _write(file: anyio.AsyncFile[bytes], chunk: bytes, directory: Path) -> None:
    try:
        await file.write(chunk)
    except OSError as exc:
        raise _unwritable(directory, exc) from None


async def _flush_to_disk(raw: IO[bytes], directory: Path) -> None:
    def flush() -> None:
        raw.flush()
        os.fsync(raw.fileno())

    try:
        await anyio.to_thread.run_sync(flush)
    except OSError as exc:
        raise _unwritable(directory, exc) from None


def _unwritable(directory: Path, exc: OSError) -> OutputDirError:
    return OutputDirError(
        f"Cannot write into the output folder {directory} ({exc.strerror or exc}). Nothing was saved. Set "
        "SORA_OUTPUT_DIR to a writable folder with free space and restart the server."
    )


def _move_into_place(temporary: Path, target: Path, size: int, sha256: str) -> bool:
    """Rename the finished file to ``target``; True when ``target`` already held the same bytes (kept as is).

    Blocking (it may hash an existing file): run it in a worker thread.
    """
    if target.is_symlink():
        raise FileConflictError(f"'{target.name}' is a symbolic link; it is never written through.")
    if target.exists():
        if not (target.is_file() and target.stat().st_size == size and _sha256_of(target) == sha256):
            raise FileConflictError(
                f"'{target.name}' already exists in {target.parent} with different content and is never "
                "overwritten. Pass another filename, or ask the user to move that file away."
            )
        return True
    try:
        os.replace(temporary, target)
    except OSError as exc:
        raise _unwritable(target.parent, exc) from None
    return False


def _sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            sha.update(chunk)
    return sha.hexdigest()


# --------------------------------------------------------------------------------------------- a task's files


async def download_task_video(
    client: SoraClient,
    task_id: str,
    *,
    output_dir: Path,
    filename: str | None,
    include_thumbnail: bool,
    max_bytes: int,
    read_timeout: float,
    now: float,
    on_progress: ByteProgress | None = None,
) -> DownloadResult:
    """Save the video of a completed task (and its thumbnail) into ``output_dir``; see the module docstring."""
    name = check_filename(filename) if filename is not None else None
    video = thumbnail = None
    if existing := existing_dir(output_dir):  # earlier downloads, or a name to refuse, exist only there
        video = find_recorded(existing, task_id, "video", name)
        thumbnail = find_recorded(existing, task_id, "thumbnail") if include_thumbnail else None
        if video is not None and (thumbnail is not None or not include_thumbnail):
            return _result(task_id, video, thumbnail, include_thumbnail, has_thumbnail=True)
        if video is None:
            confined_path(existing, name or default_filename(task_id))

    fetcher = _TaskFiles(client, task_id, await client.get_task(task_id))
    fetcher.check_downloadable()
    directory = prepare_output_dir(output_dir)  # created only once there is something to save
    if fetcher.task.expires_at is not None and fetcher.task.expires_at <= now:
        await fetcher.refresh()
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
    result = _result(task_id, video, thumbnail, include_thumbnail, has_thumbnail=fetcher.task.thumbnail_url is not None)
    if thumbnail_problem:
        result.hint += f" The thumbnail was not saved: {thumbnail_problem}"
    return result


class _TaskFiles:
    """The media of one task, with the one-time refresh of expired URLs shared by the video and thumbnail."""

    def __init__(self, client: SoraClient, task_id: str, task: Task) -> None:
        self.client = client
        self.task_id = task_id
        self.task = task
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
                f"with task_id='{task_id}' and wait_seconds=50 until it is completed, then download_video.",
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


def _result(
    task_id: str, video: SavedFile, thumbnail: SavedFile | None, wanted_thumbnail: bool, *, has_thumbnail: bool
) -> DownloadResult:
    size = human_size(video.size)
    if video.reused:
        hint = f"The video was already saved at {video.path} ({size}); nothing was downloaded again."
    else:
        hint = f"Saved the video to {video.path} ({size})."
    if thumbnail is not None:
        hint += f" Thumbnail: {thumbnail.path}."
    elif wanted_thumbnail and not has_thumbnail:
        hint += " The gateway gave no thumbnail for this video."
    hint += " Tell the user where the file is."
    return DownloadResult(
        task_id=task_id,
        path=str(video.path),
        bytes=video.size,
        sha256=video.sha256,
        content_type=video.content_type,
        thumbnail_path=str(thumbnail.path) if thumbnail else None,
        already_downloaded=video.reused,
        hint=hint,
    )


def human_size(size: int) -> str:
    """``5.0 MB``, ``41 KB`` or ``512 bytes``."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"


# --------------------------------------------------------------------------------------------- inline thumbnail

_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image_type(data: bytes) -> str | None:
    """The media type of a JPEG, PNG, GIF or WebP image from its first bytes; None for anything else."""
    for signature, media_type in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def fetch_small_image(
    client: SoraClient,
    url: str,
    *,
    max_bytes: int = THUMBNAIL_INLINE_MAX_BYTES,
    time_limit: float = THUMBNAIL_INLINE_TIMEOUT_SECONDS,
) -> tuple[bytes, str]:
    """Fetch an image of at most ``max_bytes`` within ``time_limit`` seconds; return its bytes and media type.

    Raises ``DownloadError`` for anything else: an error status, a bigger body, a body that is not an image.
    """
    host = urlsplit(url).netloc or url
    try:
        with anyio.fail_after(time_limit):
            async with client.http.stream(
                "GET", url, headers=client.media_headers(url), timeout=time_limit, follow_redirects=True
            ) as response:
                if not response.is_success:
                    raise DownloadError(f"{host} answered HTTP {response.status_code}")
                declared = _content_length(response)
                if declared is not None and declared > max_bytes:
                    raise DownloadError(f"the image is {declared} bytes, over the {max_bytes} byte cap")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise DownloadError(f"the image is over the {max_bytes} byte cap")
    except TimeoutError:
        raise DownloadError(f"{host} did not send the image within {time_limit:g} s") from None
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise DownloadError(f"fetching the image from {host} failed ({type(exc).__name__})") from None
    media_type = sniff_image_type(bytes(data[:16]))
    if media_type is None:
        raise DownloadError(f"{host} answered with something that is not a JPEG, PNG, GIF or WebP image")
    return bytes(data), media_type
