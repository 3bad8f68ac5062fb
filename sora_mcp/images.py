"""Reference images, checked before anything is sent: the declared type, the bytes' own signature, the size.

One set of rules for every way an image reaches sora-mcp: a ``data:`` URI in a tool argument, a local file (read by
``local_files.py`` and sent as a ``data:`` URI), and the thumbnails fetched to show inline. The gateway takes PNG,
JPEG, WebP and GIF.
"""

import base64
import binascii
import re

IMAGE_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp", "image/gif")
IMAGE_NAMES = "PNG, JPEG, WebP or GIF"
DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024
"""Default cap of one reference image (``SORA_MAX_IMAGE_MB``)."""

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_DATA_URI = re.compile(r"data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+);base64,(.*)", re.DOTALL | re.ASCII)
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"BM", "a BMP image; convert it to PNG or JPEG"),
    (b"II*\x00", "a TIFF image; convert it to PNG or JPEG"),
    (b"MM\x00*", "a TIFF image; convert it to PNG or JPEG"),
    (b"PK\x03\x04", "a ZIP archive"),
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


class ImageProblem(ValueError):
    """Why an image is refused, in words that name the allowed types or the limit."""


def sniff_image_type(data: bytes) -> str | None:
    """The media type of a JPEG, PNG, GIF or WebP image from its first bytes; None for anything else."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def describe_content(data: bytes) -> str:
    """What ``data`` looks like, for a refusal that says why (never quoting it): ``text``, ``a PDF document``..."""
    if not data:
        return "nothing: the file is empty"
    head = data[:512]
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "a HEIC/AVIF image; convert it to JPEG or PNG"
    for signature, description in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return description
    if _looks_like_text(head):
        if b"<svg" in head.lower():
            return "an SVG drawing (text); convert it to PNG"
        return "text"
    return "no image of those types"


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes (a character cut at the end of ``head`` allowed)."""
    if b"\x00" in head:
        return False
    for cut in range(4):  # a multi-byte character may be cut at the end
        try:
            head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def check_image_bytes(data: bytes, *, declared: str | None, max_bytes: int) -> str:
    """The media type of ``data`` when it is an allowed image within ``max_bytes`` (and, when a type was
    declared, of that type); raises ``ImageProblem`` otherwise."""
    if len(data) > max_bytes:
        raise ImageProblem(f"is {megabytes(len(data))}, over the {megabytes(max_bytes)} limit (SORA_MAX_IMAGE_MB)")
    found = sniff_image_type(data[:16])
    if found is None:
        raise ImageProblem(f"is not a {IMAGE_NAMES} image (its bytes are {describe_content(data)})")
    if declared is not None and found != declared:
        raise ImageProblem(f"says {declared} but its bytes are {found}; declare the type the bytes have")
    return found


def check_data_uri(uri: str, *, max_bytes: int) -> str:
    """``uri`` (``data:image/<type>;base64,<data>``) when its declared type is allowed, its payload is valid
    base64 of at most ``max_bytes`` and the decoded bytes are an image of that type; raises ``ImageProblem``."""
    match = _DATA_URI.fullmatch(uri)
    if match is None:
        raise ImageProblem("must be an http(s) URL or a data:image/<type>;base64,<data> URI")
    declared = _ALIASES.get(match.group(1).lower(), match.group(1).lower())
    if declared not in IMAGE_TYPES:
        raise ImageProblem(f"is a data: URI of type {match.group(1)}; allowed: {', '.join(IMAGE_TYPES)}")
    payload = match.group(2)
    if len(payload) > (max_bytes + 2) // 3 * 4 + 4:  # refused before decoding: base64 is 4/3 of the bytes
        raise ImageProblem(f"is over the {megabytes(max_bytes)} limit (SORA_MAX_IMAGE_MB)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem("is a data: URI whose base64 payload is not valid base64") from None
    check_image_bytes(data, declared=declared, max_bytes=max_bytes)
    return uri


def megabytes(size: int) -> str:
    """``size`` bytes in MiB, as every size message shows it (``12.3 MB``)."""
    return f"{size / (1024 * 1024):.1f} MB"
