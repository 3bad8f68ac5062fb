"""``inspect_video``'s service: find a task's video, look at it within bounds, compare it with the request. No MCP.

The video is the file ``download_video`` saved, when the output folder's manifest still records it unchanged (no
network then, so it works after the URL expired); else the task is read from the gateway (it must be a completed
video: ``TaskNotReadyError`` otherwise) and its ``video_url`` streamed to a temporary file with the same size cap
(``SORA_MAX_DOWNLOAD_MB``), stall timeout and expired-URL refresh as ``download_video`` (``download.TaskMedia``);
the temporary file is deleted afterwards, so nothing is left on disk.

The file is decoded by ``media_check.py`` on a worker thread, at most :data:`CONCURRENT_CHECKS` at a time, within
:data:`CHECK_DEADLINE_SECONDS` (checked at every frame by the thread; the call itself gives up a little later even
if the thread hangs inside FFmpeg). The findings are facts (:class:`Finding`); ``server/guidance.py`` words them.
"""

import json
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

import anyio
import anyio.to_thread

from sora_mcp.client import SoraClient
from sora_mcp.config import Settings
from sora_mcp.create_requests import DURATIONS
from sora_mcp.download import completed_video_media, default_output_dir, existing_dir, find_recorded
from sora_mcp.errors import JournalError
from sora_mcp.journal import Journal
from sora_mcp.media_check import MediaReport, Sample, VideoCheckError, check_video
from sora_mcp.transfer import ByteProgress

CHECK_DEADLINE_SECONDS = 30.0
CONCURRENT_CHECKS = 2
BLACK_SHARE = 0.98
"""A sample is black (or near-black) when at least this share of its pixels is darker than ``DARK_LEVEL``."""
FROZEN_MAX_CHANGE = 0.5
"""Two samples of different frames with at most this mean difference (grey levels of 255) show no motion."""
MIN_FROZEN_SECONDS = 1.0
DURATION_TOLERANCE_SECONDS = 1.0
ASPECT_TOLERANCE = 0.03
"""Relative difference of width/height to the requested ratio beyond which the aspect ratio differs."""
NAMED_RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4}

FindingKind = Literal["black", "frozen", "duration_mismatch", "aspect_ratio_mismatch"]
Source = Literal["downloaded_file", "streamed"]


class Finding(NamedTuple):
    """Something in the video the user may not want: a stretch (``start``-``end`` seconds, the times of the first and
    last sample in it) or a difference from the request (``expected`` and ``actual``, as shown to the model)."""

    kind: FindingKind
    start: float | None = None
    end: float | None = None
    expected: str | None = None
    actual: str | None = None


class Requested(NamedTuple):
    """What the create request asked for, as the journal recorded it."""

    duration: int | None
    duration_is_default: bool
    """No duration was given: ``duration`` is the shortest the model allows, which the gateway renders by default."""
    aspect_ratio: str | None


class Inspection(NamedTuple):
    """What :func:`inspect_task_video` found."""

    task_id: str
    source: Source
    path: Path | None
    """The downloaded file that was inspected (None when the video was streamed to a temporary file)."""
    report: MediaReport
    requested: Requested | None
    findings: list[Finding]


async def inspect_task_video(
    client: SoraClient,
    settings: Settings,
    journal: Journal,
    task_id: str,
    *,
    now: float,
    on_progress: ByteProgress | None = None,
) -> Inspection:
    """Inspect the video of ``task_id``; see the module docstring. Raises ``VideoCheckError`` for a file that is
    not a readable video, and the errors of ``download_video`` for one that cannot be fetched."""
    requested = await requested_of(journal, task_id)
    recorded = None
    if existing := existing_dir(settings.output_dir or default_output_dir()):
        recorded = find_recorded(existing, task_id, "video")
    if recorded is not None:
        report = await check_within_deadline(recorded.path)
        return Inspection(task_id, "downloaded_file", recorded.path, report, requested, findings(report, requested))
    media = await completed_video_media(client, task_id, now=now, tool="inspect_video")
    with tempfile.TemporaryDirectory(prefix="sora-mcp-inspect-") as directory:
        saved = await media.save(
            "video_url",
            Path(directory) / "video.mp4",
            max_bytes=settings.max_download_bytes,
            read_timeout=settings.timeout,
            on_progress=on_progress,
        )
        report = await check_within_deadline(saved.path)
    return Inspection(task_id, "streamed", None, report, requested, findings(report, requested))


_limiter: anyio.CapacityLimiter | None = None
_decoding = threading.BoundedSemaphore(CONCURRENT_CHECKS)
"""Decodes running in threads: the limiter's slot is given back when a waiting call is cancelled, while its
thread may still run until the file's own deadline; this semaphore counts the threads themselves."""


def _bounded(path: Path, *, deadline: float) -> MediaReport:
    if not _decoding.acquire(blocking=False):
        raise VideoCheckError(
            f"{CONCURRENT_CHECKS} videos are being inspected already (one may be stuck on a damaged file until "
            "its deadline): try again in a moment."
        )
    try:
        return check_video(path, deadline=deadline)
    finally:
        _decoding.release()


async def check_within_deadline(path: Path, deadline_seconds: float = CHECK_DEADLINE_SECONDS) -> MediaReport:
    """:func:`~sora_mcp.media_check.check_video` on a worker thread, given up after ``deadline_seconds``."""
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(CONCURRENT_CHECKS)
    check = partial(_bounded, path, deadline=time.monotonic() + deadline_seconds)
    try:
        with anyio.fail_after(deadline_seconds + 5):
            return await anyio.to_thread.run_sync(check, limiter=_limiter, abandon_on_cancel=True)
    except TimeoutError:
        raise VideoCheckError(
            f"Inspecting the video took longer than {deadline_seconds:g} s and was stopped; the file may be "
            "damaged or built to stall decoders."
        ) from None


async def requested_of(journal: Journal, task_id: str) -> Requested | None:
    """The duration and aspect ratio the journal's create request of ``task_id`` asked for (None when this server
    did not create the task, or the journal cannot be read: then nothing is compared)."""
    try:
        entry = await journal.get(task_id)
    except JournalError:
        return None
    if entry is None or entry.kind != "video" or not entry.arguments:
        return None
    try:
        arguments: Any = json.loads(entry.arguments)
    except ValueError:
        return None
    if not isinstance(arguments, dict):
        return None
    duration = arguments.get("duration", arguments.get("seconds"))
    duration = duration if isinstance(duration, int) and not isinstance(duration, bool) else None
    default = False
    if duration is None and entry.tool != "remix_video":  # a remix without one may keep its source's length
        allowed = DURATIONS.get(str(arguments.get("model", entry.model)))
        duration, default = (min(allowed), True) if allowed else (None, False)
    size = arguments.get("size", arguments.get("aspect_ratio"))
    aspect = size if isinstance(size, str) and _ratio(size) is not None else None
    return Requested(duration, default, aspect)


def findings(report: MediaReport, requested: Requested | None) -> list[Finding]:
    """Black and frozen stretches in the samples, then the differences from the request."""
    found = [*black_stretches(report.samples), *frozen_stretches(report.samples)]
    if requested is None:
        return found
    if requested.duration is not None and abs(report.duration - requested.duration) > DURATION_TOLERANCE_SECONDS:
        found.append(Finding("duration_mismatch", expected=f"{requested.duration} s", actual=f"{report.duration:g} s"))
    expected = _ratio(requested.aspect_ratio) if requested.aspect_ratio else None
    if expected is not None and abs(report.display_aspect / expected - 1) > ASPECT_TOLERANCE:
        shown = f"{report.width}x{report.height} ({aspect_name(report.display_aspect)})"
        found.append(Finding("aspect_ratio_mismatch", expected=requested.aspect_ratio, actual=shown))
    return found


def black_stretches(samples: list[Sample]) -> list[Finding]:
    """Runs of black or near-black samples (one sample is enough: a black flash is worth a look)."""
    runs = _runs([sample.dark_share >= BLACK_SHARE for sample in samples])
    return [Finding("black", start=samples[first].time, end=samples[last].time) for first, last in runs]


def frozen_stretches(samples: list[Sample]) -> list[Finding]:
    """Runs of at least :data:`MIN_FROZEN_SECONDS` over which consecutive (non-black) samples do not change."""
    still = [
        index > 0
        and sample.change is not None
        and sample.change <= FROZEN_MAX_CHANGE
        and samples[index - 1].dark_share < BLACK_SHARE
        for index, sample in enumerate(samples)
    ]
    stretches = []
    for first, last in _runs(still):
        start, end = samples[first - 1].time, samples[last].time  # a still sample equals the one before it
        if end - start >= MIN_FROZEN_SECONDS:
            stretches.append(Finding("frozen", start=start, end=end))
    return stretches


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(first, last) indexes of each run of True."""
    runs: list[tuple[int, int]] = []
    for index, flag in enumerate(flags):
        if not flag:
            continue
        if runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def _ratio(size: str) -> float | None:
    """Width over height of ``16:9`` or ``1280x720``; None for anything else."""
    for separator in (":", "x"):
        width, found, height = size.partition(separator)
        if found and width.strip().isdigit() and height.strip().isdigit() and int(height) > 0 and int(width) > 0:
            return int(width) / int(height)
    return None


def aspect_name(aspect: float) -> str:
    """``16:9`` (or another common ratio) when ``aspect`` is within the tolerance of it, else ``1.85:1``."""
    for name, ratio in NAMED_RATIOS.items():
        if abs(aspect / ratio - 1) <= ASPECT_TOLERANCE:
            return name
    return f"{aspect:.2f}:1"
