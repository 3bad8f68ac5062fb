"""Looking at a video file with PyAV: its facts, a contact sheet, and frames sampled for black and frozen stretches.

No MCP and no network here; :func:`check_video` is blocking CPU work for a worker thread. PyAV (FFmpeg) is imported
with this module, which only ``inspect_video`` imports, on first use.

Bounded by design, whatever the file:

* only the MP4/MOV and Matroska/WebM demuxers run (chosen from the file's first bytes, never guessed by FFmpeg,
  whose playlist demuxers would open other files), reading through a Python file object (no FFmpeg protocols);
* frames over :data:`MAX_PIXELS` are refused before decoding; decoding uses at most :data:`DECODER_THREADS` threads;
* one forward pass decodes up to the frames it samples, seeking ahead when the next sample is more than
  :data:`SEEK_AHEAD_SECONDS` away (a long video is sampled sparsely, so it is mostly skipped), and checks the
  ``deadline`` at every frame;
* samples are taken at :data:`SAMPLES_PER_SECOND` (fewer for videos over ``MAX_SAMPLES / SAMPLES_PER_SECOND``
  seconds), each reduced at once to :data:`SAMPLE_WIDTH` x :data:`SAMPLE_HEIGHT` grey levels; the contact sheet
  keeps six small tiles, never a full frame.
"""

import contextlib
import math
import time
from fractions import Fraction
from pathlib import Path
from typing import Literal, NamedTuple

import av
import av.error
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from sora_mcp.errors import SoraError
from sora_mcp.images import sniff_image_type

SHEET_FRAMES = 6
SHEET_COLUMNS = 3
SHEET_TILE_LONG_SIDE = 400
SHEET_PADDING = 4
SHEET_MAX_BYTES = 200 * 1024
JPEG_QUALITIES = (3, 5, 8, 12, 18, 25, 31)
"""mjpeg quantizer scales tried in turn (lower is better) until the sheet fits :data:`SHEET_MAX_BYTES`."""
SAMPLES_PER_SECOND = 4.0
MAX_SAMPLES = 120
SAMPLE_WIDTH, SAMPLE_HEIGHT = 64, 36
SEEK_AHEAD_SECONDS = 2.0
MAX_PIXELS = 4096 * 4096
DECODER_THREADS = 2
TRUNCATED_SHARE = 0.9
"""Frames ending before this share of the declared duration (less half a second) mean a truncated file."""

Container = Literal["mp4", "matroska"]


class VideoCheckError(SoraError):
    """The file cannot be inspected: not a video, corrupt or truncated, undecodable, or too slow to decode."""


class Sample(NamedTuple):
    """One sampled frame, reduced to :data:`SAMPLE_WIDTH` x :data:`SAMPLE_HEIGHT` grey levels (0-255)."""

    time: float
    """Seconds from the start of the video."""
    mean: float
    dark_share: float
    """Share of its pixels darker than :data:`DARK_LEVEL`."""
    change: float | None
    """Mean absolute difference to the previous sample, in grey levels; None for the first."""


DARK_LEVEL = 24


class Sheet(NamedTuple):
    """The contact sheet: one JPEG of :data:`SHEET_FRAMES` tiles, left to right, top to bottom."""

    jpeg: bytes
    times: list[float]
    columns: int
    rows: int
    width: int
    height: int


class MediaReport(NamedTuple):
    """What :func:`check_video` found in a file."""

    duration: float
    width: int
    height: int
    display_aspect: float
    """Width over height as shown (the pixel aspect ratio applied)."""
    frame_rate: float | None
    codec: str
    audio_codec: str | None
    samples: list[Sample]
    samples_per_second: float
    sheet: Sheet


def check_video(path: Path, *, deadline: float) -> MediaReport:
    """Decode what is needed of the video at ``path`` before ``deadline`` (``time.monotonic()``); see the module
    docstring. Raises :class:`VideoCheckError` saying what is wrong with the file."""
    kind = _sniff(path)
    with contextlib.ExitStack() as stack:
        file = stack.enter_context(path.open("rb"))
        try:
            container = stack.enter_context(av.open(file, "r", format="mov" if kind == "mp4" else "matroska"))
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise VideoCheckError(
                f"The file is not a readable video: it is corrupt or truncated ({_why(exc)})."
            ) from None
        try:
            return _inspect(container, deadline)
        except av.error.FFmpegError as exc:
            raise VideoCheckError(f"Decoding the video failed: it is corrupt or truncated ({_why(exc)}).") from None
        except ValueError as exc:  # PyAV's own refusals (an odd frame layout): still a file we cannot read
            raise VideoCheckError(f"The video could not be decoded ({exc}).") from None


def _why(exc: Exception) -> str:
    """FFmpeg's reason without its error number (``Invalid data found when processing input``)."""
    reason = getattr(exc, "strerror", None)
    return (reason if isinstance(reason, str) and reason else str(exc)).rstrip(".")


def _sniff(path: Path) -> Container:
    with path.open("rb") as file:
        head = file.read(16)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    image = sniff_image_type(head)
    stripped = head.lstrip().lower()
    if image is not None:
        what = f"an image ({image})"
    elif stripped.startswith((b"<!doc", b"<html", b"<?xml")):
        what = "a web page"
    elif stripped.startswith((b"{", b"[")):
        what = "JSON"
    elif not head:
        what = "empty"
    else:
        what = "not an MP4, MOV or WebM video"
    raise VideoCheckError(f"The file is not a video: it is {what}.")


def _inspect(container: InputContainer, deadline: float) -> MediaReport:
    if not container.streams.video:
        raise VideoCheckError("The file has no video track (it holds only audio or data).")
    stream = container.streams.video[0]
    codec = stream.codec_context
    width, height = codec.width, codec.height
    if width <= 0 or height <= 0:
        raise VideoCheckError("The video track declares no frame size: the file is corrupt.")
    if width * height > MAX_PIXELS:
        raise VideoCheckError(f"The video is {width}x{height}, too large to inspect (at most {MAX_PIXELS} pixels).")
    duration = _duration(container, stream)
    if duration is None or duration <= 0:
        raise VideoCheckError("The video declares no duration: the file is corrupt or truncated.")
    codec.thread_count = DECODER_THREADS
    codec.thread_type = "AUTO"
    rate = min(SAMPLES_PER_SECOND, MAX_SAMPLES / duration)
    aspect = stream.sample_aspect_ratio
    display_aspect = width / height * (float(aspect) if aspect else 1.0)
    samples, tiles = _sample(container, stream, duration, rate, display_aspect, deadline)
    frame_rate = stream.average_rate or stream.guessed_rate
    audio = container.streams.audio
    return MediaReport(
        duration=round(duration, 3),
        width=width,
        height=height,
        display_aspect=display_aspect,
        frame_rate=round(float(frame_rate), 3) if frame_rate else None,
        codec=codec.name,
        audio_codec=audio[0].codec_context.name if audio else None,
        samples=samples,
        samples_per_second=round(rate, 3),
        sheet=_sheet(tiles),
    )


def _duration(container: InputContainer, stream: VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _sample(
    container: InputContainer, stream: VideoStream, duration: float, rate: float, aspect: float, deadline: float
) -> tuple[list[Sample], list[tuple[float, VideoFrame]]]:
    """One forward pass: a grey sample at each sample time, a small tile at each contact sheet time."""
    sample_times = [index / rate for index in range(max(1, math.floor(duration * rate)))]
    sheet_times = [(index + 0.5) * duration / SHEET_FRAMES for index in range(SHEET_FRAMES)]
    targets = sorted([(t, "sample") for t in sample_times] + [(t, "sheet") for t in sheet_times])
    tile_size = _tile_size(aspect, max(stream.codec_context.width, stream.codec_context.height))
    time_base = stream.time_base or Fraction(1, 90000)
    start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    samples: list[Sample] = []
    tiles: list[tuple[float, VideoFrame]] = []
    previous: bytes | None = None
    sampled_at: float | None = None
    index, last, frames, may_seek = 0, -1.0, 0, True
    while index < len(targets):
        sought = may_seek and targets[index][0] - last > SEEK_AHEAD_SECONDS
        if sought:
            container.seek(int((targets[index][0] + start) / time_base), stream=stream, backward=True)
        before, taken, first = last, index, True
        for frame in container.decode(stream):
            if time.monotonic() > deadline:
                raise VideoCheckError(f"Decoding took too long; stopped at {last:.1f} s of {duration:.1f} s.")
            frames += 1
            at = (frame.time - start) if frame.time is not None else last + 1 / 24
            if sought and first and at < before:
                may_seek = False  # the seek went back to a key frame behind us: decoding on is cheaper
            first = False
            last = max(last, at)
            while index < len(targets) and targets[index][0] <= at:
                target, purpose = targets[index]
                index += 1
                if purpose == "sheet":
                    tiles.append((round(target, 2), frame.reformat(*tile_size, format="yuvj420p")))
                elif at != sampled_at:  # a frame sampled twice (a low frame rate) would look frozen
                    grey, sampled_at = _grey(frame), at
                    samples.append(_measure(round(target, 2), grey, previous))
                    previous = grey
            if may_seek and index > taken and index < len(targets) and targets[index][0] - last > SEEK_AHEAD_SECONDS:
                break  # seek ahead to the next target (each seek takes at least one target: no loop)
        else:
            break  # the end of the stream
    if frames == 0:
        raise VideoCheckError("The video track holds no decodable frame: the file is corrupt or truncated.")
    if last < duration * TRUNCATED_SHARE - 0.5:
        raise VideoCheckError(
            f"The file is truncated: its frames end at {last:.1f} s although it declares {duration:.1f} s."
        )
    return samples, tiles


def _grey(frame: VideoFrame) -> bytes:
    plane = frame.reformat(SAMPLE_WIDTH, SAMPLE_HEIGHT, format="gray").planes[0]
    data, stride = bytes(plane), plane.line_size
    return b"".join(data[row * stride : row * stride + SAMPLE_WIDTH] for row in range(SAMPLE_HEIGHT))


def _measure(at: float, grey: bytes, previous: bytes | None) -> Sample:
    count = len(grey)
    change = None if previous is None else sum(abs(a - b) for a, b in zip(grey, previous, strict=True)) / count
    dark = sum(1 for value in grey if value < DARK_LEVEL) / count
    return Sample(at, sum(grey) / count, dark, change)


def _tile_size(aspect: float, longest: int) -> tuple[int, int]:
    """Even width and height in the displayed aspect, the longer side :data:`SHEET_TILE_LONG_SIDE` (or the video's
    own, when smaller: small videos are not enlarged)."""
    long_side = max(16, min(SHEET_TILE_LONG_SIDE, longest) // 2 * 2)
    if aspect >= 1:
        return long_side, max(2, round(long_side / aspect / 2) * 2)
    return max(2, round(long_side * aspect / 2) * 2), long_side


# --------------------------------------------------------------------------------------------- the contact sheet

_GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    ".": "000000000000010",
    "s": "000111100011110",
}
"""A 3x5 pixel font for the time labels (FFmpeg's drawtext needs fonts the PyAV wheels do not ship)."""
GLYPH_SCALE = 3


def _sheet(tiles: list[tuple[float, VideoFrame]]) -> Sheet:
    """The tiles on one grid, each labelled with its time, as a JPEG under :data:`SHEET_MAX_BYTES`."""
    times = [at for at, _ in tiles]
    if not tiles:
        raise VideoCheckError("No frame of the video could be decoded for the contact sheet.")
    columns = min(SHEET_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    tile_width, tile_height = tiles[0][1].width, tiles[0][1].height
    width = columns * tile_width + (columns + 1) * SHEET_PADDING
    height = rows * tile_height + (rows + 1) * SHEET_PADDING
    sheet = VideoFrame(width, height, "yuvj420p")
    planes = []
    for number, plane in enumerate(sheet.planes):
        shift = 0 if number == 0 else 1
        canvas = bytearray([255 if number == 0 else 128]) * plane.buffer_size  # white, without colour
        for position, (at, tile) in enumerate(tiles):
            source = tile.planes[number]
            left = (SHEET_PADDING + (position % columns) * (tile_width + SHEET_PADDING)) >> shift
            top = (SHEET_PADDING + (position // columns) * (tile_height + SHEET_PADDING)) >> shift
            data, stride = bytes(source), source.line_size
            for row in range(source.height):
                start = (top + row) * plane.line_size + left
                canvas[start : start + source.width] = data[row * stride : row * stride + source.width]
            if number == 0:
                _label(canvas, plane.line_size, left + 4, top + 4, f"{at:g}s", room=(tile_width - 8, tile_height - 8))
        planes.append(canvas)
    for plane, canvas in zip(sheet.planes, planes, strict=True):
        plane.update(bytes(canvas))
    return Sheet(_jpeg(sheet), times, columns, rows, width, height)


def _label(canvas: bytearray, stride: int, left: int, top: int, text: str, *, room: tuple[int, int]) -> None:
    """White glyphs on a black box, drawn into a luma plane; left out when the tile has no ``room`` for them
    (a tiny or very wide video: the times are in the result's data too)."""
    scale, advance = GLYPH_SCALE, 4 * GLYPH_SCALE
    box_width, box_height = len(text) * advance + scale, 7 * scale
    if box_width > room[0] or box_height > room[1]:
        return
    for row in range(box_height):
        start = (top + row) * stride + left
        canvas[start : start + box_width] = bytes(box_width)
    for position, character in enumerate(text):
        glyph = _GLYPHS.get(character, "0" * 15)
        for bit, on in enumerate(glyph):
            if on == "1":
                x = left + scale + position * advance + (bit % 3) * scale
                y = top + scale + (bit // 3) * scale
                for row in range(scale):
                    canvas[(y + row) * stride + x : (y + row) * stride + x + scale] = b"\xff" * scale


def _jpeg(frame: VideoFrame) -> bytes:
    """``frame`` as a JPEG, at the best quality that fits :data:`SHEET_MAX_BYTES`."""
    data = b""
    for quality in JPEG_QUALITIES:
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "yuvj420p"
        encoder.time_base = Fraction(1, 1)
        encoder.options = {"qmin": str(quality), "qmax": str(quality)}
        data = b"".join(bytes(packet) for packet in [*encoder.encode(frame), *encoder.encode(None)])
        if len(data) <= SHEET_MAX_BYTES:
            return data
    raise VideoCheckError(f"The contact sheet stays over {SHEET_MAX_BYTES} bytes even at the lowest JPEG quality.")
