"""Local reference images: ``images`` entries that are paths or ``file://`` URIs, read inside ``SORA_FILE_ROOTS`` and
sent as ``data:`` URIs.

An entry is local when it is an absolute path, starts with ``~``, or is a ``file:`` URI (``file:///abs/path`` or
``file://localhost/abs/path``, percent-decoded; another host is refused). :func:`prepare_images` runs in the tool
layer before the request is validated; the file system is only touched in a worker thread, never on the event
loop. For each local entry, in order:

1. confinement: the path is resolved with every symbolic link and ``..`` followed (``os.path.realpath``) and must
   then lie inside one of the resolved roots (``Path.is_relative_to``). This comes before any other check, so a path
   outside the roots reveals nothing about what is there;
2. ``stat``: a regular file (not a folder, device, FIFO or socket) no larger than ``SORA_MAX_IMAGE_MB``, checked
   before opening; then opened without following a final symbolic link and without blocking (a FIFO swapped in
   cannot hang the server), checked again on the open descriptor, and read to at most the cap plus one byte (a file
   that grows meanwhile is refused, memory stays bounded);
3. the bytes must be PNG, JPEG, WebP or GIF by their signature (``images.py``), whatever the file's name says.

The entry then becomes ``data:<sniffed type>;base64,...`` and follows the ``data:`` URI path: validation, the
payload, the request hash (so the same content is the same request, whatever its path or name) and the journal,
which keeps the type, size and digest, never the bytes. Problems name the entry: ``images[1] (~/cat.txt): not a
PNG, JPEG, WebP or GIF image (its bytes are text)``; file contents are never quoted.
"""

import base64
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote, urlsplit

import anyio.to_thread

from sora_mcp.images import IMAGE_NAMES, describe_content, megabytes, sniff_image_type

if TYPE_CHECKING:  # config imports the request models, which import is_local from here
    from sora_mcp.config import Settings

MAX_SHOWN_CHARS = 240
"""An entry longer than this is shortened in messages (its start and its end are kept)."""
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_WINDOWS_DRIVE = re.compile(r"/[A-Za-z]:[/\\]")
_READ_CHUNK = 1024 * 1024


class LocalImageProblem(ValueError):
    """Why one local entry cannot be sent, in words that follow ``images[i] (entry): ``."""


@dataclass(frozen=True)
class PreparedImages:
    """``images`` with every local entry replaced by its ``data:`` URI, or the problems of those that could not be."""

    images: list[str] | None
    problems: tuple[str, ...] = ()
    """One ``images[i] (entry): reason`` per local entry refused; empty when every one was read."""


def is_local(entry: str) -> bool:
    """Whether ``entry`` names a local file: an absolute path, ``~...``, or a ``file:`` URI."""
    entry = entry.strip()
    return entry[:5].lower() == "file:" or entry.startswith("~") or os.path.isabs(entry)


async def prepare_images(images: list[str] | None, settings: "Settings") -> PreparedImages:
    """``images`` ready to validate: local entries read (in a worker thread) and turned into ``data:`` URIs.

    Lists longer than the request allows are left as they are (validation refuses them without reading anything).
    """
    from sora_mcp.create_requests import MAX_IMAGES

    if not images or len(images) > MAX_IMAGES or not any(is_local(entry) for entry in images):
        return PreparedImages(images)
    return await anyio.to_thread.run_sync(_prepare, images, settings)


def _prepare(images: list[str], settings: "Settings") -> PreparedImages:
    roots, off = _allowed_roots(settings)
    prepared: list[str] = []
    problems: list[str] = []
    for index, entry in enumerate(images):
        if not is_local(entry):
            prepared.append(entry)
            continue
        try:
            if off is not None:
                raise LocalImageProblem(off)
            prepared.append(read_image(entry.strip(), roots, settings.max_image_bytes, _roots_shown(settings, roots)))
        except LocalImageProblem as exc:
            problems.append(f"images[{index}] ({shown(entry.strip())}): {exc}")
            prepared.append(entry)
    return PreparedImages(prepared, tuple(problems))


def _allowed_roots(settings: "Settings") -> tuple[tuple[Path, ...], str | None]:
    """The resolved roots, or why local paths are off (no root at all)."""
    try:
        roots = settings.image_roots
    except RuntimeError:  # Path.home(): no HOME and no password entry
        return (), "local paths are off: this server has no home folder; set SORA_FILE_ROOTS to allow folders"
    if roots:
        return tuple(Path(os.path.realpath(root)) for root in roots), None
    if settings.file_roots is None:  # unset, over HTTP
        return (), (
            "local paths are off over HTTP: set SORA_FILE_ROOTS=/srv/images (folders on the server's machine) "
            "to allow them"
        )
    return (), "local paths are off (SORA_FILE_ROOTS is empty): set SORA_FILE_ROOTS=~/Pictures to allow a folder"


def _roots_shown(settings: "Settings", resolved: tuple[Path, ...]) -> str:
    if settings.file_roots is None:
        return f"SORA_FILE_ROOTS unset: the home folder {resolved[0]}"
    return "SORA_FILE_ROOTS: " + ", ".join(str(root) for root in settings.file_roots)


def read_image(entry: str, roots: tuple[Path, ...], max_bytes: int, roots_shown: str) -> str:
    """The ``data:`` URI of the image file ``entry`` names, inside one of ``roots`` (resolved folders); raises
    ``LocalImageProblem``. Blocking: call it in a worker thread."""
    path = local_path(entry)
    try:
        resolved = Path(os.path.realpath(path))
    except (OSError, ValueError) as exc:
        raise LocalImageProblem(f"unreadable ({exc})") from None
    if not inside(resolved, roots):
        raise LocalImageProblem(f"outside the allowed folders ({roots_shown})")
    try:
        info = os.stat(resolved)
    except (FileNotFoundError, NotADirectoryError):
        raise LocalImageProblem("no such file") from None
    except OSError as exc:
        raise LocalImageProblem(f"unreadable ({_reason(exc)})") from None
    _check_kind(info, max_bytes)
    data = _read_bounded(resolved, max_bytes, Confinement(info, roots, roots_shown))
    media_type = sniff_image_type(data[:16])
    if media_type is None:
        raise LocalImageProblem(f"not a {IMAGE_NAMES} image (its bytes are {describe_content(data)})")
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def inside(path: Path, roots: tuple[Path, ...]) -> bool:
    """Whether the resolved ``path`` lies in one of the resolved ``roots``."""
    return any(path.is_relative_to(root) for root in roots)


def local_path(entry: str) -> Path:
    """The absolute path ``entry`` names (``~`` expanded, a ``file:`` URI decoded); raises ``LocalImageProblem``."""
    if "\x00" in entry:
        raise LocalImageProblem("contains a NUL character")
    if entry[:5].lower() == "file:":
        return _file_uri_path(entry)
    path = Path(entry).expanduser()
    if not path.is_absolute():
        raise LocalImageProblem("its ~ could not be expanded (no such user or home folder); give an absolute path")
    return path


def _file_uri_path(uri: str) -> Path:
    if uri[5:7] != "//":
        raise LocalImageProblem("a file: URI must be file:///absolute/path (or file://localhost/absolute/path)")
    if "?" in uri or "#" in uri:
        raise LocalImageProblem("a file:// URI with ? or #: percent-encode them in the path (%3F, %23)")
    try:
        parts = urlsplit(uri)
        path = unquote(parts.path, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise LocalImageProblem("a file:// URI that cannot be parsed (its percent-encoding must be UTF-8)") from None
    if parts.netloc.lower() not in ("", "localhost"):
        raise LocalImageProblem(
            f"a file:// URI of another machine ({parts.netloc}); only this machine's files can be read: file:///path"
        )
    if "\x00" in path:
        raise LocalImageProblem("contains a NUL character")
    if os.name == "nt" and _WINDOWS_DRIVE.match(path):  # file:///C:/Users/... on Windows
        path = path[1:]
    if not Path(path).is_absolute():
        raise LocalImageProblem("a file: URI must be file:///absolute/path (or file://localhost/absolute/path)")
    return Path(path)


def _check_kind(info: os.stat_result, max_bytes: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise LocalImageProblem("a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise LocalImageProblem("not a regular file (a device, FIFO or socket)")
    if info.st_size > max_bytes:
        raise LocalImageProblem(
            f"too large: {megabytes(info.st_size)}, over the {megabytes(max_bytes)} limit (SORA_MAX_IMAGE_MB)"
        )


class Confinement(NamedTuple):
    """What the opened file must still be: the file that was checked, inside the roots."""

    checked: os.stat_result
    roots: tuple[Path, ...]
    roots_shown: str

    def verify(self, fd: int, opened: os.stat_result) -> None:
        """Refuse a file swapped since the check: another file, or (a folder on the way replaced by a symbolic
        link) one outside the roots, as the kernel names the open file where it can (``/proc/self/fd``)."""
        if (opened.st_dev, opened.st_ino) != (self.checked.st_dev, self.checked.st_ino):
            raise LocalImageProblem("it changed while being opened; try again")
        where = Path(f"/proc/self/fd/{fd}")
        if where.exists():
            actual = Path(os.path.realpath(where))
            if not inside(actual, self.roots):
                raise LocalImageProblem(f"outside the allowed folders ({self.roots_shown})")


def _read_bounded(path: Path, max_bytes: int, confinement: Confinement) -> bytes:
    """At most ``max_bytes`` of the regular file at ``path`` (no final symbolic link followed, no blocking open)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise LocalImageProblem(f"unreadable ({_reason(exc)})") from None
    try:
        opened = os.fstat(fd)
        _check_kind(opened, max_bytes)  # what was opened, in case the file was swapped since the stat
        confinement.verify(fd, opened)
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(_READ_CHUNK, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise LocalImageProblem(f"unreadable ({_reason(exc)})") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise LocalImageProblem(f"too large: it grew past the {megabytes(max_bytes)} limit while being read")
    return b"".join(chunks)


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or type(exc).__name__).lower()


def shown(entry: str) -> str:
    """``entry`` as messages show it: control characters escaped, shortened past ``MAX_SHOWN_CHARS``."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in entry)
    if len(text) > MAX_SHOWN_CHARS:
        keep = MAX_SHOWN_CHARS // 2 - 2
        text = f"{text[:keep]}...{text[-keep:]}"
    return text
