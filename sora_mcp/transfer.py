"""Moving bytes: a capped stream of a URL into a file, and a small image fetched into memory. No MCP here.

:func:`save_url` streams a media URL into a hidden temporary file next to the target (hashing and counting as it
goes, never holding the file in memory), enforces a size cap, flushes to disk, and only then renames the file
into place, so a cap, a dropped connection or a cancellation never leaves a partial file under the real name.
An existing file is never overwritten: the same bytes keep it as it is, other bytes are refused.

:func:`fetch_small_image` reads an image of a few hundred kilobytes at most, within a few seconds, and checks
that its bytes are an image. Downloads (``download.py``) and inline thumbnails both use this module.
"""

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, NamedTuple
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx2

from sora_mcp.errors import (
    DownloadError,
    DownloadTooLargeError,
    FileConflictError,
    MediaExpiredError,
    OutputDirError,
)
from sora_mcp.images import sniff_image_type

EXPIRED_STATUSES = frozenset({403, 404, 410})
"""What a media host answers for an expired or revoked signed URL."""
DOWNLOAD_DEADLINE_SECONDS = 900.0
"""Longest a whole download may take; a stalled one fails sooner, after SORA_TIMEOUT without data."""
PROGRESS_INTERVAL_SECONDS = 0.5
THUMBNAIL_INLINE_MAX_BYTES = 256 * 1024
THUMBNAIL_INLINE_TIMEOUT_SECONDS = 5.0

ByteProgress = Callable[[int, int | None], Awaitable[None]]
"""Called while downloading with the bytes written so far (strictly increasing) and the total when known."""


class SavedFile(NamedTuple):
    """A file in the output folder as this module wrote (or found) it."""

    path: Path
    size: int
    sha256: str
    content_type: str | None
    reused: bool = False


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


async def fetch_small_image(
    http: httpx2.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    max_bytes: int = THUMBNAIL_INLINE_MAX_BYTES,
    time_limit: float = THUMBNAIL_INLINE_TIMEOUT_SECONDS,
) -> tuple[bytes, str]:
    """Fetch an image of at most ``max_bytes`` within ``time_limit`` seconds; return its bytes and media type.

    Raises ``DownloadError`` for anything else: an error status, a bigger body, a body that is not an image.
    """
    host = urlsplit(url).netloc or url
    try:
        with anyio.fail_after(time_limit):
            async with http.stream("GET", url, headers=headers, timeout=time_limit, follow_redirects=True) as response:
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
