"""Local reference images: ``images`` entries that name files, read inside ``SORA_FILE_ROOTS`` and sent as data: URIs.

Through ``mcp.Client`` against the fake gateway (what it receives, or that it receives nothing), over HTTP with the
app factory, and as properties (hypothesis) of random layouts of folders, symbolic links and ``..``.
"""

import base64
import hashlib
import os
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from conftest import make_settings
from fake_gateway import FakeGateway
from hypothesis import event, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, TextContent
from pydantic import ValidationError

import sora_mcp.journal as journal
import sora_mcp.local_files as local_files
from sora_mcp.config import Settings, describe_settings_error
from sora_mcp.create_requests import VideoRequest
from sora_mcp.embedded import serve_app
from sora_mcp.http import create_app
from sora_mcp.journal import JOURNAL_FILENAME, Submission
from sora_mcp.local_files import LocalImageProblem, is_local, read_image
from sora_mcp.server import build_server

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0" + b"\x10JFIF" + bytes(30)
REFUSED = "Error executing tool create_video: Invalid arguments, nothing was sent to the gateway: "
MODES = ["auto", "legacy"]


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def text_of(result: CallToolResult) -> str:
    return "\n".join(item.text for item in result.content if isinstance(item, TextContent))


def make_file(path: Path) -> Path:
    path.touch()
    return path


def posts(fake: FakeGateway) -> list[Any]:
    return [request.json for request in fake.requests if request.method == "POST"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The one allowed folder (a real path: tmp_path may itself sit behind a symbolic link)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    return Path(os.path.realpath(folder))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "secret.png").write_bytes(PNG + b"outside")
    return Path(os.path.realpath(folder))


@pytest.fixture
def settings(root: Path) -> Settings:  # the server fixture of conftest builds on this one
    return make_settings(file_roots=str(root))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file local_files reads, in order."""
    seen: list[Path] = []
    real = local_files._read_bounded

    def counting(path: Path, max_bytes: int, confinement: local_files.Confinement) -> bytes:
        seen.append(path)
        return real(path, max_bytes, confinement)

    monkeypatch.setattr(local_files, "_read_bounded", counting)
    return seen


async def create(client: Client, images: list[str], **arguments: Any) -> CallToolResult:
    with anyio.fail_after(20):
        return await client.call_tool("create_video", {"prompt": "a cat", "images": images, **arguments})


async def refusal(client: Client, fake: FakeGateway, images: list[str]) -> str:
    """The problem text of a create refused before anything was sent."""
    result = await create(client, images)
    text = text_of(result)
    assert result.is_error is True, text
    assert text.startswith(REFUSED), text
    assert posts(fake) == []
    return text.removeprefix(REFUSED)


# --------------------------------------------------------------------------------------------- what is sent


async def test_a_file_inside_the_roots_reaches_the_gateway_as_a_data_uri_of_its_sniffed_type(
    mcp_client: Client, fake: FakeGateway, root: Path
) -> None:
    (root / "photo.jpg").write_bytes(JPEG)
    (root / "named-jpeg-but-png.jpg").write_bytes(PNG)
    images = [str(root / "photo.jpg"), "https://cdn.example.com/a.png", f"  {root / 'named-jpeg-but-png.jpg'} "]
    result = await create(mcp_client, images)
    assert result.is_error is False, text_of(result)
    assert posts(fake) == [
        {
            "model": "sora-2",
            "prompt": "a cat",
            "images": [data_uri(JPEG, "image/jpeg"), "https://cdn.example.com/a.png", data_uri(PNG)],
        }
    ]


async def test_file_uris_are_read_percent_decoded_and_only_on_this_machine(
    mcp_client: Client, fake: FakeGateway, root: Path
) -> None:
    (root / "my cat ä.png").write_bytes(PNG)
    encoded = str(root).replace(" ", "%20") + "/my%20cat%20%C3%A4.png"
    assert (await create(mcp_client, [f"file://{encoded}", f"FILE://localhost{encoded}"])).is_error is False
    assert posts(fake)[0]["images"] == [data_uri(PNG), data_uri(PNG)]
    fake.requests.clear()
    problem = await refusal(mcp_client, fake, [f"file://nas{encoded}", "file:relative.png", f"file://{encoded}?x"])
    assert problem == (
        f"images[0] (file://nas{encoded}): a file:// URI of another machine (nas); only this machine's files can be "
        "read: file:///path; "
        "images[1] (file:relative.png): a file: URI must be file:///absolute/path (or file://localhost/absolute/path); "
        f"images[2] (file://{encoded}?x): a file:// URI with ? or #: percent-encode them in the path (%3F, %23)"
    )


async def test_the_journal_keeps_type_size_and_digest_never_the_bytes_or_the_path(
    mcp_client: Client, fake: FakeGateway, root: Path, state_dir: Path
) -> None:
    picture = PNG + b"unmistakable-content" * 50
    (root / "holiday-secret-name.png").write_bytes(picture)
    assert (await create(mcp_client, [str(root / "holiday-secret-name.png")])).is_error is False
    with sqlite3.connect(state_dir / JOURNAL_FILENAME) as db:
        [(arguments,)] = db.execute("SELECT arguments FROM tasks").fetchall()
    encoded = base64.b64encode(picture).decode()
    assert encoded not in arguments and "holiday-secret-name" not in arguments
    assert f'"images":["data:image/png;base64 ({len(encoded)} chars, sha256 ' in arguments


async def test_the_same_content_under_another_path_is_the_same_request_and_an_edit_is_a_new_one(
    mcp_client: Client, fake: FakeGateway, root: Path
) -> None:
    (root / "a.png").write_bytes(PNG)
    (root / "copy of a.gif").write_bytes(PNG)  # same bytes, another name and extension
    (root / "b.png").write_bytes(PNG + b"edited")
    first = await create(mcp_client, [str(root / "a.png")])
    again = await create(mcp_client, [f"file://{root}/copy%20of%20a.gif"])
    assert again.structured_content is not None and first.structured_content is not None
    assert again.structured_content["reused"] is True
    assert again.structured_content["task_id"] == first.structured_content["task_id"]
    edited = await create(mcp_client, [str(root / "b.png")])
    assert edited.structured_content is not None and not edited.structured_content.get("reused")
    assert len(posts(fake)) == 2


async def test_a_tilde_path_reads_the_home_folder_the_default_root_on_stdio(
    tmp_path: Path, fake: FakeGateway, http_client: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "Pictures").mkdir(parents=True)
    (home / "Pictures" / "cat.png").write_bytes(PNG)
    monkeypatch.setenv("HOME", str(home))
    async with Client(build_server(make_settings(), http_client=http_client)) as client:
        assert (await create(client, ["~/Pictures/cat.png"])).is_error is False
        assert posts(fake)[0]["images"] == [data_uri(PNG)]
        fake.requests.clear()
        problem = await refusal(client, fake, [str(tmp_path / "outside.png")])
    assert problem == (
        f"images[0] ({tmp_path / 'outside.png'}): outside the allowed folders (SORA_FILE_ROOTS unset: the home folder "
        f"{home.resolve()})"
    )


# --------------------------------------------------------------------------------------------- what is refused


async def test_paths_outside_the_roots_are_refused_before_anything_is_looked_up(
    mcp_client: Client, fake: FakeGateway, root: Path, outside: Path, reads: list[Path]
) -> None:
    (root / "inside.png").write_bytes(PNG)
    (root / "link-out.png").symlink_to(outside / "secret.png")
    (root / "folder-out").symlink_to(outside)
    images = [
        str(outside / "secret.png"),
        str(root / "link-out.png"),
        str(root / "folder-out" / "secret.png"),
        f"{root}/../{outside.name}/secret.png",
        str(outside / "does-not-exist.png"),  # outside: said so, whether it exists or not
        f"{root}/../{root.name}/inside.png",  # a .. that stays inside is fine, but this call is refused as a whole
    ]
    problem = await refusal(mcp_client, fake, images)
    expected = f"outside the allowed folders (SORA_FILE_ROOTS: {root})"
    assert problem == "; ".join(f"images[{i}] ({image}): {expected}" for i, image in enumerate(images[:5]))
    assert reads == [root / "inside.png"]  # nothing outside was opened


async def test_missing_folder_fifo_too_large_and_not_an_image_are_each_named(
    mcp_client: Client, fake: FakeGateway, root: Path, reads: list[Path]
) -> None:
    os.truncate(make_file(root / "huge.png"), 50 * 1024 * 1024)  # 50 MB by its size: refused before a byte is read
    (root / "cat.png").write_text("a picture of a cat, honestly\n")
    (root / "drawing.png").write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>')
    (root / "empty.png").write_bytes(b"")
    (root / "folder.png").mkdir()
    os.mkfifo(root / "pipe.png")  # opening it for reading would block forever
    names = ["nope.png", "folder.png", "pipe.png", "huge.png", "cat.png", "drawing.png", "empty.png"]
    with anyio.fail_after(10):
        problem = await refusal(mcp_client, fake, [f"{root}/{name}" for name in names])
    reasons = [
        "no such file",
        "a folder, not a file",
        "not a regular file (a device, FIFO or socket)",
        "too large: 50.0 MB, over the 10.0 MB limit (SORA_MAX_IMAGE_MB)",
        "not a PNG, JPEG, WebP or GIF image (its bytes are text)",
        "not a PNG, JPEG, WebP or GIF image (its bytes are an SVG drawing (text); convert it to PNG)",
        "not a PNG, JPEG, WebP or GIF image (its bytes are nothing: the file is empty)",
    ]
    assert problem == "; ".join(
        f"images[{i}] ({root}/{name}): {why}" for i, (name, why) in enumerate(zip(names, reasons, strict=True))
    )
    assert "honestly" not in problem  # file contents are never quoted
    assert [path.name for path in reads] == ["cat.png", "drawing.png", "empty.png"]


async def test_local_paths_are_off_over_http_until_sora_file_roots_allows_folders(
    fake: FakeGateway, root: Path
) -> None:
    (root / "cat.png").write_bytes(PNG)
    async with serve_app(fake.build_app()) as gateway:
        async with http_session(make_settings(base_url=gateway)) as client:
            result = await create(client, [str(root / "cat.png"), "~/cat.png"])
        assert text_of(result) == REFUSED + "; ".join(
            f"images[{i}] ({image}): local paths are off over HTTP: set SORA_FILE_ROOTS=/srv/images (folders on "
            "the server's machine) to allow them"
            for i, image in enumerate([root / "cat.png", "~/cat.png"])
        )
        assert posts(fake) == []
        async with http_session(make_settings(base_url=gateway, file_roots=str(root))) as client:
            assert (await create(client, [str(root / "cat.png")])).is_error is False
    assert posts(fake)[0]["images"] == [data_uri(PNG)]


@asynccontextmanager
async def http_session(settings_: Settings) -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve_app(create_app(settings_), lifespan=True))
        http = await stack.enter_async_context(create_mcp_http_client())
        yield await stack.enter_async_context(Client(streamable_http_client(f"{url}/mcp", http_client=http)))


async def test_an_empty_sora_file_roots_turns_local_paths_off_on_stdio_too(
    fake: FakeGateway, http_client: httpx2.AsyncClient, root: Path
) -> None:
    (root / "cat.png").write_bytes(PNG)
    async with Client(build_server(make_settings(file_roots=""), http_client=http_client)) as client:
        problem = await refusal(client, fake, [str(root / "cat.png")])
    assert problem == (
        f"images[0] ({root / 'cat.png'}): local paths are off (SORA_FILE_ROOTS is empty): set "
        "SORA_FILE_ROOTS=~/Pictures to allow a folder"
    )


async def test_relative_paths_and_too_many_images_are_refused_without_reading(
    mcp_client: Client, fake: FakeGateway, root: Path, reads: list[Path]
) -> None:
    (root / "cat.png").write_bytes(PNG)
    assert await refusal(mcp_client, fake, ["cat.png"]) == (
        "images: item 0 must be an http(s) URL, a data:image/<type>;base64,<data> URI or a local file (an absolute "
        "path, ~/... or file:///...)"
    )
    assert await refusal(mcp_client, fake, [str(root / "cat.png")] * 11) == "images: has 11 images; give at most 10"
    assert reads == []


def test_a_file_that_grows_while_read_is_refused_and_never_read_past_the_cap(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "growing.png").write_bytes(PNG * 100)
    monkeypatch.setattr(local_files, "_check_kind", lambda info, max_bytes: None)  # as if it was small at the stat
    asked: list[int] = []
    real_read = os.read

    def read(fd: int, size: int) -> bytes:
        asked.append(size)
        return real_read(fd, size)

    monkeypatch.setattr(local_files.os, "read", read)
    growing = root / "growing.png"
    confinement = local_files.Confinement(os.stat(growing), (root.resolve(),), "SORA_FILE_ROOTS: root")
    with pytest.raises(LocalImageProblem, match=r"^too large: it grew past the 0\.0 MB limit while being read$"):
        local_files._read_bounded(growing, 100, confinement)
    assert sum(asked) == 101


# --------------------------------------------------------------------------------------------- the money path


class Yes:
    def __init__(self) -> None:
        self.questions = 0

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.questions += 1
        return ElicitResult(action="accept", content={"approve": True})


@pytest.mark.parametrize("mode", MODES)
async def test_the_approval_prices_the_same_prepared_request_and_reads_once_per_round(
    fake: FakeGateway, http_client: httpx2.AsyncClient, root: Path, reads: list[Path], mode: str
) -> None:
    (root / "cat.png").write_bytes(PNG)
    server = build_server(make_settings(file_roots=str(root), confirm_above_usd=0), http_client=http_client)
    asker = Yes()
    async with Client(server, mode=mode, elicitation_callback=asker) as client:
        result = await create(client, [str(root / "cat.png")])
        assert result.is_error is False, text_of(result)
        again = await create(client, [str(root / "cat.png")])  # the same content: reused, nothing to approve
    assert again.structured_content is not None and again.structured_content["reused"] is True
    assert asker.questions == 1
    assert posts(fake) == [{"model": "sora-2", "prompt": "a cat", "images": [data_uri(PNG)]}]
    # The resolvers and the body share one read per round; a 2026-07-28 question is a second round.
    assert len(reads) == (3 if mode == "auto" else 2)


async def test_a_quote_is_for_the_files_content_an_edit_after_quoting_is_refused(
    fake: FakeGateway, http_client: httpx2.AsyncClient, root: Path
) -> None:
    (root / "cat.png").write_bytes(PNG)
    server = build_server(make_settings(file_roots=str(root), confirm_above_usd=0), http_client=http_client)
    async with Client(server, mode="legacy") as client:  # no elicitation: a quote to confirm
        quoted = (await create(client, [str(root / "cat.png")])).structured_content
        assert quoted is not None and quoted["confirmation_required"] is True
        (root / "cat.png").write_bytes(PNG + b"edited after the quote")
        changed = await create(client, [str(root / "cat.png")], confirm_quote=quoted["quote_id"])
        assert "was issued for different arguments" in text_of(changed)
        (root / "cat.png").write_bytes(PNG)
        confirmed = await create(client, [str(root / "cat.png")], confirm_quote=quoted["quote_id"])
        assert confirmed.is_error is False, text_of(confirmed)
    assert posts(fake) == [{"model": "sora-2", "prompt": "a cat", "images": [data_uri(PNG)]}]


# --------------------------------------------------------------------------------------------- the setting


def test_sora_file_roots_takes_absolute_paths_separated_by_commas_or_the_path_separator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SORA_FILE_ROOTS", f" ~/Pictures , /srv/images{os.pathsep}/mnt/shared,")
    configured = Settings()
    assert configured.file_roots == (tmp_path / "Pictures", Path("/srv/images"), Path("/mnt/shared"))
    assert configured.image_roots == configured.served_over_http().image_roots == configured.file_roots
    monkeypatch.setenv("SORA_FILE_ROOTS", "")
    assert Settings().file_roots == () and Settings().image_roots == ()
    monkeypatch.delenv("SORA_FILE_ROOTS")
    assert Settings().file_roots is None
    assert Settings().image_roots == (tmp_path,) and Settings().served_over_http().image_roots == ()
    monkeypatch.setenv("SORA_FILE_ROOTS", "/srv/images,pictures")
    with pytest.raises(ValidationError) as caught:
        Settings()
    problem = describe_settings_error(caught.value)
    assert "SORA_FILE_ROOTS: " in problem and "'pictures' is not an absolute path: give folders such as " in problem


@pytest.mark.parametrize(
    ("entry", "local"),
    [
        ("/a.png", True),
        ("~/a.png", True),
        ("~", True),
        ("file:///a.png", True),
        (" File://localhost/a.png", True),
        ("a.png", False),
        ("./a.png", False),
        ("https://x.example/a.png", False),
        ("data:image/png;base64,AAAA", False),
    ],
)
def test_which_entries_are_local(entry: str, local: bool) -> None:
    assert is_local(entry) is local


# --------------------------------------------------------------------------------------------- properties

NAMES = ["a.png", "b", "link", "up", "loop", "x.png"]
LINK_TARGETS = ["../outside/secret.png", "{outside}", "{outside}/secret.png", "a.png", "b", "..", "loop", "missing"]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[dict[str, str], list[str]]:
    """Symbolic links (name in the root or in root/b -> target) and a path: a start and components."""
    links = draw(
        st.dictionaries(
            st.sampled_from(["link", "up", "loop", "b/link", "b/up", "x.png"]),
            st.sampled_from(LINK_TARGETS),
            max_size=4,
        )
    )
    start = draw(st.sampled_from(["root", "root/b", "outside", "base"]))
    parts = draw(st.lists(st.sampled_from([*NAMES, "..", ".", "secret.png", "root", "outside"]), max_size=5))
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["a.png", "secret.png"])))  # more paths that end at a file
    return links, [start, *parts]


def build(base: Path, links: dict[str, str]) -> tuple[Path, Path]:
    """The allowed folder ``root`` (with ``a.png`` and ``b/a.png``) and ``outside`` (two images), plus ``links``."""
    root, outside = base / "root", base / "outside"
    (root / "b").mkdir(parents=True)
    outside.mkdir()
    (root / "a.png").write_bytes(PNG + b"inside a")
    (root / "b" / "a.png").write_bytes(PNG + b"inside b/a")
    (outside / "secret.png").write_bytes(PNG + b"outside")
    (outside / "a.png").write_bytes(PNG + b"outside a")
    for name, target in links.items():
        (root / name).symlink_to(target.format(outside=outside))
    return root, outside


@examples(max_examples=300, deadline=None)
@given(layout=layouts())
def test_no_path_form_reads_a_file_outside_the_root_and_every_file_inside_is_read(
    layout: tuple[dict[str, str], list[str]],
) -> None:
    """Whatever the symbolic links and the ``..`` and ``.`` components: bytes come only from files inside the root
    (never one outside, however it is reached), and a file that really is inside is read."""
    links, (start, *parts) = layout
    with tempfile.TemporaryDirectory() as directory:
        base = Path(os.path.realpath(directory))
        root, _ = build(base, links)
        path = os.path.join(base if start == "base" else base / start, *parts)
        target = Path(os.path.realpath(path))
        try:
            sent = read_image(path, (root,), 1024, "SORA_FILE_ROOTS: root")
        except LocalImageProblem as exc:
            problem = str(exc)
            event(f"refused: {problem.partition(' (')[0]}")
        else:
            event("read")
            content = base64.b64decode(sent.partition(",")[2])
            assert b"inside" in content and b"outside" not in content
            assert target.is_relative_to(root) and content == target.read_bytes()
            return
        if not target.is_relative_to(root):
            assert problem == "outside the allowed folders (SORA_FILE_ROOTS: root)"
        elif target.is_file():
            pytest.fail(f"{path} is a file inside the root, refused: {problem}")
        elif target.is_dir():
            assert problem == "a folder, not a file"
        else:
            assert problem == "no such file" or problem.startswith("unreadable ("), problem


@examples(max_examples=60, deadline=None)
@given(
    prompt=st.text(max_size=20),
    sizes=st.lists(st.sampled_from([0, 10, 70_000, 200_000]), min_size=1, max_size=3),
    odd=st.sampled_from(["", '"', "\\", "\n"]),
)
def test_the_request_hash_of_large_images_is_the_hash_of_the_canonical_payload(
    prompt: str, sizes: list[int], odd: str
) -> None:
    """The journal hashes large data: URIs without encoding them as JSON: the same hash as the plain formula."""
    images = [data_uri(PNG + bytes(size)) for size in sizes] + [f"https://cdn.example.com/{odd}{'x' * 70_000}"]
    payload = {"model": "sora-2", "prompt": prompt, "images": images}
    request = VideoRequest(prompt="a cat", images=["https://cdn.example.com/a.png"])
    plain = hashlib.sha256(journal._canonical({"kind": "video", "payload": payload}).encode()).hexdigest()
    assert Submission.of(request, payload).request_hash == plain


def test_a_file_swapped_between_the_check_and_the_open_is_refused(tmp_path: Path) -> None:
    """The opened file must be the one checked (same device and inode) and, as the kernel names it, inside the
    roots: a folder on the way replaced by a symbolic link after the check is caught."""
    root = tmp_path / "root"
    (root / "album").mkdir(parents=True)
    checked = root / "album" / "cat.png"
    checked.write_bytes(PNG)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cat.png").write_bytes(PNG)
    confinement = local_files.Confinement(os.stat(checked), (root.resolve(),), "SORA_FILE_ROOTS: root")
    (root / "album").rename(root / "old")
    (root / "album").symlink_to(outside)  # the swap, after the check
    with pytest.raises(local_files.LocalImageProblem, match="changed while being opened"):
        local_files._read_bounded(checked, 1 << 20, confinement)
    same_inode = local_files.Confinement(os.stat(outside / "cat.png"), (root.resolve(),), "SORA_FILE_ROOTS: root")
    with pytest.raises(local_files.LocalImageProblem, match="outside the allowed folders"):
        local_files._read_bounded(checked, 1 << 20, same_inode)
