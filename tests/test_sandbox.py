"""The sandbox gateway simulation and the test fake built on it, through their HTTP interface."""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from fake_gateway import FakeGateway, ManualClock, refused_url, serve_in_thread

from sora_mcp.embedded import serve_app
from sora_mcp.sandbox import Dialect, SandboxGateway, SandboxStore, serve_sandbox

pytestmark = pytest.mark.anyio

CREATE = "/v1/videos/generations"
TASK_ID = re.compile(r"task_[0-9A-HJKMNP-TV-Z]{26}")
START = 1_768_380_222


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(float(START))


@pytest.fixture
def gateway(clock: ManualClock) -> FakeGateway:
    return FakeGateway(clock=clock, video_seconds=100, character_seconds=40)


@pytest.fixture
async def client(gateway: FakeGateway) -> AsyncIterator[httpx2.AsyncClient]:
    async with _client(gateway) as client:
        yield client


def _client(gateway: SandboxGateway) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gateway.app), base_url="http://gateway")


async def _create(client: httpx2.AsyncClient, **body: Any) -> str:
    response = await client.post(CREATE, json={"model": "sora-2", **body})
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


async def _completed_video(client: httpx2.AsyncClient, clock: ManualClock, **body: Any) -> str:
    task_id = await _create(client, prompt="a cat", **body)
    clock.advance(100)
    return task_id


def _invalid(message: str) -> dict[str, Any]:
    return {
        "error": {"code": 400, "message": f"Invalid request parameters: {message}", "type": "invalid_request_error"}
    }


NOT_FOUND = {"error": {"code": 404, "message": "Task not found", "type": "not_found_error"}}


# Creating tasks


async def test_create_answers_a_queued_generation_task(client: httpx2.AsyncClient) -> None:
    """A valid video request answers 200 with the documented generation.task envelope."""
    body = {"model": "sora-2-pro", "prompt": "a cat", "duration": 25, "size": "9:16"}
    response = await client.post(CREATE, json=body)
    assert response.status_code == 200
    task = response.json()
    assert TASK_ID.fullmatch(task.pop("id"))
    assert task == {
        "object": "generation.task",
        "model": "sora-2-pro",
        "status": "queued",
        "progress": 0,
        "created_at": START,
        "metadata": {},
    }


async def test_create_accepts_every_documented_option(client: httpx2.AsyncClient, gateway: FakeGateway) -> None:
    """Images as URLs or base64 data URIs and every metadata option are accepted and kept."""
    body = {
        "model": "sora-2",
        "prompt": "a cat",
        "duration": 15,
        "size": "1:1",
        "images": ["https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo="],
        "metadata": {"style": "anime", "watermark": False, "private": True, "storyboard": True, "thumbnail": True},
    }
    task_id = await _create(client, **body)
    assert gateway.tasks[task_id].request == body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{not json", "request body must be valid JSON", id="not-json"),
        pytest.param([], "request body must be a JSON object", id="not-an-object"),
        pytest.param({"prompt": "a cat"}, "model must be one of sora-2, sora-2-pro, got null", id="no-model"),
        pytest.param(
            {"model": "sora-3", "prompt": "a cat"}, 'model must be one of sora-2, sora-2-pro, got "sora-3"', id="model"
        ),
        pytest.param(
            {"model": "sora-2"},
            "prompt is required (or url/from_task with timestamps to create a character)",
            id="no-prompt",
        ),
        pytest.param({"model": "sora-2", "prompt": "  "}, "prompt must be a non-empty string", id="blank-prompt"),
        pytest.param({"model": "sora-2", "prompt": 7}, "prompt must be a non-empty string", id="prompt-type"),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "duration": "10"},
            'duration must be an integer number of seconds, got "10"',
            id="duration-string",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "duration": True},
            "duration must be an integer number of seconds, got true",
            id="duration-bool",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "duration": 25},
            "duration for sora-2 must be one of 10, 15, got 25",
            id="duration-sora-2",
        ),
        pytest.param(
            {"model": "sora-2-pro", "prompt": "a", "duration": 12},
            "duration for sora-2-pro must be one of 10, 15, 25, got 12",
            id="duration-sora-2-pro",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "size": "4:3"},
            'size must be one of 16:9, 9:16, 1:1, got "4:3"',
            id="size",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "images": "https://example.com/a.png"},
            "images must be a list of image URLs or base64 data URIs",
            id="images-type",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "images": ["https://example.com/a.png", "ftp://example.com/b.png"]},
            "images[1] must be an http(s) URL or a data:image/...;base64,... URI",
            id="image-scheme",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "images": ["data:text/plain;base64,aGk="]},
            "images[0] must be an http(s) URL or a data:image/...;base64,... URI",
            id="image-data-uri",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "metadata": ["anime"]}, "metadata must be an object", id="metadata-type"
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "metadata": {"style": "noir"}},
            'metadata.style must be one of comic, news, anime, selfie, nostalgic, thanksgiving, got "noir"',
            id="style",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "metadata": {"watermark": "no"}},
            "metadata.watermark must be a boolean",
            id="watermark",
        ),
        pytest.param(
            {"model": "sora-2", "url": "https://example.com/v.mp4", "from_task": "task_1", "timestamps": "1,3"},
            "give exactly one of url or from_task",
            id="url-and-from-task",
        ),
        pytest.param(
            {"model": "sora-2", "url": "file:///v.mp4", "timestamps": "1,3"},
            "url must be the http(s) URL of a video",
            id="character-url",
        ),
        pytest.param(
            {"model": "sora-2", "from_task": "task_unknown", "timestamps": "1,3"},
            'from_task must name a completed video task, got "task_unknown"',
            id="from-task-unknown",
        ),
        pytest.param(
            {"model": "sora-2", "url": "https://example.com/v.mp4"},
            'timestamps must be "start,end" in seconds, e.g. "1,3"',
            id="no-timestamps",
        ),
        pytest.param(
            {"model": "sora-2", "url": "https://example.com/v.mp4", "timestamps": "1-3"},
            'timestamps must be "start,end" in seconds, e.g. "1,3"',
            id="timestamps-format",
        ),
        pytest.param(
            {"model": "sora-2", "url": "https://example.com/v.mp4", "timestamps": "-1,1"},
            "timestamps start must not be negative",
            id="timestamps-negative",
        ),
        pytest.param(
            {"model": "sora-2", "url": "https://example.com/v.mp4", "timestamps": "3,2"},
            "timestamps end must be after start",
            id="timestamps-reversed",
        ),
        pytest.param(
            {"model": "sora-2", "url": "https://example.com/v.mp4", "timestamps": "0,3.5"},
            "timestamps range must be between 1-3 seconds",
            id="timestamps-too-long",
        ),
        pytest.param(
            {"model": "sora-2", "url": "https://example.com/v.mp4", "timestamps": "1,1.5"},
            "timestamps range must be between 1-3 seconds",
            id="timestamps-too-short",
        ),
    ],
)
async def test_create_rejects_invalid_requests_with_the_error_envelope(
    client: httpx2.AsyncClient, gateway: FakeGateway, body: object, message: str
) -> None:
    """Each documented constraint answers 400 with envelope A naming the problem, and creates nothing."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(CREATE, content=content, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, _invalid(message))
    assert gateway.tasks == {}


# Video lifecycle


async def test_video_advances_from_queued_to_completed_in_the_toapis_dialect(
    client: httpx2.AsyncClient, clock: ManualClock
) -> None:
    """Queued for 15% of the duration, then in_progress with rising progress, then completed with a result."""
    task_id = await _create(client, prompt="a cat")
    url = f"{CREATE}/{task_id}"
    base = {"id": task_id, "object": "generation.task", "model": "sora-2", "created_at": START}

    clock.advance(14.5)
    assert (await client.get(url)).json() == base | {"status": "queued", "progress": 0}
    clock.advance(0.5 + 42.5)
    assert (await client.get(url)).json() == base | {"status": "in_progress", "progress": 50}
    clock.advance(42.25)
    assert (await client.get(url)).json() == base | {"status": "in_progress", "progress": 99}
    clock.advance(0.25)
    assert (await client.get(url)).json() == base | {
        "status": "completed",
        "progress": 100,
        "completed_at": START + 100,
        "expires_at": START + 100 + 86400,
        "result": {
            "type": "video",
            "data": [
                {
                    "url": f"http://gateway/files/{task_id}.mp4",
                    "format": "mp4",
                    "thumbnail_url": f"http://gateway/files/{task_id}.jpg",
                }
            ],
        },
    }


async def test_video_advances_from_submitted_to_completed_in_the_dashlyai_dialect(clock: ManualClock) -> None:
    """The older dialect says video.generation and submitted, gives estimated_time, and top-level url and thumbnail."""
    gateway = SandboxGateway(clock=clock, dialect="dashlyai", video_seconds=100)
    async with _client(gateway) as client:
        task_id = await _create(client, prompt="a cat")
        url = f"{CREATE}/{task_id}"
        base = {"id": task_id, "object": "video.generation", "model": "sora-2", "created_at": START}
        base["estimated_time"] = 100

        assert (await client.get(url)).json() == base | {"status": "submitted", "progress": 0}
        clock.advance(57.5)
        assert (await client.get(url)).json() == base | {"status": "in_progress", "progress": 50}
        clock.advance(42.5)
        assert (await client.get(url)).json() == base | {
            "status": "completed",
            "progress": 100,
            "completed_at": START + 100,
            "url": f"http://gateway/files/{task_id}.mp4",
            "thumbnail": f"http://gateway/files/{task_id}.jpg",
        }


@pytest.mark.parametrize("dialect", ["toapis", "dashlyai"])
async def test_prompt_with_the_fail_token_ends_failed_with_a_content_policy_error(
    clock: ManualClock, dialect: Dialect
) -> None:
    """A `[fail]` prompt runs like any task, then fails with progress 0 and error generation_failed."""
    async with _client(SandboxGateway(clock=clock, dialect=dialect, video_seconds=100)) as client:
        task_id = await _create(client, prompt="a cat [FAIL] on a mat")
        clock.advance(50)
        assert (await client.get(f"{CREATE}/{task_id}")).json()["status"] == "in_progress"
        clock.advance(50)
        task = (await client.get(f"{CREATE}/{task_id}")).json()
    assert (task["status"], task["progress"]) == ("failed", 0)
    assert task["error"] == {
        "code": "generation_failed",
        "message": "Generation failed: Content violates the content policy",
    }
    assert {"completed_at", "result", "url"}.isdisjoint(task)


async def test_media_urls_start_with_the_public_url_when_set(
    client: httpx2.AsyncClient, clock: ManualClock, gateway: FakeGateway
) -> None:
    """With `public_url` set, media links use it instead of the request's host."""
    gateway.public_url = "http://127.0.0.1:9999"
    task_id = await _completed_video(client, clock)
    task = (await client.get(f"{CREATE}/{task_id}")).json()
    assert task["result"]["data"][0]["url"] == f"http://127.0.0.1:9999/files/{task_id}.mp4"


# Characters


@pytest.mark.parametrize("dialect", ["toapis", "dashlyai"])
async def test_character_from_a_url_completes_with_the_created_character(clock: ManualClock, dialect: Dialect) -> None:
    """A character task is a generation.task in both dialects and ends with result.data.characters."""
    async with _client(SandboxGateway(clock=clock, dialect=dialect, character_seconds=40)) as client:
        body = {"model": "sora-2", "url": "https://example.com/v.mp4", "timestamps": "1,3"}
        created = (await client.post(CREATE, json=body)).json()
        task_id = created["id"]
        assert (created["object"], created["status"]) == ("generation.task", "queued")
        url = f"/v1/characters_tasks/{task_id}"
        base = {"id": task_id, "object": "generation.task", "model": "sora-2", "created_at": START, "metadata": {}}

        assert (await client.get(url)).json() == base | {"status": "queued", "progress": 0}
        clock.advance(23)
        assert (await client.get(url)).json() == base | {"status": "in_progress", "progress": 50}
        clock.advance(17)
        task = (await client.get(url)).json()

    [character] = task.pop("result")["data"]["characters"]
    assert task == base | {"status": "completed", "progress": 100, "completed_at": START + 40}
    assert re.fullmatch(r"ch_[0-9a-f]{32}", character["id"])
    short_name = character["display_name"].lower().replace(" ", "_")[:10]
    assert re.fullmatch(rf"[a-z]{{8}}\.{short_name}", character["username"])
    assert character["profile_picture_url"] == f"http://gateway/files/{task_id}.jpg"


async def test_character_from_a_task_needs_a_completed_video(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    """from_task is refused while the video runs and accepted once it has completed."""
    video_id = await _create(client, prompt="a cat")
    body = {"model": "sora-2", "from_task": video_id, "timestamps": "0,2"}
    refused = await client.post(CREATE, json=body)
    assert refused.json() == _invalid(f'from_task must name a completed video task, got "{video_id}"')
    clock.advance(100)
    accepted = await client.post(CREATE, json=body)
    assert accepted.status_code == 200


# Not found


async def test_status_of_an_unknown_or_other_kind_of_task_is_not_found(
    client: httpx2.AsyncClient, clock: ManualClock
) -> None:
    """Unknown ids, and tasks asked for on the other kind's endpoint, answer 404 envelope A."""
    video_id = await _completed_video(client, clock)
    character_id = await _create(client, url="https://example.com/v.mp4", timestamps="1,3")
    for path in (
        f"{CREATE}/task_unknown",
        "/v1/characters_tasks/task_unknown",
        f"{CREATE}/{character_id}",
        f"/v1/characters_tasks/{video_id}",
    ):
        response = await client.get(path)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), path


async def test_video_endpoint_serves_character_tasks_when_the_fake_is_told_to(clock: ManualClock) -> None:
    """With characters_on_video_endpoint, the video status endpoint also answers for character tasks."""
    gateway = FakeGateway(clock=clock, characters_on_video_endpoint=True)
    async with _client(gateway) as client:
        character_id = await _create(client, url="https://example.com/v.mp4", timestamps="1,3")
        on_video = (await client.get(f"{CREATE}/{character_id}")).json()
        on_characters = (await client.get(f"/v1/characters_tasks/{character_id}")).json()
    assert on_video == on_characters


async def test_unknown_routes_answer_the_error_envelope(client: httpx2.AsyncClient) -> None:
    """A path the gateway does not serve answers 404 envelope A naming the method and path."""
    response = await client.get("/v1/videos")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": 404, "message": "Invalid URL (GET /v1/videos)", "type": "invalid_request_error"}
    }


# Remix


async def test_remix_of_a_completed_video_starts_a_new_video_task(
    client: httpx2.AsyncClient, clock: ManualClock, gateway: FakeGateway
) -> None:
    """Remixing a completed video answers a new queued generation.task that runs like any video."""
    source_id = await _completed_video(client, clock)
    response = await client.post(
        f"/v1/videos/{source_id}/remix", json={"model": "sora-2-pro", "prompt": "add a dog", "duration": 25}
    )
    remix = response.json()
    assert response.status_code == 200
    assert (remix["object"], remix["model"], remix["status"]) == ("generation.task", "sora-2-pro", "queued")
    assert remix["id"] != source_id
    assert gateway.tasks[remix["id"]].kind == "video"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"model": "sora-2"}, "prompt is required", id="no-prompt"),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "duration": 25},
            "duration for sora-2 must be one of 10, 15, got 25",
            id="duration-sora-2",
        ),
        pytest.param(
            {"model": "sora-2-pro", "prompt": "a", "duration": 10},
            "duration for sora-2-pro must be one of 15, 25, got 10",
            id="duration-sora-2-pro",
        ),
        pytest.param(
            {"model": "sora-2", "prompt": "a", "size": "2:1"}, 'size must be one of 16:9, 9:16, 1:1, got "2:1"'
        ),
    ],
)
async def test_remix_rejects_invalid_requests(
    client: httpx2.AsyncClient, clock: ManualClock, body: dict[str, Any], message: str
) -> None:
    """Remix has its own duration table (sora-2-pro: 15 or 25) and requires a prompt."""
    source_id = await _completed_video(client, clock)
    response = await client.post(f"/v1/videos/{source_id}/remix", json=body)
    assert (response.status_code, response.json()) == (400, _invalid(message))


async def test_remix_needs_an_existing_completed_public_video(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    """Unknown sources are 404; running, failed and private videos are 400."""
    body = {"model": "sora-2", "prompt": "add a dog"}
    unknown = await client.post("/v1/videos/task_unknown/remix", json=body)
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)

    running_id = await _create(client, prompt="a cat")
    running = await client.post(f"/v1/videos/{running_id}/remix", json=body)
    assert running.json() == _invalid(f"only completed videos can be remixed, task {running_id} is queued")

    failed_id = await _create(client, prompt="[fail]")
    private_id = await _create(client, prompt="a cat", metadata={"private": True})
    clock.advance(100)
    failed = await client.post(f"/v1/videos/{failed_id}/remix", json=body)
    assert failed.json() == _invalid(f"only completed videos can be remixed, task {failed_id} is failed")
    private = await client.post(f"/v1/videos/{private_id}/remix", json=body)
    assert private.json() == _invalid("private videos cannot be remixed")


# Files


async def test_files_are_served_only_for_completed_tasks(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    """Before completion, for failed videos and for unknown names the media route is 404."""
    running_id = await _create(client, prompt="a cat")
    failed_id = await _create(client, prompt="[fail]")
    for name in (f"{running_id}.mp4", f"{running_id}.jpg", "task_unknown.mp4", f"{running_id}.gif"):
        assert (await client.get(f"/files/{name}")).status_code == 404, name
    clock.advance(100)
    assert (await client.get(f"/files/{failed_id}.mp4")).status_code == 404
    assert (await client.get(f"/files/{running_id}.mp4")).status_code == 200


async def test_completed_video_serves_a_real_mp4_and_jpeg_thumbnail(
    client: httpx2.AsyncClient, clock: ManualClock
) -> None:
    """The video is an MP4 (an `ftyp` box first) and the thumbnail a JPEG (FF D8), with their media types."""
    task_id = await _completed_video(client, clock)
    video = await client.get(f"/files/{task_id}.mp4")
    thumbnail = await client.get(f"/files/{task_id}.jpg")
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert thumbnail.content.startswith(b"\xff\xd8")


@pytest.mark.parametrize("dialect", ["toapis", "dashlyai"])
async def test_a_video_requested_without_thumbnail_links_none(clock: ManualClock, dialect: Dialect) -> None:
    """`metadata.thumbnail: false` leaves the thumbnail link out of the completed task in both dialects."""
    async with _client(SandboxGateway(clock=clock, dialect=dialect, video_seconds=100)) as client:
        task_id = await _completed_video(client, clock, metadata={"thumbnail": False})
        task = (await client.get(f"{CREATE}/{task_id}")).json()
    assert ".jpg" not in json.dumps(task)
    assert f"/files/{task_id}.mp4" in json.dumps(task)


async def test_media_links_expire_a_day_after_completion(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    """Until expires_at the files are served; from then on the media route answers 403, like a stale signed URL."""
    task_id = await _completed_video(client, clock)
    expires_at = (await client.get(f"{CREATE}/{task_id}")).json()["expires_at"]
    clock.advance(expires_at - clock.now - 1)
    assert (await client.get(f"/files/{task_id}.mp4")).status_code == 200
    clock.advance(1)
    for suffix in ("mp4", "jpg"):
        expired = await client.get(f"/files/{task_id}.{suffix}")
        assert (expired.status_code, expired.json()["error"]["message"]) == (403, "Request has expired")


async def test_completed_character_serves_its_avatar_but_no_video(
    client: httpx2.AsyncClient, clock: ManualClock
) -> None:
    """A character task's picture is a JPEG; it has no MP4."""
    task_id = await _create(client, url="https://example.com/v.mp4", timestamps="1,3")
    clock.advance(40)
    assert (await client.get(f"/files/{task_id}.jpg")).content.startswith(b"\xff\xd8")
    assert (await client.get(f"/files/{task_id}.mp4")).status_code == 404


# Authentication


async def test_an_api_key_is_required_when_configured(clock: ManualClock) -> None:
    """With api_key set, a missing or wrong bearer token is 401 envelope A; the right one passes; files stay public."""
    unauthorized = {
        "error": {
            "code": 401,
            "message": "Authentication failed, please check your API key",
            "type": "authentication_error",
        }
    }
    gateway = SandboxGateway(clock=clock, api_key="sk-test", video_seconds=0)
    async with _client(gateway) as client:
        for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": "sk-test"}):
            response = await client.post(CREATE, json={"model": "sora-2", "prompt": "a"}, headers=headers)
            assert (response.status_code, response.json()) == (401, unauthorized), headers
            assert (await client.get(f"{CREATE}/task_x", headers=headers)).status_code == 401
        client.headers["Authorization"] = "Bearer sk-test"
        task_id = await _create(client, prompt="a cat")
        assert (await client.get(f"{CREATE}/{task_id}")).json()["status"] == "completed"
        del client.headers["Authorization"]
        assert (await client.get(f"/files/{task_id}.mp4")).status_code == 200


# FakeGateway: recording and faults


async def test_fake_records_every_request(client: httpx2.AsyncClient, gateway: FakeGateway) -> None:
    """Method, path, query, lower-case headers, parsed JSON and client address are recorded, faults included."""
    gateway.fault("GET", CREATE)
    await client.post(CREATE, json={"model": "sora-2", "prompt": "a"}, headers={"X-Trace": "1"})
    await client.get(f"{CREATE}/task_x", params={"language": "en"})
    post, get = gateway.requests
    assert (post.method, post.path, post.json, post.query) == ("POST", CREATE, {"model": "sora-2", "prompt": "a"}, {})
    assert post.headers["x-trace"] == "1"
    assert post.client == ("127.0.0.1", 123)
    assert (get.method, get.path, get.query, get.json) == ("GET", f"{CREATE}/task_x", {"language": "en"}, None)


async def test_fault_answers_the_default_envelope_for_its_status_then_stops(
    client: httpx2.AsyncClient, gateway: FakeGateway
) -> None:
    """A status-only fault answers envelope A in the gateway's wording `times` times, then gets out of the way."""
    gateway.fault("POST", CREATE, status=429, headers={"Retry-After": "0"}, times=2)
    for _ in range(2):
        response = await client.post(CREATE, json={"model": "sora-2", "prompt": "a"})
        assert response.status_code == 429
        assert response.headers["retry-after"] == "0"
        assert response.json() == {
            "error": {"code": 429, "message": "Too many requests, please try again later", "type": "rate_limit_error"}
        }
    assert gateway.faults == []
    assert (await client.post(CREATE, json={"model": "sora-2", "prompt": "a"})).status_code == 200
    assert len(gateway.tasks) == 1


async def test_faults_are_consumed_in_order_and_match_method_and_path(
    client: httpx2.AsyncClient, gateway: FakeGateway
) -> None:
    """A string path matches as a prefix, a regex must match the whole path, and the method must match."""
    gateway.fault("GET", re.compile(r"/v1/videos/generations/task_\d+"), status=503)
    gateway.fault("get", "/v1/videos/", status=500)
    gateway.fault("GET", "/v1/videos/", status=502)
    assert (await client.get(f"{CREATE}/task_x")).status_code == 500
    assert (await client.get(f"{CREATE}/task_1")).status_code == 503
    assert (await client.post(CREATE, json={})).status_code == 400
    assert (await client.get(f"{CREATE}/task_1")).status_code == 502
    assert (await client.get(f"{CREATE}/task_1")).status_code == 404


async def test_fault_can_answer_an_html_page_or_malformed_json(
    client: httpx2.AsyncClient, gateway: FakeGateway
) -> None:
    """`text` with a content type gives a proxy's HTML error page or a 200 whose JSON is broken."""
    gateway.fault("GET", CREATE, status=502, text="<html>Bad Gateway</html>", content_type="text/html")
    gateway.fault("GET", CREATE, status=200, text='{"id": "task_', content_type="application/json")
    gateway.fault("GET", CREATE, status=500, json={"message": "upstream exploded"})
    html = await client.get(f"{CREATE}/task_x")
    assert (html.status_code, html.headers["content-type"], html.text) == (
        502,
        "text/html; charset=utf-8",
        "<html>Bad Gateway</html>",
    )
    broken = await client.get(f"{CREATE}/task_x")
    assert (broken.status_code, broken.headers["content-type"], broken.text) == (
        200,
        "application/json",
        '{"id": "task_',
    )
    custom = await client.get(f"{CREATE}/task_x")
    assert (custom.status_code, custom.json()) == (500, {"message": "upstream exploded"})


async def test_stream_file_streams_in_chunks_and_can_drop_the_connection_mid_body() -> None:
    """Over real HTTP, a streamed file can come without Content-Length, or break off after `drop_after` bytes."""
    gateway = FakeGateway()
    body = bytes(range(256)) * 800
    gateway.stream_file("/files/a.mp4", body=body, declare_length=False)
    gateway.stream_file("/files/a.mp4", body=body, drop_after=70_000)
    async with serve_app(gateway.app) as url, httpx2.AsyncClient(base_url=url) as client:
        whole = await client.get("/files/a.mp4")
        assert (whole.content, whole.headers["content-type"]) == (body, "video/mp4")
        assert "content-length" not in whole.headers
        with pytest.raises(httpx2.RemoteProtocolError):
            await client.get("/files/a.mp4")
        assert (await client.get("/files/a.mp4")).status_code == 404  # faults used up: the sandbox answers


def test_fault_refuses_two_bodies_and_zero_times() -> None:
    """A fault has one body (json, text or content), and is used at least once."""
    gateway = FakeGateway()
    with pytest.raises(ValueError, match="one of json, text or content"):
        gateway.fault("GET", CREATE, json={}, text="")
    with pytest.raises(ValueError, match="one of json, text or content"):
        gateway.fault("GET", CREATE, text="", content=b"")
    with pytest.raises(ValueError, match="at least 1"):
        gateway.hang("GET", CREATE, times=0)


async def test_fail_after_create_creates_the_task_but_answers_an_error(
    client: httpx2.AsyncClient, gateway: FakeGateway
) -> None:
    """The "may have been billed" case: the task exists although the client saw a 500."""
    gateway.fail_after_create()
    response = await client.post(CREATE, json={"model": "sora-2", "prompt": "a cat"})
    assert (response.status_code, response.json()["error"]["type"]) == (500, "server_error")
    [task] = gateway.tasks.values()
    assert task.request["prompt"] == "a cat"


async def test_hang_holds_the_request_then_answers_normally(client: httpx2.AsyncClient, gateway: FakeGateway) -> None:
    """After its delay a hung request gets the gateway's real answer."""
    gateway.hang("POST", CREATE, seconds=0)
    assert (await client.post(CREATE, json={"model": "sora-2", "prompt": "a"})).status_code == 200
    assert len(gateway.tasks) == 1


def test_hang_outlasts_the_client_timeout_over_real_http() -> None:
    """A client timing out on a hung request disconnects; the server drops it and still shuts down promptly."""
    gateway = FakeGateway()
    gateway.hang("GET", "/v1/")
    with serve_in_thread(gateway.app) as url, httpx2.Client(base_url=url, timeout=0.2) as client:
        with pytest.raises(httpx2.ReadTimeout):
            client.get(f"{CREATE}/task_x")
        assert client.get(f"{CREATE}/task_x").status_code == 404
    assert [request.path for request in gateway.requests] == [f"{CREATE}/task_x"] * 2


def test_manual_clock_moves_only_when_advanced() -> None:
    """The clock starts at a realistic Unix time and moves by exactly what `advance` says."""
    clock = ManualClock()
    assert clock() > 1_700_000_000
    before = clock()
    clock.advance(2.5)
    assert clock() == before + 2.5


# Serving over real HTTP


async def test_serve_sandbox_serves_over_loopback_and_shuts_down() -> None:
    """serve_sandbox yields a loopback URL, links media to it, and stops listening on exit."""
    gateway = SandboxGateway(video_seconds=0)
    async with serve_sandbox(gateway) as url, httpx2.AsyncClient(base_url=url) as client:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert gateway.public_url == url
        task_id = await _create(client, prompt="a cat")
        task = (await client.get(f"{CREATE}/{task_id}")).json()
        video = await client.get(task["result"]["data"][0]["url"])
        assert video.content[4:8] == b"ftyp"
    async with httpx2.AsyncClient() as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(url)


def test_serve_in_thread_serves_over_loopback_and_shuts_down() -> None:
    """serve_in_thread serves an app from another thread, for tests whose MCP server is a subprocess."""
    gateway = FakeGateway(video_seconds=0)
    with serve_in_thread(gateway.app) as url, httpx2.Client(base_url=url) as client:
        task_id = client.post(CREATE, json={"model": "sora-2", "prompt": "a cat"}).json()["id"]
        task = client.get(f"{CREATE}/{task_id}").json()
        assert task["result"]["data"][0]["url"] == f"{url}/files/{task_id}.mp4"
        assert gateway.requests[0].client is not None
        assert gateway.requests[0].client[0] == "127.0.0.1"
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(url)


async def test_refused_url_refuses_connections() -> None:
    """Nothing listens on the refused URL, so connecting fails at once."""
    async with httpx2.AsyncClient() as client:
        with anyio.fail_after(5), pytest.raises(httpx2.ConnectError):
            await client.get(refused_url())


# Tasks that outlive the process


async def test_a_stored_task_is_found_by_the_next_gateway_with_its_status_from_its_creation_time(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A second gateway on the same store (a restarted server) serves the first one's tasks, characters included,
    their status following from their creation time; unknown ids stay 404."""
    first_store = SandboxStore(tmp_path / "sandbox.sqlite3")
    first = SandboxGateway(clock=clock, video_seconds=100, character_seconds=40, store=first_store)
    async with _client(first) as client:
        video = await _create(client, prompt="a cat")
        clock.advance(100)
        character = await _create(client, url="https://cdn.example.com/cat.mp4", timestamps="1,3")
    first_store.close()
    cast = first.tasks[character].character
    assert cast is not None

    second_store = SandboxStore(tmp_path / "sandbox.sqlite3")
    second = SandboxGateway(clock=clock, video_seconds=5, character_seconds=5, store=second_store)
    async with _client(second) as client:
        assert (await client.get(f"{CREATE}/{video}")).json()["status"] == "completed"
        assert (await client.get(f"/v1/characters_tasks/{character}")).json()["progress"] == 0  # queued, as before
        clock.advance(40)
        later = (await client.get(f"/v1/characters_tasks/{character}")).json()
        assert later["status"] == "completed"
        assert later["result"]["data"]["characters"][0]["username"] == cast["username"]
        assert (await client.get(f"/files/{video}.mp4")).status_code == 200
        assert (await client.get(f"{CREATE}/task_01KEXAMPLEEXAMPLEEXAMPLE00")).status_code == 404
        remix = await client.post(f"/v1/videos/{video}/remix", json={"model": "sora-2", "prompt": "at night"})
        assert remix.status_code == 200
    second_store.close()
