"""The task journal through the MCP tools and resources (official client, in memory, against the fake gateway):
list_tasks, duplicate protection, "outcome unknown", endpoint choice, resources and a broken journal."""

import contextlib
import itertools
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from conftest import make_settings
from fake_gateway import FakeGateway, ManualClock
from mcp import Client, MCPError
from mcp.types import CallToolResult, TextContent, TextResourceContents

from sora_mcp.journal import Journal, journal_path
from sora_mcp.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("journal_backend")]
"""Every test runs on both journal backends (SQLite and PostgreSQL) unless it names one."""
SQLITE_ONLY = pytest.mark.parametrize("journal_backend", ["sqlite"], indirect=True)

CREATE = "/v1/videos/generations"
VIDEO_STATUS = "/v1/videos/generations/"
CHARACTER_STATUS = "/v1/characters_tasks/"
REUSED = "Nothing was sent and nothing billed again: an identical create_video request was made"
AGAIN = "Only if the user wants another one on purpose, call create_video with allow_duplicate=true"


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Protocol era: 2026-07-28 ("auto") or the 2025-11-25 handshake."""
    value: str = request.param
    return value


@asynccontextmanager
async def connect(
    fake: FakeGateway,
    *,
    mode: str = "auto",
    clock: Callable[[], float] | None = None,
    journal: Journal | None = None,
    **overrides: Any,
) -> AsyncIterator[Client]:
    """An in-memory MCP client of a server whose gateway client talks to ``fake`` in memory."""
    async with AsyncExitStack() as stack:
        transport = httpx2.ASGITransport(app=fake.build_app())
        http = await stack.enter_async_context(httpx2.AsyncClient(transport=transport))
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        server = build_server(make_settings(**overrides), http_client=http, journal=journal, **extra)
        yield await stack.enter_async_context(Client(server, mode=mode))


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    with anyio.fail_after(10):
        return await client.call_tool(tool, arguments)


def text_of(result: CallToolResult) -> str:
    item = result.content[0]
    assert isinstance(item, TextContent)
    return item.text


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful call, which the text content repeats as compact JSON."""
    assert result.is_error is False, text_of(result)
    assert result.structured_content is not None
    assert json.loads(text_of(result)) == result.structured_content
    return result.structured_content


def error_of(result: CallToolResult, tool: str) -> str:
    assert result.is_error is True
    text = text_of(result)
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), text
    return text[len(prefix) :]


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def posts(fake: FakeGateway) -> int:
    return sum(1 for r in fake.requests if r.method == "POST")


def gets(fake: FakeGateway, prefix: str = "/") -> list[str]:
    return [r.path for r in fake.requests if r.method == "GET" and r.path.startswith(prefix)]


async def list_tasks(client: Client, **arguments: Any) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = ok(await call(client, "list_tasks", arguments))["tasks"]
    return tasks


# --------------------------------------------------------------------------------------------- list_tasks


async def test_list_tasks_shows_created_tasks_newest_first_with_prompt_and_state(fake: FakeGateway, mode: str) -> None:
    """Every create is in list_tasks, newest first, with its prompt, submission time and last known state."""
    clock = ManualClock()
    fake.clock = clock
    async with connect(fake, mode=mode, clock=clock) as client:
        first = ok(await call(client, "create_video", {"prompt": "a cat surfing", "duration": 10}))
        clock.advance(5)
        second = ok(await call(client, "create_character", {"timestamps": "1,3", "from_task": first["task_id"]}))
        listed = await list_tasks(client)
    assert [task["task_id"] for task in listed] == [second["task_id"], first["task_id"]]
    video = listed[1]
    assert video == {
        "task_id": first["task_id"],
        "kind": "video",
        "status": "queued",
        "progress": 0,
        "model": "sora-2",
        "created_at": int(clock.now) - 5,
        "upstream_status": "queued",
        "next_poll_seconds": 10,
        "prompt": "a cat surfing",
        "submitted_at": int(clock.now) - 5,
        "hint": "Last known state, from 2026-01-14 08:43 UTC. The video is queued. Call get_task with "
        f"task_id='{first['task_id']}' and wait_seconds=50 to wait for it (or poll again in next_poll_seconds); "
        "do not create it again.",
        "cost_estimate_usd": 1.0,
    }
    assert (listed[0]["kind"], listed[0]["submitted_at"], "prompt" in listed[0]) == ("character", int(clock.now), False)
    assert "cost_estimate_usd" not in listed[0]  # no price for characters unless SORA_PRICES sets one


async def test_list_tasks_filters_by_kind_and_status_and_limits(fake: FakeGateway) -> None:
    """kind, status and limit narrow the list; get_task's reads update the status it filters on."""
    async with connect(fake) as client:
        ids = [ok(await call(client, "create_video", {"prompt": f"video {n}"}))["task_id"] for n in range(3)]
        ok(await call(client, "create_character", {"timestamps": "1,3", "url": "https://v.test/a.mp4"}))
        with anyio.fail_after(10):
            done = ok(await call(client, "get_task", {"task_id": ids[0], "wait_seconds": 5}))
        assert done["status"] == "completed"
        assert [t["prompt"] for t in await list_tasks(client, kind="video")] == ["video 2", "video 1", "video 0"]
        assert [t["task_id"] for t in await list_tasks(client, status="completed")] == [ids[0]]
        assert len(await list_tasks(client, limit=2)) == 2
        assert len(await list_tasks(client, kind="character")) == 1
        bad = await call(client, "list_tasks", {"status": "done"})
    assert bad.is_error is True
    assert "status" in text_of(bad)


async def test_list_tasks_refresh_reads_only_unfinished_tasks_from_the_gateway(fake: FakeGateway) -> None:
    """refresh=True re-reads unfinished tasks (and stores what it read); finished ones are not read again."""
    clock = ManualClock()
    fake.clock = clock
    async with connect(fake, clock=clock) as client:
        done = ok(await call(client, "create_video", {"prompt": "finished"}))["task_id"]
        clock.advance(fake.video_seconds + 1)
        ok(await call(client, "get_task", {"task_id": done}))
        running = ok(await call(client, "create_video", {"prompt": "running"}))["task_id"]
        clock.advance(fake.video_seconds + 1)
        before = len(fake.requests)
        stale = await list_tasks(client)
        assert (stale[0]["task_id"], stale[0]["status"]) == (running, "queued")
        assert len(fake.requests) == before
        fresh = await list_tasks(client, refresh=True)
        assert gets(fake)[-1:] == [VIDEO_STATUS + running] and len(fake.requests) == before + 1
        assert [(t["task_id"], t["status"]) for t in fresh] == [(running, "completed"), (done, "completed")]
        assert fresh[0]["prompt"] == "running"
        assert fresh[0]["video_url"].endswith(".mp4")
        assert (await list_tasks(client))[0]["status"] == "completed"


async def test_a_refused_create_leaves_nothing_in_the_journal(fake: FakeGateway) -> None:
    """A definite refusal (402) created nothing: list_tasks stays empty and the same request may be sent again."""
    fake.fault("POST", CREATE, status=402)
    async with connect(fake) as client:
        refused = await call(client, "create_video", {"prompt": "a cat"})
        assert "balance is too low" in error_of(refused, "create_video")
        assert await list_tasks(client) == []
        ok(await call(client, "create_video", {"prompt": "a cat"}))
    assert posts(fake) == 2


# --------------------------------------------------------------------------------------------- duplicates


async def test_an_identical_create_returns_the_earlier_task_without_sending(fake: FakeGateway, mode: str) -> None:
    """The same arguments again: no second POST, the earlier task freshly read, reused=true and a hint."""
    async with connect(fake, mode=mode) as client:
        first = ok(await call(client, "create_video", {"prompt": "a cat", "size": "16:9"}))
        again = ok(await call(client, "create_video", {"size": "16:9", "prompt": "  a cat "}))
        other = ok(await call(client, "create_video", {"prompt": "a cat", "size": "9:16"}))
    assert posts(fake) == 2
    assert again["task_id"] == first["task_id"] != other["task_id"]
    assert again["reused"] is True and "reused" not in first
    assert again["hint"].startswith(REUSED + " 0 s ago, and this is its task. The video is")
    assert again["hint"].endswith(AGAIN + " (it costs money again).")
    assert gets(fake) == [VIDEO_STATUS + first["task_id"]]


async def test_allow_duplicate_creates_another_task_on_purpose(fake: FakeGateway) -> None:
    """allow_duplicate=true sends the request again and returns a new task."""
    async with connect(fake) as client:
        first = ok(await call(client, "create_character", {"timestamps": "1,3", "url": "https://v.test/a.mp4"}))
        again = ok(await call(client, "create_character", {"timestamps": "1,3", "url": "https://v.test/a.mp4"}))
        second = ok(
            await call(
                client,
                "create_character",
                {"timestamps": "1,3", "url": "https://v.test/a.mp4", "allow_duplicate": True},
            )
        )
        listed = await list_tasks(client)
    assert again["task_id"] == first["task_id"] != second["task_id"]
    assert "reused" not in second
    assert posts(fake) == 2
    assert [t["task_id"] for t in listed] == [second["task_id"], first["task_id"]]


async def test_the_duplicate_window_expires_with_the_injected_clock(fake: FakeGateway) -> None:
    """Inside SORA_DUPLICATE_WINDOW the task is reused; a second after it, a new one is created."""
    clock = ManualClock()
    fake.clock = clock
    async with connect(fake, clock=clock, duplicate_window=120) as client:
        first = ok(await call(client, "create_video", {"prompt": "a cat"}))
        clock.advance(120)
        inside = ok(await call(client, "create_video", {"prompt": "a cat"}))
        clock.advance(1)
        outside = ok(await call(client, "create_video", {"prompt": "a cat"}))
    assert inside["task_id"] == first["task_id"]
    assert inside["hint"].startswith(REUSED + " 2 min ago")
    assert outside["task_id"] != first["task_id"]
    assert posts(fake) == 2


async def test_a_duplicate_window_of_zero_turns_the_protection_off(fake: FakeGateway) -> None:
    """SORA_DUPLICATE_WINDOW=0: every create is sent."""
    async with connect(fake, duplicate_window=0) as client:
        ids = {ok(await call(client, "create_video", {"prompt": "a cat"}))["task_id"] for _ in range(2)}
    assert len(ids) == 2 and posts(fake) == 2


async def test_a_failed_task_may_be_created_again(fake: FakeGateway) -> None:
    """After the earlier identical task failed, the same request creates a new task (a deliberate retry)."""
    async with connect(fake) as client:
        first = ok(await call(client, "create_video", {"prompt": "a cat [fail]"}))
        with anyio.fail_after(10):
            failed = ok(await call(client, "get_task", {"task_id": first["task_id"], "wait_seconds": 5}))
        assert failed["status"] == "failed"
        again = ok(await call(client, "create_video", {"prompt": "a cat [fail]"}))
    assert again["task_id"] != first["task_id"]


# --------------------------------------------------------------------------------------------- outcome unknown


async def test_a_500_after_create_is_recorded_and_blocks_a_second_paid_job(fake: FakeGateway, mode: str) -> None:
    """500-after-create: the error says the journal has it; list_tasks shows it; the same request is not resent."""
    fake.fail_after_create(status=500)
    async with connect(fake, mode=mode) as client:
        lost = error_of(await call(client, "create_video", {"prompt": "a cat"}), "create_video")
        listed = await list_tasks(client)
        again = ok(await call(client, "create_video", {"prompt": "a cat"}))
        assert posts(fake) == 1
        deliberate = ok(await call(client, "create_video", {"prompt": "a cat", "allow_duplicate": True}))
    assert lost.startswith("The gateway may have created this video task, and may bill it, but its answer was lost")
    assert lost.endswith(
        "or decide to try again knowingly with allow_duplicate=true. The submission is recorded in the task "
        "journal: list_tasks shows it (outcome_unknown), and the same request again within the duplicate window "
        "returns it instead of paying twice."
    )
    (entry,) = listed
    assert entry["outcome_unknown"] is True and "task_id" not in entry
    assert (entry["kind"], entry["status"], entry["prompt"], entry["model"]) == ("video", "unknown", "a cat", "sora-2")
    assert entry["hint"].startswith("The outcome of this video request, sent at ")
    assert (
        "is unknown (HTTP 500: Internal Server Error): the gateway may have created, and billed, a task"
        in (entry["hint"])
    )
    assert (again["reused"], again["outcome_unknown"], "task_id" in again) == (True, True, False)
    assert again["hint"].startswith("Nothing was sent: an identical create_video request was made 0 s ago. ")
    assert "call create_video again with allow_duplicate=true (it costs money again)" in again["hint"]
    assert deliberate["task_id"] and posts(fake) == 2


async def test_get_task_of_the_lost_task_links_it_to_the_unknown_submission(fake: FakeGateway) -> None:
    """When the user finds the lost task's id, get_task records it as that submission's result."""
    fake.fail_after_create(status=502)
    async with connect(fake) as client:
        await call(client, "create_video", {"prompt": "a cat"})
        (lost_id,) = fake.tasks
        found = ok(await call(client, "get_task", {"task_id": lost_id}))
        listed = await list_tasks(client)
        again = ok(await call(client, "create_video", {"prompt": "a cat"}))
    assert found["hint"].startswith("This is the task of the video request sent at ")
    assert "whose outcome was unknown; the journal now records it. The video is" in found["hint"]
    assert [(t["task_id"], t["prompt"], "outcome_unknown" in t) for t in listed] == [(lost_id, "a cat", False)]
    assert (again["task_id"], again["reused"]) == (lost_id, True)
    assert posts(fake) == 1


async def test_a_create_cancelled_in_flight_is_recorded_as_outcome_unknown(fake: FakeGateway) -> None:
    """Cancelling the tool call while the POST hangs leaves an outcome-unknown row, not a silent gap."""
    fake.hang("POST", CREATE)
    async with connect(fake) as client:
        with anyio.move_on_after(0.5):
            await client.call_tool("create_video", {"prompt": "a cat"})
        with anyio.fail_after(5):
            for _ in itertools.count():  # the server records it once the cancellation reached the tool
                listed = await list_tasks(client)
                if listed and "cancelled" in listed[0]["hint"]:
                    break
                await anyio.sleep(0.02)
    assert listed[0]["outcome_unknown"] is True
    assert "is unknown (the create call was cancelled before the gateway answered)" in listed[0]["hint"]


# --------------------------------------------------------------------------------------------- get_task


async def test_get_task_asks_the_right_endpoint_for_a_task_another_process_created(fake: FakeGateway) -> None:
    """A character task created by one server is read by a second one straight from /v1/characters_tasks."""
    async with connect(fake) as first:
        task_id = ok(await call(first, "create_character", {"timestamps": "1,3", "url": "https://v.test/a.mp4"}))[
            "task_id"
        ]
    fake.requests.clear()
    async with connect(fake) as second:
        read = ok(await call(second, "get_task", {"task_id": task_id}))
    assert read["kind"] == "character"
    assert gets(fake) == [CHARACTER_STATUS + task_id]


async def test_get_task_records_tasks_the_journal_did_not_know(fake: FakeGateway) -> None:
    """A task created elsewhere and read with get_task appears in list_tasks, with its state."""
    fake.clock = ManualClock()
    task_id = fake.create({"model": "sora-2", "prompt": "made elsewhere"})["id"]
    async with connect(fake) as client:
        ok(await call(client, "get_task", {"task_id": task_id}))
        listed = await list_tasks(client)
    assert [(t["task_id"], t["status"], "prompt" in t) for t in listed] == [(task_id, "queued", False)]


# --------------------------------------------------------------------------------------------- resources


async def test_resources_serve_a_task_and_the_recent_tasks_as_json(fake: FakeGateway, mode: str) -> None:
    """task://{task_id} is a template and tasks://recent a resource; both read as the Task JSON."""
    fake.clock = ManualClock()
    async with connect(fake, mode=mode) as client:
        templates = (await client.list_resource_templates()).resource_templates
        resources = (await client.list_resources()).resources
        assert [(t.uri_template, t.mime_type) for t in templates] == [
            ("task://{task_id}", "application/json"),
            ("sora-video://{task_id}", "video/mp4"),
        ]
        assert sorted((str(r.uri), r.mime_type) for r in resources) == [
            ("spending://summary", "application/json"),
            ("tasks://recent", "application/json"),
            ("ui://sora-mcp/player.html", "text/html;profile=mcp-app"),
        ]
        [spending] = (await client.read_resource("spending://summary")).contents
        assert isinstance(spending, TextResourceContents)
        assert json.loads(spending.text) == ok(await call(client, "get_spending", {}))
        created = ok(await call(client, "create_video", {"prompt": "a cat"}))
        (content,) = (await client.read_resource(f"task://{created['task_id']}")).contents
        assert isinstance(content, TextResourceContents)
        task = json.loads(content.text)
        assert (task["task_id"], task["kind"], task["status"]) == (created["task_id"], "video", "queued")
        (recent,) = (await client.read_resource("tasks://recent")).contents
        assert isinstance(recent, TextResourceContents)
        assert [t["task_id"] for t in json.loads(recent.text)["tasks"]] == [created["task_id"]]
        assert json.loads(recent.text)["tasks"][0]["prompt"] == "a cat"
        with pytest.raises(MCPError, match="No task 'task_missing' exists for this API key"):
            await client.read_resource("task://task_missing")


async def test_the_task_resource_falls_back_to_the_journal_when_the_gateway_fails(fake: FakeGateway) -> None:
    """When the gateway cannot be read, task://{id} serves the last known state and says so."""
    async with connect(fake) as client:
        created = ok(await call(client, "create_video", {"prompt": "a cat"}))
        fake.fault("GET", VIDEO_STATUS, status=503, times=10)
        (content,) = (await client.read_resource(f"task://{created['task_id']}")).contents
    assert isinstance(content, TextResourceContents)
    task = json.loads(content.text)
    assert task["task_id"] == created["task_id"]
    assert task["hint"].startswith(
        "Could not read it from the gateway just now (HTTP 503: Service Unavailable). Last known state, from "
    )


# --------------------------------------------------------------------------------------------- a broken journal


@SQLITE_ONLY
async def test_a_corrupt_journal_is_reported_while_get_task_and_create_keep_working(
    fake: FakeGateway, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Corrupt file: a start-up warning, list_tasks and tasks://recent explain, get_task works, create warns."""
    path = journal_path(state_dir)
    write_file(path, b"garbage" * 1000)
    task_id = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    problem = f"The task journal {path} is damaged or not a SQLite database (file is not a database)."
    with caplog.at_level(logging.WARNING, logger="sora_mcp"):
        async with connect(fake) as client:
            listed = error_of(await call(client, "list_tasks", {}), "list_tasks")
            read = ok(await call(client, "get_task", {"task_id": task_id}))
            created = ok(await call(client, "create_video", {"prompt": "a dog"}))
            with pytest.raises(MCPError, match="is damaged or not a SQLite database"):
                await client.read_resource("tasks://recent")
    assert listed.startswith(problem + " Move the file aside")
    assert read["task_id"] == task_id
    assert created["hint"].endswith(
        f" Note: this task is not recorded in the task journal ({problem} Move the file "
        f"aside (for example rename it to journal.sqlite3.broken) and restart sora-mcp to "
        "start a new journal, or set SORA_STATE_DIR to another directory.), so keep its task_id."
    )
    assert path.read_bytes() == b"garbage" * 1000
    assert any(
        record.getMessage().startswith(problem) and record.getMessage().endswith("list_tasks cannot answer.")
        for record in caplog.records
    )


@SQLITE_ONLY
async def test_a_journal_that_fails_after_working_refuses_to_spend_money(fake: FakeGateway, state_dir: Path) -> None:
    """If the write-ahead cannot be recorded by a journal that worked, nothing is sent and the error says why."""
    journal = Journal(journal_path(state_dir), busy_timeout=0.1)
    async with connect(fake, journal=journal) as client:
        ok(await call(client, "list_tasks", {}))
        with contextlib.closing(sqlite3.connect(journal.path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            refused = error_of(await call(client, "create_video", {"prompt": "a cat"}), "create_video")
            other.execute("ROLLBACK")
        ok(await call(client, "create_video", {"prompt": "a cat"}))
    assert refused.startswith(
        "Nothing was sent to the gateway, so nothing was billed: sora-mcp does not spend money on a task it cannot "
        f"record. The task journal {journal.path} stayed locked by another process for more than 0.1 s"
    )
    assert refused.endswith("Then call create_video again.")
    assert posts(fake) == 1


async def test_sandbox_tasks_are_listed_apart_from_real_ones_and_marked(fake: FakeGateway) -> None:
    """A sandbox server lists only sandbox tasks, each marked simulated once; a real server does not list them."""
    async with connect(fake) as real:
        real_id = ok(await call(real, "create_video", {"prompt": "a real cat"}))["task_id"]
    async with Client(build_server(make_settings(sandbox=True, api_key=None))) as sandbox:
        simulated = ok(await call(sandbox, "create_video", {"prompt": "a simulated cat"}))
        (listed,) = await list_tasks(sandbox)
    assert listed["task_id"] == simulated["task_id"] != real_id
    assert listed["sandbox"] is True
    assert listed["hint"].startswith("[Sandbox: simulated task, nothing was billed] Last known state, from ")
    assert listed["hint"].count("[Sandbox") == 1
    async with connect(fake) as real:
        assert [t["task_id"] for t in await list_tasks(real)] == [real_id]
