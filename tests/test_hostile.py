"""A hostile or broken gateway: every answer below gets a bounded, actionable outcome and the server keeps serving.

The gateway is the real fake (a Starlette app over loopback HTTP where transport matters: compression, trickling)
scripted to send what a broken or hostile gateway sends: oversized and compressed bodies, bodies that trickle, wrong
types, the API key echoed back in escaped form, odd task ids, deep nesting. Memory is measured in a subprocess.
"""

import gzip
import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import anyio
import httpx2
import pytest
from conftest import API_KEY, make_settings
from fake_gateway import FakeGateway, serve_in_thread
from mcp import Client
from mcp.types import CallToolResult, TextContent

from sora_mcp.client import SoraClient
from sora_mcp.create_requests import VideoRequest
from sora_mcp.embedded import serve_app
from sora_mcp.errors import APIResponseError, APITimeoutError, CreateOutcomeUnknownError
from sora_mcp.journal import Journal
from sora_mcp.server import build_server
from sora_mcp.tasks import TaskBook, TaskService

pytestmark = pytest.mark.anyio

STATUS = re.compile(r"/v1/videos/generations/.+")
CREATE = "/v1/videos/generations"


def text_of(result: CallToolResult) -> str:
    return "\n".join(item.text for item in result.content if isinstance(item, TextContent))


async def in_memory(fake: FakeGateway, **settings: Any) -> tuple[Client, httpx2.AsyncClient]:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.build_app()))
    return Client(build_server(make_settings(**settings), http_client=http)), http


async def call(fake: FakeGateway, tool: str, arguments: dict[str, Any], **settings: Any) -> CallToolResult:
    client, http = await in_memory(fake, **settings)
    async with http, client:
        with anyio.fail_after(20):
            result = await client.call_tool(tool, arguments)
            follow_up = await client.call_tool("list_tasks", {})  # the server still answers
    assert follow_up.is_error is False, text_of(follow_up)
    return result


# --------------------------------------------------------------------------------------------- the key


async def test_a_key_echoed_in_a_task_body_in_escaped_form_is_masked_in_results_and_the_journal() -> None:
    """A failed task whose error message carries the key (written with \\u escapes, so raw-text masking misses
    it) shows *** in get_task and, later, in list_tasks from the journal."""
    fake = FakeGateway(api_key=API_KEY)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    escaped = "".join(f"\\u{ord(c):04x}" for c in API_KEY)
    body = f'{{"id": "{task_id}", "status": "failed", "error": {{"message": "key {escaped} is banned"}}}}'
    fake.fault("GET", STATUS, status=200, text=body, content_type="application/json")
    client, http = await in_memory(fake)
    async with http, client:
        read = await client.call_tool("get_task", {"task_id": task_id})
        listed = await client.call_tool("list_tasks", {})
    for result in (read, listed):
        assert API_KEY not in text_of(result) and API_KEY not in json.dumps(result.structured_content)
    assert read.structured_content is not None
    assert read.structured_content["error"]["message"] == "key *** is banned"


# --------------------------------------------------------------------------------------------- size and time


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip-bomb"])
async def test_an_oversized_answer_is_refused_after_the_cap_without_reading_it_all(compressed: bool) -> None:
    """A body past MAX_ANSWER_BYTES (counted decoded: a small gzip that inflates to 50 MB too) is a clear error."""
    fake = FakeGateway(api_key=API_KEY)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    huge = b'{"id": "' + task_id.encode() + b'", "padding": "' + b"a" * (50 * 1024 * 1024) + b'"}'
    content, headers = (gzip.compress(huge, 6), {"content-encoding": "gzip"}) if compressed else (huge, {})
    fake.fault("GET", STATUS, status=200, content=content, headers=headers, content_type="application/json", times=5)
    with serve_in_thread(fake.build_app()) as url:
        async with SoraClient(make_settings(base_url=url, max_retries=0)) as sora:
            with pytest.raises(APIResponseError, match=r"with a body over 1024 KB"):
                await sora.get_task(task_id)


async def test_a_trickling_answer_is_cut_at_sora_timeout_for_the_whole_request() -> None:
    """One byte every 0.2 s never trips a per-read timeout; SORA_TIMEOUT bounds the whole request instead."""
    fake = FakeGateway(api_key=API_KEY)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    body = json.dumps({"id": task_id, "status": "queued"}).encode()
    fake.stream_file(STATUS, body, content_type="application/json", chunk_size=1, chunk_delay=0.2)
    async with (
        serve_app(fake.build_app()) as url,
        SoraClient(make_settings(base_url=url, timeout=1, max_retries=0)) as sora,
    ):
        with anyio.fail_after(10), pytest.raises(APITimeoutError, match="did not answer within 1 s"):
            await sora.get_task(task_id)


async def test_a_create_whose_answer_trickles_past_the_timeout_is_outcome_unknown() -> None:
    """The create was sent and may exist: the write-ahead row becomes outcome unknown, nothing is retried."""
    fake = FakeGateway(api_key=API_KEY)
    answer = b'{"id": "task_x", "status": "queued"}'
    fake.stream_file(CREATE, answer, content_type="application/json", chunk_size=1, chunk_delay=0.2, method="POST")
    async with serve_app(fake.build_app()) as url, SoraClient(make_settings(base_url=url, timeout=1)) as sora:
        with anyio.fail_after(10), pytest.raises(CreateOutcomeUnknownError):
            await sora.create(VideoRequest(prompt="a cat"))
    assert sum(r.method == "POST" for r in fake.requests) == 1


@pytest.mark.slow
def test_memory_stays_flat_against_a_100_mb_answer_and_a_gzip_bomb() -> None:
    """Measured in a fresh process: its peak RSS after reading both answers stays far below their size."""
    fake = FakeGateway(api_key=API_KEY)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    huge = b'{"id": "' + task_id.encode() + b'", "padding": "' + b"a" * (100 * 1024 * 1024) + b'"}'
    fake.fault("GET", STATUS, status=200, content=huge, content_type="application/json")
    bomb = gzip.compress(b'{"padding": "' + b"a" * (500 * 1024 * 1024) + b'"}', 9)
    fake.fault("GET", STATUS, status=200, content=bomb, headers={"content-encoding": "gzip"})
    del huge
    script = textwrap.dedent(
        f"""
        import anyio, sys
        sys.path.insert(0, "tests")
        from conftest import make_settings
        from sora_mcp.client import SoraClient
        from sora_mcp.errors import APIResponseError

        async def main():
            async with SoraClient(make_settings(base_url=sys.argv[1], max_retries=0)) as sora:
                for _ in range(2):
                    try:
                        await sora.get_task({task_id!r})
                    except APIResponseError as exc:
                        print("refused:", exc)
            # VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork and exec)
            status = open("/proc/self/status").read()
            print("peak_mb", int(status.split("VmHWM:")[1].split()[0]) // 1024)

        anyio.run(main)
        """
    )
    with serve_in_thread(fake.build_app()) as url:
        done = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("refused:") == 2, done.stdout
    peak = int(done.stdout.rsplit("peak_mb", 1)[1])
    assert peak < 150, f"peak RSS {peak} MB"  # before the cap: about 1.5 GB (gzip bomb)


# --------------------------------------------------------------------------------------------- wrong types


WRONG_TYPES = [
    {"status": "failed", "completed_at": "NaN", "error": ["list"]},
    {"status": {}, "created_at": 1e300, "progress": "NaN"},
    {"status": "completed", "expires_at": float("inf"), "url": 12, "result": "x"},
    {"status": ["queued"], "progress": {"a": 1}, "created_at": -5, "estimated_time": "soon"},
    {"status": "completed", "completed_at": 10**400, "characters": [1, None, "x"], "result": {"data": "x"}},
    {"id": 12345, "status": "in_progress", "progress": 1e308, "error": {"code": {"x": 1}}},
]


@pytest.mark.parametrize("body", WRONG_TYPES, ids=range(len(WRONG_TYPES)))
async def test_wrongly_typed_task_bodies_give_a_tolerant_task_not_a_crash(body: dict[str, Any]) -> None:
    fake = FakeGateway(api_key=API_KEY)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    text = json.dumps({"id": task_id, **body}) if "id" not in body else json.dumps(body)
    fake.fault("GET", STATUS, status=200, text=text.replace("Infinity", "1e999"), content_type="application/json")
    result = await call(fake, "get_task", {"task_id": task_id})
    assert result.is_error is False, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["task_id"] == task_id  # the id asked for, whatever the body says


async def test_deeply_nested_json_on_a_create_says_what_happened() -> None:
    fake = FakeGateway(api_key=API_KEY)
    fake.fault("POST", CREATE, status=200, text="[" * 100_000 + "]" * 100_000, content_type="application/json")
    result = await call(fake, "create_video", {"prompt": "a cat"})
    assert result.is_error is True
    assert "may have created this video task" in text_of(result)
    assert "a body that is not a JSON object" in text_of(result)


@pytest.mark.parametrize("odd", ["../../x", "task\nx", "t" * 100_000, "task_ok?x=1#y", " "])
async def test_a_create_answered_with_an_invalid_task_id_is_outcome_unknown(odd: str) -> None:
    """An id that breaks the agent's own id rule is never returned or stored: the create's outcome is unknown."""
    fake = FakeGateway(api_key=API_KEY)
    fake.fault("POST", CREATE, status=200, json={"id": odd, "status": "queued"})
    result = await call(fake, "create_video", {"prompt": "a cat"})
    assert result.is_error is True
    assert "may have created this video task" in text_of(result)
    assert odd.strip() not in text_of(result) or len(odd) < 60


async def test_one_odd_answer_does_not_send_later_reads_to_the_character_endpoint() -> None:
    """A video task answered once as result.type 'character' is read again at the video endpoint."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    odd = {"id": task_id, "status": "completed", "result": {"type": "character"}}
    fake.fault("GET", STATUS, status=200, json=odd)
    client, http = await in_memory(fake)
    async with http, client:
        await client.call_tool("get_task", {"task_id": task_id})
        again = await client.call_tool("get_task", {"task_id": task_id})
        download = await client.call_tool("download_video", {"task_id": task_id})
    assert again.is_error is False, text_of(again)
    assert "/v1/characters_tasks/" not in " ".join(r.path for r in fake.requests)
    assert "No task" not in text_of(download)


async def test_a_refresh_against_a_hanging_gateway_ends_at_its_deadline_with_what_it_has(tmp_path: Any) -> None:
    """Every unfinished task hangs on read: the refresh returns at its deadline, each task marked as not read."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    settings = make_settings(timeout=30, max_retries=3)
    transport = httpx2.ASGITransport(app=fake.build_app())
    async with httpx2.AsyncClient(transport=transport) as http, SoraClient(settings, http_client=http) as sora:
        book = TaskBook(Journal(tmp_path / "journal.sqlite3"), settings, scope=settings.base_url)
        service = TaskService(sora, book, settings)
        for prompt in ("one", "two", "three"):
            await service.create(VideoRequest(prompt=prompt))
        fake.hang("GET", STATUS, seconds=3600, times=10)
        with anyio.fail_after(10):
            listed = await service.list_tasks(refresh=True, refresh_deadline=0.5)
        await book.journal.close()
    assert [outcome.read_error for outcome in listed] == [
        "not read from the gateway within the 0.5 s a refresh may take"
    ] * 3
    assert [outcome.task.prompt for outcome in listed] == ["three", "two", "one"]
