"""The MCP tools end to end through the official client in memory, in both protocol eras, against the fake gateway."""

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import pytest
from conftest import API_KEY, GATEWAY_URL, TOOL_NAMES, make_settings
from fake_gateway import FakeGateway, RecordedRequest, refused_url
from mcp import Client
from mcp.types import CallToolResult, TextContent

from sora_mcp.embedded import serve_app
from sora_mcp.models import DownloadResult, Spending, Task
from sora_mcp.server import build_server
from sora_mcp.server.results import TaskList

pytestmark = pytest.mark.anyio

CREATE = "/v1/videos/generations"
VIDEO_STATUS = "/v1/videos/generations/"
CHARACTER_STATUS = "/v1/characters_tasks/"
TASK_ID = re.compile(r"task_[0-9A-HJKMNP-TV-Z]{26}")
PAID_TOOLS = ("create_video", "create_character", "remix_video")
FAILURE_MESSAGE = "Generation failed: Content violates the content policy"
MAY_EXIST = "may have created this video task, and may bill it"
DO_NOT_RECREATE = "Do not call create again right away"


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Protocol era of a client built by the test itself: 2026-07-28 ("auto") or the 2025-11-25 handshake."""
    value: str = request.param
    return value


@asynccontextmanager
async def connect(fake: FakeGateway | None, mode: str, **overrides: Any) -> AsyncIterator[Client]:
    """An in-memory MCP client of a server built with ``make_settings(**overrides)``.

    With a ``fake``, the server's gateway client talks to it in memory; with None it makes real connections.
    """
    async with AsyncExitStack() as stack:
        http = None
        if fake is not None:
            transport = httpx2.ASGITransport(app=fake.build_app())
            http = await stack.enter_async_context(httpx2.AsyncClient(transport=transport))
        server = build_server(make_settings(**overrides), http_client=http)
        yield await stack.enter_async_context(Client(server, mode=mode))


async def call(client: Client, tool: str, arguments: dict[str, Any], **kwargs: Any) -> CallToolResult:
    with anyio.fail_after(10):
        return await client.call_tool(tool, arguments, **kwargs)


def text_of(result: CallToolResult) -> str:
    """The one text item (a completed video may add its thumbnail as an image item)."""
    texts = [item.text for item in result.content if isinstance(item, TextContent)]
    assert len(texts) == 1
    return texts[0]


def task_of(result: CallToolResult) -> dict[str, Any]:
    """The structured Task of a successful call."""
    assert result.is_error is False, text_of(result)
    task: dict[str, Any] | None = result.structured_content
    assert task is not None
    return task


def error_of(result: CallToolResult, tool: str) -> str:
    """The text of a tool error, without the SDK's "Error executing tool" prefix."""
    assert result.is_error is True
    assert result.structured_content is None
    text = text_of(result)
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), text
    return text[len(prefix) :]


def sent(fake: FakeGateway, method: str, prefix: str = "/") -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == method and r.path.startswith(prefix)]


async def create(client: Client, prompt: str = "a cat") -> str:
    """Create a video through the tool; return its task_id."""
    task_id: str = task_of(await call(client, "create_video", {"prompt": prompt}))["task_id"]
    return task_id


def foreign_video(fake: FakeGateway) -> str:
    """A video task created on the gateway directly, not through this server process."""
    task_id: str = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    return task_id


@dataclass
class ProgressLog:
    """A progress callback that records what arrives, with the time it arrived."""

    events: list[tuple[float, float | None, str | None]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))
        self.times.append(anyio.current_time())

    @property
    def values(self) -> list[float]:
        return [progress for progress, _, _ in self.events]

    def assert_well_formed(self) -> None:
        """Values strictly increase, the total is 100, and each message states the task's status."""
        assert self.values == sorted(set(self.values)), self.values
        assert all(total == 100 for _, total, _ in self.events)
        for _, _, message in self.events:
            assert message is not None
            assert re.match(r"(queued|in_progress|completed|failed) \d+%|asking the gateway", message), message
            assert re.search(r"\(waited \d+s of \d+s\)$", message), message


def enum_of(prop: dict[str, Any]) -> list[Any]:
    """The enum of a schema property, also when it is wrapped in ``anyOf`` with null."""
    if "enum" in prop:
        values: list[Any] = prop["enum"]
        return values
    (choice,) = [item for item in prop["anyOf"] if item.get("type") != "null"]
    values = choice["enum"]
    return values


# --------------------------------------------------------------------------------------------- discovery


async def test_tools_list_offers_exactly_the_six_tools_with_their_annotations(mcp_client: Client) -> None:
    """tools/list has the three creates, get_task, list_tasks and download_video; creates are open-world writes,
    get_task and list_tasks safe reads, download_video an idempotent, non-destructive write."""
    tools = {tool.name: tool for tool in (await mcp_client.list_tools()).tools}
    assert sorted(tools) == TOOL_NAMES
    for name in PAID_TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None
        assert annotations.read_only_hint is False
        assert annotations.idempotent_hint is False
        assert annotations.destructive_hint is False
        assert annotations.open_world_hint is True
    for name in ("get_task", "list_tasks", "player_state"):
        read = tools[name].annotations
        assert read is not None
        assert read.read_only_hint is True
        assert read.idempotent_hint is True
        assert read.open_world_hint is True
    download = tools["download_video"].annotations
    assert download is not None
    assert (download.read_only_hint, download.destructive_hint, download.idempotent_hint) == (False, False, True)
    for name in PAID_TOOLS:
        description = tools[name].description
        assert description is not None
        assert "Costs the user money" in description
        assert "get_task(task_id, wait_seconds=50)" in description
    assert tools["get_task"].description is not None
    assert "Free and safe to repeat" in tools["get_task"].description
    assert tools["list_tasks"].description is not None
    assert "find a task_id you lost" in tools["list_tasks"].description
    assert tools["download_video"].description is not None
    assert "Free and safe to repeat" in tools["download_video"].description
    titles = {name: tool.title for name, tool in tools.items()}
    assert titles == {
        "create_video": "Create a video",
        "create_character": "Create a character",
        "get_task": "Get task status",
        "list_tasks": "List recent tasks",
        "remix_video": "Remix a video",
        "download_video": "Download a video",
        "get_spending": "Get spending",
        "player_state": "Player: task state",
        "inspect_video": "Inspect a video",
    }


async def test_every_input_property_is_described(mcp_client: Client) -> None:
    """Each argument of each tool carries a description the calling model can read."""
    for tool in (await mcp_client.list_tools()).tools:
        properties = tool.input_schema["properties"]
        assert properties or tool.name == "get_spending"  # the one tool without arguments
        for name, prop in properties.items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"


async def test_create_video_takes_flat_arguments_with_the_documented_enums(mcp_client: Client) -> None:
    """create_video's schema is flat (no nested request object) and spells out every allowed value."""
    tools = {tool.name: tool for tool in (await mcp_client.list_tools()).tools}
    schema = tools["create_video"].input_schema
    properties = schema["properties"]
    assert list(properties) == [
        "prompt",
        "model",
        "duration",
        "size",
        "images",
        "style",
        "watermark",
        "private",
        "storyboard",
        "thumbnail",
        "allow_duplicate",
        "wait_seconds",
        "confirm_quote",
    ]
    assert schema["required"] == ["prompt"]
    assert properties["prompt"]["type"] == "string"
    assert enum_of(properties["model"]) == ["sora-2", "sora-2-pro"]
    assert properties["model"]["default"] == "sora-2"
    assert enum_of(properties["duration"]) == [10, 15, 25]
    assert enum_of(properties["size"]) == ["16:9", "9:16", "1:1"]
    assert enum_of(properties["style"]) == ["comic", "news", "anime", "selfie", "nostalgic", "thanksgiving"]
    for flag in ("watermark", "private", "storyboard", "thumbnail"):
        assert {"type": "boolean"} in properties[flag]["anyOf"]
    character = tools["create_character"].input_schema
    assert list(character["properties"]) == [
        "timestamps",
        "url",
        "from_task",
        "model",
        "allow_duplicate",
        "wait_seconds",
        "confirm_quote",
    ]
    assert character["required"] == ["timestamps"]
    for create in (schema, character):
        allow = create["properties"]["allow_duplicate"]
        assert (allow["type"], allow["default"]) == ("boolean", False)
        assert "Costs money again" in allow["description"]
    list_tasks = tools["list_tasks"].input_schema["properties"]
    assert list(list_tasks) == ["limit", "kind", "status", "refresh"]
    assert (list_tasks["limit"]["minimum"], list_tasks["limit"]["maximum"], list_tasks["limit"]["default"]) == (
        1,
        100,
        20,
    )
    assert enum_of(list_tasks["kind"]) == ["video", "character"]
    assert enum_of(list_tasks["status"]) == ["queued", "in_progress", "completed", "failed", "unknown"]
    get_task = tools["get_task"].input_schema["properties"]
    assert get_task["wait_seconds"]["minimum"] == 0
    assert get_task["wait_seconds"]["maximum"] == 50
    assert get_task["task_id"]["pattern"]


async def test_every_tool_declares_its_output_schema(mcp_client: Client) -> None:
    """The task tools return one Task (task_id, kind, status, progress, urls, hint...); list_tasks a list of
    them; download_video a DownloadResult."""
    tools = {tool.name: tool for tool in (await mcp_client.list_tools()).tools}
    for name in ("create_video", "create_character", "remix_video", "get_task"):
        schema = tools[name].output_schema
        assert schema == Task.model_json_schema()
        assert schema["required"] == ["kind", "status"]  # task_id is absent only when the outcome is unknown
        for key in ("task_id", "progress", "video_url", "characters", "error", "next_poll_seconds", "hint"):
            assert key in schema["properties"]
        assert "cost_estimate_usd" in schema["properties"]
    for name in ("create_video", "create_character", "remix_video"):
        quote_fields = tools[name].output_schema["properties"]
        assert {"confirmation_required", "quote_id", "quote_expires_at"} <= quote_fields.keys()
    assert tools["get_spending"].output_schema == Spending.model_json_schema()
    assert tools["list_tasks"].output_schema == TaskList.model_json_schema()
    assert tools["download_video"].output_schema == DownloadResult.model_json_schema()


async def test_instructions_explain_polling_with_get_task_and_wait_seconds(mcp_client: Client) -> None:
    """The server's instructions tell the model to poll get_task with wait_seconds and never re-create."""
    instructions = mcp_client.instructions
    assert instructions is not None
    assert "get_task" in instructions
    assert "wait_seconds" in instructions
    assert "Never create a task again" in instructions


# --------------------------------------------------------------------------------------------- create_video


async def test_create_video_returns_a_queued_task_and_sends_one_exact_request(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """A create answers at once with a queued Task (structured and as compact JSON) after exactly one POST."""
    arguments = {
        "prompt": "  a corgi surfing at sunset  ",
        "model": "sora-2-pro",
        "duration": 25,
        "size": "9:16",
        "images": ["https://example.com/corgi.png"],
        "style": "anime",
        "watermark": False,
        "private": True,
        "storyboard": False,
        "thumbnail": True,
    }
    result = await call(mcp_client, "create_video", arguments)
    task = task_of(result)
    task_id = task["task_id"]
    assert TASK_ID.fullmatch(task_id)
    assert task == {
        "task_id": task_id,
        "kind": "video",
        "status": "queued",
        "progress": 0,
        "model": "sora-2-pro",
        "created_at": int(fake.tasks[task_id].created_at),
        "upstream_status": "queued",
        "next_poll_seconds": 10,
        "hint": f"The video is queued. Call get_task with task_id='{task_id}' and wait_seconds=50 to wait for it "
        "(or poll again in next_poll_seconds); do not create it again. Estimated cost: $7.50 for 25 s of sora-2-pro, "
        "from the configured prices (SORA_PRICES), not the gateway's bill.",
        "cost_estimate_usd": 7.5,
    }
    assert text_of(result) == json.dumps(task, ensure_ascii=False, separators=(",", ":"))
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", CREATE)
    assert request.json == {
        "model": "sora-2-pro",
        "prompt": "a corgi surfing at sunset",
        "duration": 25,
        "size": "9:16",
        "images": ["https://example.com/corgi.png"],
        "metadata": {"style": "anime", "watermark": False, "private": True, "storyboard": False, "thumbnail": True},
    }
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["user-agent"].startswith("sora-mcp/")
    assert request.headers["content-type"] == "application/json"


async def test_create_video_leaves_unset_arguments_out_of_the_request(mcp_client: Client, fake: FakeGateway) -> None:
    """Only the prompt and the default model are sent when nothing else is given; no empty metadata."""
    await create(mcp_client, "a cat")
    assert [r.json for r in fake.requests] == [{"model": "sora-2", "prompt": "a cat"}]


# --------------------------------------------------------------------------------------------- validation

INVALID_CALLS = [
    pytest.param("create_video", {"prompt": "x", "model": "sora-3"}, ["model", "'sora-2' or 'sora-2-pro'"], id="model"),
    pytest.param(
        "create_video",
        {"prompt": "x", "duration": 25},
        ["duration: sora-2 allows 10 or 15 seconds (25 s needs model='sora-2-pro')"],
        id="duration-25-with-sora-2",
    ),
    pytest.param(
        "create_video",
        {"prompt": "x", "duration": 12},
        ["duration: sora-2 allows 10 or 15 seconds"],  # the default model's values, not every model's
        id="duration-12",
    ),
    pytest.param("create_video", {"prompt": "x", "size": "4:3"}, ["size", "'16:9', '9:16' or '1:1'"], id="size"),
    pytest.param(
        "create_video",
        {"prompt": "x", "style": "noir"},
        ["style", "'comic', 'news', 'anime', 'selfie', 'nostalgic' or 'thanksgiving'"],
        id="style",
    ),
    pytest.param(
        "create_video",
        {"prompt": "x", "images": ["https://example.com/a.png", "ftp://example.com/b.png"]},
        [
            "images: item 1 must be an http(s) URL, a data:image/<type>;base64,<data> URI or a local file (an "
            "absolute path, ~/... or file:///...)"
        ],
        id="image-url",
    ),
    pytest.param(
        "create_video",
        {"prompt": "x", "images": ["data:image/png;base64,@@not-base64@@"]},
        ["images: item 0 is a data: URI whose base64 payload is not valid base64"],
        id="image-data-uri-payload",
    ),
    pytest.param(
        "create_video",
        {"prompt": "x", "images": ["data:text/plain;base64,aGk="]},
        ["images: item 0 is a data: URI of type text/plain; allowed: image/png, image/jpeg, image/webp, image/gif"],
        id="image-data-uri-type",
    ),
    pytest.param(
        "create_video", {"prompt": "   "}, ["prompt: must describe the video; it is empty"], id="empty-prompt"
    ),
    pytest.param(
        "create_character",
        {"url": "https://example.com/v.mp4", "timestamps": "0,4"},
        ["timestamps: span is 4 s; it must be between 1 and 3 seconds"],
        id="span-over-3s",
    ),
    pytest.param(
        "create_character",
        {"url": "https://example.com/v.mp4", "timestamps": "1,1.5"},
        ["timestamps: span is 0.5 s; it must be between 1 and 3 seconds"],
        id="span-under-1s",
    ),
    pytest.param(
        "create_character",
        {"url": "https://example.com/v.mp4", "timestamps": "3,2"},
        ["timestamps: end (2) must be after start (3)"],
        id="end-before-start",
    ),
    pytest.param(
        "create_character",
        {"url": "https://example.com/v.mp4", "timestamps": "2,2"},
        ["timestamps: end (2) must be after start (2)"],
        id="end-equals-start",
    ),
    pytest.param(
        "create_character",
        {"url": "https://example.com/v.mp4", "from_task": "task_1", "timestamps": "1,3"},
        ["url, from_task: give exactly one of them, not both"],
        id="url-and-from-task",
    ),
    pytest.param(
        "create_character",
        {"timestamps": "1,3"},
        ["url, from_task: give exactly one: url (a video URL) or from_task"],
        id="neither-url-nor-from-task",
    ),
    pytest.param(
        "create_character",
        {"url": "ftp://example.com/v.mp4", "timestamps": "1,3"},
        ["url: must be a public http:// or https:// URL"],
        id="url-scheme",
    ),
    pytest.param("get_task", {"task_id": "task_1/../../admin"}, ["task_id", "no slashes or spaces"], id="slash"),
    pytest.param("get_task", {"task_id": ".."}, ["task_id", "no slashes or spaces"], id="dot-dot"),
    pytest.param("get_task", {"task_id": "task 1"}, ["task_id", "no slashes or spaces"], id="space"),
    pytest.param(
        "get_task",
        {"task_id": "task_1", "wait_seconds": 51},
        ["wait_seconds", "less than or equal to 50"],
        id="wait-51",
    ),
    pytest.param(
        "get_task",
        {"task_id": "task_1", "wait_seconds": -1},
        ["wait_seconds", "greater than or equal to 0"],
        id="wait-negative",
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "phrases"), INVALID_CALLS)
async def test_invalid_arguments_are_rejected_by_name_before_anything_is_sent(
    mcp_client: Client, fake: FakeGateway, tool: str, arguments: dict[str, Any], phrases: list[str]
) -> None:
    """A bad argument gives a tool error naming it and what is allowed, and the gateway sees no request."""
    error = error_of(await call(mcp_client, tool, arguments), tool)
    for phrase in phrases:
        assert phrase in error
    assert fake.requests == []
    assert fake.tasks == {}


# --------------------------------------------------------------------------------------------- get_task


async def test_a_character_is_created_then_waited_for_on_its_own_endpoint(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """create_character -> get_task(wait) completes with the @mention; polls go straight to characters_tasks."""
    created = task_of(
        await call(mcp_client, "create_character", {"url": "https://example.com/v.mp4", "timestamps": "1,3"})
    )
    assert created["kind"] == "character"
    assert created["status"] == "queued"
    task_id = created["task_id"]
    assert fake.requests[0].json == {"model": "sora-2", "timestamps": "1,3", "url": "https://example.com/v.mp4"}
    task = task_of(await call(mcp_client, "get_task", {"task_id": task_id, "wait_seconds": 5}))
    assert task["status"] == "completed"
    assert task["kind"] == "character"
    character = fake.tasks[task_id].character
    assert character is not None
    [made] = task["characters"]
    assert made["mention"] == "@" + character["username"]
    assert made["username"] == character["username"]
    assert made["id"] == character["id"]
    assert task["hint"] == f"The character is ready: write {made['mention']} in a create_video prompt to cast it."
    reads = fake.requests[1:]
    assert reads
    assert all(r.method == "GET" and r.path == CHARACTER_STATUS + task_id for r in reads)


async def test_a_video_this_process_did_not_create_is_read_with_one_get(mcp_client: Client, fake: FakeGateway) -> None:
    """A foreign video id is found on the video endpoint at the first try."""
    task_id = foreign_video(fake)
    task = task_of(await call(mcp_client, "get_task", {"task_id": task_id}))
    assert (task["task_id"], task["kind"], task["model"]) == (task_id, "video", "sora-2")
    assert task["status"] in ("queued", "in_progress")
    assert [(r.method, r.path) for r in fake.requests] == [("GET", VIDEO_STATUS + task_id)]


async def test_a_character_this_process_did_not_create_is_found_on_the_character_endpoint(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """A foreign character id: video endpoint 404, then found on characters_tasks, which is remembered."""
    task_id: str = fake.create({"model": "sora-2", "url": "https://example.com/v.mp4", "timestamps": "1,3"})["id"]
    task = task_of(await call(mcp_client, "get_task", {"task_id": task_id}))
    assert (task["task_id"], task["kind"]) == (task_id, "character")
    task_of(await call(mcp_client, "get_task", {"task_id": task_id}))
    assert [r.path for r in fake.requests] == [
        VIDEO_STATUS + task_id,
        CHARACTER_STATUS + task_id,
        CHARACTER_STATUS + task_id,
    ]


async def test_an_unknown_task_id_is_a_tool_error_naming_it(mcp_client: Client, fake: FakeGateway) -> None:
    """An id no endpoint knows: a tool error with the id and advice about task_id, after both endpoints."""
    error = error_of(await call(mcp_client, "get_task", {"task_id": "task_nope"}), "get_task")
    assert error == (
        "No task 'task_nope' exists for this API key (HTTP 404: Task not found). Check the task_id: use the one "
        "returned by create_video or create_character."
    )
    assert [r.path for r in fake.requests] == [VIDEO_STATUS + "task_nope", CHARACTER_STATUS + "task_nope"]


async def test_waiting_returns_the_completed_video_with_progress_notifications(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """get_task(wait_seconds) polls until completed, reporting strictly increasing progress out of 100."""
    task_id = await create(mcp_client)
    progress = ProgressLog()
    task = task_of(
        await call(mcp_client, "get_task", {"task_id": task_id, "wait_seconds": 5}, progress_callback=progress)
    )
    assert task["status"] == "completed"
    assert task["progress"] == 100
    assert task["video_url"] == f"{GATEWAY_URL}/files/{task_id}.mp4"
    assert "next_poll_seconds" not in task
    assert task["hint"].startswith("The video is ready: give the user video_url.")
    assert len(progress.events) >= 2
    progress.assert_well_formed()
    assert progress.events[-1][0] == 100
    last_message = progress.events[-1][2]
    assert last_message is not None
    assert last_message.startswith("completed 100% (waited ")


async def test_a_wait_that_runs_out_returns_the_running_task_after_wait_seconds(mode: str) -> None:
    """An unfinished task returns after wait_seconds with next_poll_seconds, having reported progress meanwhile."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=60)
    async with connect(fake, mode) as client:
        task_id = await create(client)
        progress = ProgressLog()
        started = anyio.current_time()
        result = await call(client, "get_task", {"task_id": task_id, "wait_seconds": 1}, progress_callback=progress)
        elapsed = anyio.current_time() - started
    task = task_of(result)
    assert elapsed >= 1  # a lower bound only: an upper one would measure the machine, not the code
    assert task["status"] in ("queued", "in_progress")
    assert task["next_poll_seconds"] == 10
    assert f"task_id='{task_id}'" in task["hint"]
    assert len(progress.events) >= 2
    progress.assert_well_formed()  # the heartbeat's interval is tested without a clock in test_client.py
    assert len(sent(fake, "GET")) > 3  # it really polled meanwhile


@pytest.mark.parametrize("dialect", ["toapis", "dashlyai"])
async def test_both_gateway_dialects_give_the_same_normalized_completed_task(mode: str, dialect: str) -> None:
    """toapis (result.data[0].url) and dashlyai (top-level url/thumbnail) normalize to one Task shape (the
    sandbox links a thumbnail in both)."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=0.3, dialect=dialect)  # type: ignore[arg-type]
    async with connect(fake, mode) as client:
        task_id = await create(client)
        task = task_of(await call(client, "get_task", {"task_id": task_id, "wait_seconds": 5}))
    created_at = int(fake.tasks[task_id].created_at)
    completed_at = int(fake.tasks[task_id].created_at + 0.3)
    common = {
        "task_id": task_id,
        "kind": "video",
        "status": "completed",
        "progress": 100,
        "model": "sora-2",
        "created_at": created_at,
        "completed_at": completed_at,
        "video_url": f"{GATEWAY_URL}/files/{task_id}.mp4",
        "upstream_status": "completed",
        "cost_estimate_usd": 1.0,  # the create's estimate, which every later read of the task carries
    }
    hint = task.pop("hint")
    assert hint.startswith("The video is ready: give the user video_url.")
    common["thumbnail_url"] = f"{GATEWAY_URL}/files/{task_id}.jpg"
    if dialect == "toapis":
        assert task == common | {"expires_at": completed_at + 86400}
    else:
        assert task == common


async def test_a_failed_generation_reports_the_gateway_reason_and_the_cost_of_retrying(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """A task that fails completes the wait as failed, with the gateway's code and message passed through."""
    task_id = await create(mcp_client, "a cat [fail]")
    task = task_of(await call(mcp_client, "get_task", {"task_id": task_id, "wait_seconds": 5}))
    assert task["status"] == "failed"
    assert task["error"] == {"code": "generation_failed", "message": FAILURE_MESSAGE}
    assert "next_poll_seconds" not in task
    assert "video_url" not in task
    assert task["hint"] == (
        f"The task failed ({FAILURE_MESSAGE}). Nothing more will happen to it. A new attempt is a new paid task: "
        "ask the user before creating one, adjusting the prompt or inputs if the reason points at them."
    )


# --------------------------------------------------------------------------------------------- upstream faults


async def test_401_says_to_check_sora_api_key(mcp_client: Client, fake: FakeGateway) -> None:
    """A rejected key: tool error naming SORA_API_KEY; nothing was created."""
    fake.fault("POST", CREATE, status=401)
    error = error_of(await call(mcp_client, "create_video", {"prompt": "a cat"}), "create_video")
    assert error == (
        "The gateway rejected the API key (HTTP 401: Authentication failed, please check your API key). "
        "Check SORA_API_KEY in this server's env. Nothing was created."
    )
    assert len(sent(fake, "POST")) == 1
    assert fake.tasks == {}


async def test_402_says_to_top_up_the_balance(mcp_client: Client, fake: FakeGateway) -> None:
    """Payment required: tool error about the account balance; not retried, nothing created."""
    fake.fault("POST", CREATE, status=402)
    error = error_of(await call(mcp_client, "create_video", {"prompt": "a cat"}), "create_video")
    assert "account balance is too low" in error
    assert "Insufficient account balance" in error
    assert "Top up the account" in error
    assert len(sent(fake, "POST")) == 1
    assert fake.tasks == {}


async def test_404_on_get_task_says_no_such_task(mcp_client: Client, fake: FakeGateway) -> None:
    """A 404 for a task this process created: no such task for this key; not retried."""
    task_id = await create(mcp_client)
    fake.fault("GET", VIDEO_STATUS, status=404)
    error = error_of(await call(mcp_client, "get_task", {"task_id": task_id}), "get_task")
    assert error.startswith(f"No task '{task_id}' exists for this API key (HTTP 404: Task not found).")
    assert len(sent(fake, "GET")) == 1


async def test_400_passes_the_gateway_message_through(mcp_client: Client, fake: FakeGateway) -> None:
    """A 400 carries the gateway's own error.message so the model can fix the request."""
    body = {"error": {"code": "invalid_prompt", "message": "prompt names a real person", "type": "invalid_request"}}
    fake.fault("POST", CREATE, status=400, json=body)
    error = error_of(await call(mcp_client, "create_video", {"prompt": "a cat"}), "create_video")
    assert error == (
        "The gateway rejected the request (HTTP 400: prompt names a real person). Fix what it names and try again. "
        "Nothing was created."
    )
    assert len(sent(fake, "POST")) == 1


async def test_422_is_reported_as_a_content_policy_refusal(mcp_client: Client, fake: FakeGateway) -> None:
    """A 422 says the content policy refused the request, with the gateway's words."""
    body = {"error": {"code": 422, "message": "Your prompt may violate our policies", "type": "content_policy"}}
    fake.fault("POST", CREATE, status=422, json=body)
    error = error_of(await call(mcp_client, "create_video", {"prompt": "a cat"}), "create_video")
    assert error == (
        "The content policy refused this request (HTTP 422: Your prompt may violate our policies). Change the "
        "prompt or inputs. Nothing was created."
    )
    assert len(sent(fake, "POST")) == 1


async def test_a_429_on_get_task_is_retried_then_succeeds(mcp_client: Client, fake: FakeGateway) -> None:
    """One 429 with Retry-After: 0 is retried; the second GET answers."""
    task_id = foreign_video(fake)
    fake.fault("GET", VIDEO_STATUS, status=429, headers={"Retry-After": "0"})
    task = task_of(await call(mcp_client, "get_task", {"task_id": task_id}))
    assert task["task_id"] == task_id
    assert len(sent(fake, "GET")) == 2


async def test_a_persistent_429_ends_in_a_rate_limit_error(mcp_client: Client, fake: FakeGateway) -> None:
    """429 on every attempt: 1 + max_retries GETs, then a tool error about the rate limit."""
    task_id = foreign_video(fake)
    fake.fault("GET", VIDEO_STATUS, status=429, headers={"Retry-After": "0"}, times=3)
    error = error_of(await call(mcp_client, "get_task", {"task_id": task_id}), "get_task")
    assert error == (
        "The gateway is rate limiting requests (HTTP 429: Too many requests, please try again later). "
        "Wait 0 s, then try again."
    )
    assert len(sent(fake, "GET")) == 3


async def test_a_5xx_on_get_task_is_retried_up_to_max_retries_then_reported(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """503 on every attempt: exactly 1 + max_retries (2) GETs, then an actionable tool error."""
    task_id = foreign_video(fake)
    fake.fault("GET", VIDEO_STATUS, status=503, times=5)
    error = error_of(await call(mcp_client, "get_task", {"task_id": task_id}), "get_task")
    assert error == "The gateway failed (HTTP 503: Service Unavailable), also on retry. Try again in a minute."
    assert len(sent(fake, "GET")) == 3


async def test_an_html_error_page_is_reported_as_html(mcp_client: Client, fake: FakeGateway) -> None:
    """A proxy's HTML page instead of JSON: retried, then a tool error that says it was HTML (not the markup)."""
    task_id = foreign_video(fake)
    page = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
    fake.fault("GET", VIDEO_STATUS, status=502, text=page, content_type="text/html", times=3)
    error = error_of(await call(mcp_client, "get_task", {"task_id": task_id}), "get_task")
    assert error == (
        "The gateway failed (HTTP 502: the gateway answered with an HTML error page instead of JSON), also on "
        "retry. Try again in a minute."
    )
    assert "<html>" not in error
    assert len(sent(fake, "GET")) == 3


async def test_malformed_json_on_get_task_is_retried_then_reported(mcp_client: Client, fake: FakeGateway) -> None:
    """A 200 whose body is not JSON: retried up to max_retries, then a tool error."""
    task_id = foreign_video(fake)
    fake.fault("GET", VIDEO_STATUS, status=200, text='{"id": "task_', content_type="application/json", times=3)
    error = error_of(await call(mcp_client, "get_task", {"task_id": task_id}), "get_task")
    assert error == (
        "The gateway answered HTTP 200 with a body that is not a JSON object, also on retry: the gateway may be "
        "failing. Try again in a minute."
    )
    assert len(sent(fake, "GET")) == 3


async def test_a_refused_connection_says_to_check_sora_base_url(mode: str) -> None:
    """Nothing listens at SORA_BASE_URL: get_task and create_video say they could not connect (a real client)."""
    url = refused_url()
    async with connect(None, mode, base_url=url) as client:
        read_error = error_of(await call(client, "get_task", {"task_id": "task_1"}), "get_task")
        create_error = error_of(await call(client, "create_video", {"prompt": "a cat"}), "create_video")
    for error in (read_error, create_error):
        assert error.startswith(f"Could not connect to the gateway at {url} (ConnectError")
        assert error.endswith("Check the network connection and SORA_BASE_URL, then try again.")
        assert "may have created" not in error


async def test_a_gateway_that_does_not_answer_says_to_raise_sora_timeout(mode: str) -> None:
    """A read that hangs past SORA_TIMEOUT is retried, then reported with advice about SORA_TIMEOUT."""
    fake = FakeGateway(api_key=API_KEY)
    task_id = foreign_video(fake)
    fake.hang("GET", VIDEO_STATUS, seconds=10, times=2)
    async with serve_app(fake.build_app()) as url, connect(None, mode, base_url=url, timeout=0.3, max_retries=1) as c:
        started = anyio.current_time()
        error = error_of(await call(c, "get_task", {"task_id": task_id}), "get_task")
        elapsed = anyio.current_time() - started
    assert error == (
        "The gateway did not answer within 0.3 s, also on retry. Try again shortly; raise SORA_TIMEOUT if it persists."
    )
    assert len(sent(fake, "GET")) == 2
    assert elapsed >= 0.6  # two attempts, each given its whole SORA_TIMEOUT


# --------------------------------------------------------------------------------------------- never pay twice


async def test_a_5xx_after_the_gateway_created_the_task_is_never_retried(mcp_client: Client, fake: FakeGateway) -> None:
    """The task was created but the answer is a 500: one POST, one task, and an error saying not to re-create."""
    fake.fail_after_create(500)
    error = error_of(await call(mcp_client, "create_video", {"prompt": "a cat"}), "create_video")
    assert MAY_EXIST in error
    assert DO_NOT_RECREATE in error
    assert "(HTTP 500: Internal Server Error)" in error
    assert len(sent(fake, "POST")) == 1
    assert len(fake.tasks) == 1


async def test_an_html_502_on_create_is_never_retried(mcp_client: Client, fake: FakeGateway) -> None:
    """A proxy's HTML 502 after the request went through: one POST, one task, the may-exist error."""
    page = "<html><body>502 Bad Gateway</body></html>"
    fake.fault("POST", CREATE, status=502, text=page, content_type="text/html", after_processing=True)
    error = error_of(await call(mcp_client, "create_video", {"prompt": "a cat"}), "create_video")
    assert MAY_EXIST in error
    assert DO_NOT_RECREATE in error
    assert "HTML error page" in error
    assert len(sent(fake, "POST")) == 1
    assert len(fake.tasks) == 1


async def test_a_create_that_times_out_is_never_retried(mode: str) -> None:
    """A POST with no answer within SORA_TIMEOUT may still create the task: one POST, the may-exist error."""
    fake = FakeGateway(api_key=API_KEY)
    fake.hang("POST", CREATE, seconds=10)
    async with serve_app(fake.build_app()) as url, connect(None, mode, base_url=url, timeout=0.3) as client:
        error = error_of(await call(client, "create_video", {"prompt": "a cat"}), "create_video")
    assert MAY_EXIST in error
    assert DO_NOT_RECREATE in error
    assert "(the gateway did not answer within 0.3 s)" in error
    assert len(sent(fake, "POST")) == 1


async def test_a_429_on_create_is_retried_and_creates_exactly_one_task(mcp_client: Client, fake: FakeGateway) -> None:
    """A 429 is a definite refusal, so the create is retried: two POSTs, one task, a normal result."""
    fake.fault("POST", CREATE, status=429, headers={"Retry-After": "0"})
    task_id = await create(mcp_client)
    assert len(sent(fake, "POST")) == 2
    assert list(fake.tasks) == [task_id]


# --------------------------------------------------------------------------------------------- configuration


async def test_without_an_api_key_tools_list_but_every_call_names_sora_api_key(mode: str) -> None:
    """No SORA_API_KEY: discovery works; every tool call is an error naming it; the gateway sees nothing."""
    fake = FakeGateway(api_key=API_KEY)
    async with connect(fake, mode, api_key=None) as client:
        assert sorted(tool.name for tool in (await client.list_tools()).tools) == TOOL_NAMES
        calls: list[tuple[str, dict[str, Any]]] = [
            ("create_video", {"prompt": "a cat"}),
            ("create_character", {"url": "https://example.com/v.mp4", "timestamps": "1,3"}),
            ("get_task", {"task_id": "task_1"}),
            ("get_task", {"task_id": "task_1", "wait_seconds": 5}),
            ("remix_video", {"task_id": "task_1", "prompt": "add snow"}),
            ("download_video", {"task_id": "task_1"}),
        ]
        for tool, arguments in calls:
            error = error_of(await call(client, tool, arguments), tool)
            assert error.startswith("SORA_API_KEY is not set.")
            assert "--sandbox" in error
    assert fake.requests == []


CANARY = "sk-canary-5b1e0c7d9a2f48e6"


async def test_the_api_key_never_reaches_tool_results_or_logs(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    """A 401 echoing the key shows *** instead; no result and no log record at any level contains the key."""
    caplog.set_level(logging.DEBUG)
    fake = FakeGateway(api_key=CANARY, video_seconds=0.3)
    echo = {"error": {"code": 401, "message": f"Invalid API key {CANARY}", "type": "authentication_error"}}
    fake.fault("POST", CREATE, status=401, json=echo)
    fake.fault("GET", CHARACTER_STATUS, status=401, json=echo)
    results = []
    async with connect(fake, mode, api_key=CANARY) as client:
        results.append(await call(client, "create_video", {"prompt": "a cat"}))
        task_id = await create(client)
        results.append(await call(client, "get_task", {"task_id": task_id, "wait_seconds": 5}))
        results.append(await call(client, "get_task", {"task_id": "task_unknown"}))
    assert error_of(results[0], "create_video").startswith(
        "The gateway rejected the API key (HTTP 401: Invalid API key ***)"
    )
    assert task_of(results[1])["status"] == "completed"
    assert "(HTTP 401: Invalid API key ***)" in error_of(results[2], "get_task")
    for result in results:
        assert CANARY not in text_of(result)
        assert CANARY not in json.dumps(result.structured_content)
    assert all(r.headers["authorization"] == f"Bearer {CANARY}" for r in fake.requests)  # the key was in use
    assert caplog.records
    for record in caplog.records:
        assert CANARY not in record.getMessage()
    assert CANARY not in caplog.text


async def test_the_api_key_echoed_in_a_transient_failure_never_reaches_results_or_logs(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway that echoes the key in 503 messages while a wait polls: neither the result nor the logs show it."""
    caplog.set_level(logging.DEBUG)
    fake = FakeGateway(api_key=CANARY, video_seconds=0.5)
    echo = {"error": {"code": 503, "message": f"upstream refused key {CANARY}", "type": "server_error"}}
    fake.hang("GET", VIDEO_STATUS, seconds=0)  # the first read of the wait answers normally...
    fake.fault("GET", VIDEO_STATUS, status=503, json=echo, times=3)  # ...then a poll fails, with retries
    async with connect(fake, mode, api_key=CANARY) as client:
        task_id = await create(client)
        result = await call(client, "get_task", {"task_id": task_id, "wait_seconds": 5})
    task = task_of(result)
    assert task["hint"].startswith("The last poll failed")
    assert CANARY not in text_of(result)
    assert CANARY not in json.dumps(task)
    assert CANARY not in caplog.text


# --------------------------------------------------------------------------------------------- create and wait


async def test_create_video_with_wait_seconds_returns_the_finished_video_in_one_call(
    fake: FakeGateway, mode: str
) -> None:
    """wait_seconds on a create waits like get_task: one call from prompt to video_url, with progress."""
    log = ProgressLog()
    async with connect(fake, mode) as client:
        task = task_of(
            await call(client, "create_video", {"prompt": "a cat", "wait_seconds": 5}, progress_callback=log)
        )
    assert (task["status"], task["progress"]) == ("completed", 100)
    assert task["video_url"].endswith(f"/files/{task['task_id']}.mp4")
    assert len(sent(fake, "POST")) == 1
    assert log.values and log.values == sorted(set(log.values))


async def test_a_failed_wait_after_a_create_still_returns_the_new_task_id(fake: FakeGateway) -> None:
    """The gateway failing every read after the create: the created task comes back with a note, not an error."""
    fake.fault("GET", VIDEO_STATUS, status=503, times=100)
    async with connect(fake, "auto") as client:
        task = task_of(await call(client, "create_video", {"prompt": "a cat", "wait_seconds": 5}))
    assert task["task_id"] in fake.tasks and task["status"] == "queued"
    assert "Waiting for it failed (The gateway failed (HTTP 503" in task["hint"]
    assert "poll it with get_task" in task["hint"]


async def test_a_reused_create_does_not_wait(fake: FakeGateway) -> None:
    """An identical create within the window answers at once with reused: true, even with wait_seconds."""
    fake.video_seconds = 600
    async with connect(fake, "auto") as client:
        first = task_of(await call(client, "create_video", {"prompt": "a cat"}))
        before = len(fake.requests)
        again = task_of(await call(client, "create_video", {"prompt": "a cat", "wait_seconds": 5}))
    assert again["task_id"] == first["task_id"] and again["reused"] is True
    assert [r.method for r in fake.requests[before:]] == ["GET"]  # one fresh read of the earlier task, no polling
