"""Bad arguments never reach the gateway: each gets one tool error, in one style, that names the argument.

Examples first (each a promise the README makes), then properties (hypothesis): for any arguments, a tool either
answers an error naming what is wrong with nothing sent, or sends exactly the documented request; and the server
answers the next call either way.
"""

import base64
import json
import string
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from conftest import API_KEY, TOOL_NAMES, make_settings
from fake_gateway import FakeGateway
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult, TextContent

from sora_mcp.server import build_server

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
NOTHING_SENT = "Invalid arguments, nothing was sent to the gateway: "


class Session:
    """One server on a fake gateway, with a connected official client, driven from sync (hypothesis) tests."""

    def __init__(self, portal: BlockingPortal, client: Client, fake: FakeGateway) -> None:
        self.portal, self.client, self.fake = portal, client, fake

    def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        async def run() -> CallToolResult:
            with anyio.fail_after(20):
                return await self.client.call_tool(tool, arguments)

        return self.portal.call(run)

    def posts(self) -> list[Any]:
        return [request for request in self.fake.requests if request.method == "POST"]


@pytest.fixture
def session(tmp_path: Any) -> Iterator[Session]:
    fake = FakeGateway(api_key=API_KEY, video_seconds=0.2, character_seconds=0.1)
    settings_ = make_settings(output_dir=tmp_path / "videos", max_image_mb=0.01, duplicate_window=0)
    with start_blocking_portal() as portal:
        http = portal.call(lambda: _async_client(fake))
        with portal.wrap_async_context_manager(Client(build_server(settings_, http_client=http))) as client:
            yield Session(portal, client, fake)
        portal.call(http.aclose)


async def _async_client(fake: FakeGateway) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.build_app()))


def text_of(result: CallToolResult) -> str:
    return "\n".join(item.text for item in result.content if isinstance(item, TextContent))


def refused(session: Session, tool: str, arguments: dict[str, Any]) -> str:
    """The error text of a call that must be refused before anything is sent."""
    before = len(session.posts())
    result = session.call(tool, arguments)
    assert result.is_error is True, text_of(result)
    assert len(session.posts()) == before, "a refused call reached the gateway"
    text = text_of(result)
    assert text.startswith(f"Error executing tool {tool}: {NOTHING_SENT}"), text
    assert "validation error for" not in text and "errors.pydantic.dev" not in text
    return text.removeprefix(f"Error executing tool {tool}: {NOTHING_SENT}")


# --------------------------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    ("tool", "arguments", "unknown"),
    [
        ("create_video", {"prompt": "a cat", "dration": 15}, "dration"),
        ("create_character", {"timestamps": "1,3", "url": "https://example.com/v.mp4", "prompt": "x"}, "prompt"),
        ("remix_video", {"task_id": "task_1", "prompt": "snow", "images": [PNG_URI]}, "images"),
        ("get_task", {"task_id": "task_1", "wait": 5}, "wait"),
        ("list_tasks", {"limt": 5}, "limt"),
        ("download_video", {"task_id": "task_1", "file_name": "x.mp4"}, "file_name"),
        ("inspect_video", {"task_id": "task_1", "frames": 12}, "frames"),
    ],
)
def test_unknown_arguments_are_refused_by_name_with_the_allowed_ones(
    session: Session, tool: str, arguments: dict[str, Any], unknown: str
) -> None:
    problem = refused(session, tool, arguments)
    assert problem.startswith(f"{tool} has no argument {unknown}. Its arguments are: ")
    assert session.fake.requests == []


@pytest.mark.parametrize(
    "prompt", ["", "   ", "\u200b", "\u200b\u200c\ufeff", "\x00", "\t\n \r", "\u0301\u0301", "\u3000"]
)
def test_a_prompt_that_shows_nothing_is_refused(session: Session, prompt: str) -> None:
    problem = refused(session, "create_video", {"prompt": prompt})
    assert problem.startswith("prompt: must describe the video; it ")


def test_control_characters_inside_a_prompt_are_refused_with_their_position(session: Session) -> None:
    assert refused(session, "create_video", {"prompt": "a cat\x00 on a roof"}) == (
        "prompt: contains the control character U+0000 at position 5; remove it"
    )
    assert refused(session, "remix_video", {"task_id": "task_1", "prompt": "snow\x1b[2J"}).startswith(
        "prompt: contains the control character U+001B"
    )


@pytest.mark.parametrize("timestamps", ["١,٣", "１,３", "1,３", "¹,³"])
def test_timestamps_in_non_ascii_digits_are_refused(session: Session, timestamps: str) -> None:
    problem = refused(session, "create_character", {"timestamps": timestamps, "from_task": "task_1"})
    assert problem.startswith("timestamps: must be 'start,end' in seconds")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("data:image/x-nonsense;base64,aGk=", "is a data: URI of type image/x-nonsense; allowed: image/png"),
        ("data:image/png;base64," + base64.b64encode(b"not an image at all").decode(), "is not a PNG, JPEG"),
        ("data:image/jpeg;base64," + base64.b64encode(PNG).decode(), "says image/jpeg but its bytes are image/png"),
        ("data:image/png;base64," + base64.b64encode(PNG + b"\x00" * 20_000).decode(), "over the 0.0 MB limit"),
        ("data:image/png;base64,%%%", "is a data: URI whose base64 payload is not valid base64"),
    ],
)
def test_data_uri_images_are_checked_by_type_bytes_and_size(session: Session, image: str, expected: str) -> None:
    problem = refused(session, "create_video", {"prompt": "a cat", "images": [image]})
    assert problem.startswith("images: item 0 ") and expected in problem, problem


def test_a_valid_data_uri_image_is_sent_as_it_is(session: Session) -> None:
    result = session.call("create_video", {"prompt": "a cat", "images": [PNG_URI]})
    assert result.is_error is False, text_of(result)
    (post,) = session.posts()
    assert post.json == {"model": "sora-2", "prompt": "a cat", "images": [PNG_URI]}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/v.mp4",
        "http://localhost:8080/v.mp4",
        "http://10.1.2.3/v.mp4",
        "https://192.168.1.20/v.mp4",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/v.mp4",
        "http://[fe80::1]/v.mp4",
        "http://2130706433/v.mp4",
        "http://127.1/v.mp4",
        "http://0x7f.0.0.1/v.mp4",
        "http://printer.local/v.mp4",
        "http://api.localhost/v.mp4",
    ],
)
def test_urls_the_gateway_cannot_fetch_are_refused(session: Session, url: str) -> None:
    problem = refused(session, "create_character", {"timestamps": "1,3", "url": url})
    assert problem.startswith("url: points at "), problem
    assert "public URL" in problem
    image = refused(session, "create_video", {"prompt": "a cat", "images": [url]})
    assert image.startswith("images: item 0 points at "), image


def test_a_public_url_is_sent(session: Session) -> None:
    result = session.call("create_character", {"timestamps": "1,3", "url": "https://cdn.example.com/v.mp4"})
    assert result.is_error is False, text_of(result)
    assert session.posts()[0].json == {"model": "sora-2", "timestamps": "1,3", "url": "https://cdn.example.com/v.mp4"}


def test_a_duration_error_lists_what_the_chosen_model_allows(session: Session) -> None:
    assert refused(session, "create_video", {"prompt": "a cat", "duration": 7}) == (
        "duration: sora-2 allows 10 or 15 seconds"
    )
    assert refused(session, "create_video", {"prompt": "a cat", "model": "sora-2-pro", "duration": 7}) == (
        "duration: sora-2-pro allows 10, 15 or 25 seconds"
    )
    assert refused(session, "remix_video", {"task_id": "t1", "prompt": "x", "model": "sora-2-pro", "duration": 10}) == (
        "duration: sora-2-pro allows 15 or 25 seconds for a remix (10 s needs model='sora-2')"
    )


def test_wrong_types_get_the_same_style(session: Session) -> None:
    assert refused(session, "create_video", {"prompt": 5}) == "prompt: Input should be a valid string"
    assert refused(session, "get_task", {"task_id": "x", "wait_seconds": 99}).startswith("wait_seconds: ")


def test_remixing_an_unknown_task_names_the_task_id(session: Session) -> None:
    result = session.call("remix_video", {"task_id": "task_nope", "prompt": "add snow"})
    assert result.is_error is True
    text = text_of(result)
    assert "No video task 'task_nope' exists for this API key to remix (HTTP 404" in text
    assert "SORA_BASE_URL" not in text and text.endswith("Nothing was created.")


# --------------------------------------------------------------------------------------------- properties

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
ARGUMENT_VALUES = {
    "prompt": TEXT | ANY_JSON,
    "model": st.sampled_from(["sora-2", "sora-2-pro", "sora-3", ""]) | ANY_JSON,
    "duration": st.sampled_from([10, 15, 25, 7, 0, -1, "10"]) | ANY_JSON,
    "size": st.sampled_from(["16:9", "9:16", "1:1", "4:3"]) | ANY_JSON,
    "images": st.lists(st.sampled_from([PNG_URI, "https://cdn.example.com/a.png", "http://10.0.0.1/a.png", "x"]))
    | ANY_JSON,
    "style": st.sampled_from(["anime", "comic", "vaporwave"]) | ANY_JSON,
    "watermark": ANY_JSON,
    "timestamps": st.sampled_from(["1,3", "0,1", "3,1", "1,9", "١,٣"]) | TEXT,
    "url": st.sampled_from(["https://cdn.example.com/v.mp4", "http://127.0.0.1/v.mp4", "ftp://x"]) | TEXT,
    "from_task": st.sampled_from(["task_1", "../x", ""]) | TEXT,
    "task_id": st.sampled_from(["task_1", "../x", "", "t" * 300]) | TEXT,
    "wait_seconds": st.sampled_from([0, 1, 51, -1]) | ANY_JSON,
    "allow_duplicate": ANY_JSON,
    "limit": st.integers(-5, 200) | ANY_JSON,
    "kind": st.sampled_from(["video", "character", "movie"]) | ANY_JSON,
    "status": st.sampled_from(["queued", "done"]) | ANY_JSON,
    "refresh": ANY_JSON,
    "filename": TEXT,
    "include_thumbnail": ANY_JSON,
}
UNKNOWN_KEYS = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12).filter(
    lambda key: key not in ARGUMENT_VALUES
)


@st.composite
def arguments(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(sorted(ARGUMENT_VALUES)), max_size=5, unique=True))
    values = {key: draw(ARGUMENT_VALUES[key]) for key in keys}
    if draw(st.booleans()):
        values[draw(UNKNOWN_KEYS)] = draw(ANY_JSON)
    return values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tool=st.sampled_from(TOOL_NAMES), args=arguments())
def test_any_arguments_give_a_named_refusal_with_nothing_sent_or_one_documented_request(
    session: Session, tool: str, args: dict[str, Any]
) -> None:
    posts_before = len(session.posts())
    result = session.call(tool, args)
    posts = session.posts()[posts_before:]
    text = text_of(result)
    if result.is_error:
        assert text.startswith(f"Error executing tool {tool}: "), text
        assert "validation error for" not in text and "errors.pydantic.dev" not in text, text
        if text.startswith(f"Error executing tool {tool}: {NOTHING_SENT}"):
            assert posts == [], f"an argument error reached the gateway: {text}"
        assert len(posts) <= 1  # a paid tool may have tried its one create (refused by the gateway)
    else:
        assert len(posts) <= 1
        if posts and tool == "create_video":
            assert set(posts[0].json) <= {"model", "prompt", "duration", "size", "images", "metadata"}
            assert json.dumps(posts[0].json, ensure_ascii=False)  # a JSON body the gateway documents
    follow_up = session.call("list_tasks", {"limit": 1})
    assert follow_up.is_error is False, text_of(follow_up)
