"""SoraClient against the fake gateway: requests, dialects, endpoint discovery, retries, the create rule, waits."""

from datetime import UTC, datetime
from email.utils import format_datetime

import anyio
import httpx2
import pytest
from conftest import API_KEY, make_settings
from fake_gateway import FakeGateway, refused_url

from sora_mcp.answers import parse_retry_after
from sora_mcp.client import SoraClient, retry_delay
from sora_mcp.create_requests import CharacterRequest, VideoRequest
from sora_mcp.embedded import serve_app
from sora_mcp.errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CreateOutcomeUnknownError,
    MissingAPIKeyError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    ServerError,
)
from sora_mcp.models import Task

pytestmark = pytest.mark.anyio

CREATE = "/v1/videos/generations"


def posts(fake: FakeGateway) -> int:
    return sum(1 for r in fake.requests if r.method == "POST")


def paths(fake: FakeGateway) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests]


# --------------------------------------------------------------------------------------------- pure functions

NOW = 1_768_380_222.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW + 12, UTC), usegmt=True)}, 12.0),
        ({"retry-after": "soon"}, None),
    ],
    ids=["absent", "seconds", "fraction", "negative", "milliseconds", "http-date", "garbage"],
)
def test_parse_retry_after_reads_seconds_milliseconds_and_dates(
    headers: dict[str, str], expected: float | None
) -> None:
    """Retry-After as seconds, HTTP date or retry-after-ms; garbage is ignored."""
    assert parse_retry_after(headers, NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "rand", "expected"),
    [
        (0, None, 0.0, 0.5),
        (1, None, 0.0, 1.0),
        (3, None, 0.0, 4.0),
        (10, None, 0.0, 8.0),
        (1, None, 1.0, 0.75),
        (0, 2.0, 0.0, 2.0),
        (0, 600.0, 0.0, 30.0),
    ],
    ids=["first", "doubles", "third", "capped", "jitter-down", "retry-after", "retry-after-capped"],
)
def test_retry_delay_is_exponential_with_jitter_and_honours_retry_after(
    attempt: int, retry_after: float | None, rand: float, expected: float
) -> None:
    """base * 2**attempt capped at 8 s with up to 25 % downward jitter; Retry-After wins, capped at 30 s."""
    assert retry_delay(attempt, retry_after, base=0.5, rand=lambda: rand) == pytest.approx(expected)


# --------------------------------------------------------------------------------------------- requests


async def test_create_video_sends_the_documented_request_with_key_and_user_agent(
    sora: SoraClient, fake: FakeGateway
) -> None:
    """One POST with the JSON body, the Bearer key and a sora-mcp User-Agent; the answer is a queued Task."""
    task = await sora.create(VideoRequest(prompt="a cat", duration=10, size="16:9", private=True))
    assert (task.kind, task.status, task.progress, task.model) == ("video", "queued", 0, "sora-2")
    assert task.task_id in fake.tasks
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", CREATE)
    assert request.json == {
        "model": "sora-2",
        "prompt": "a cat",
        "duration": 10,
        "size": "16:9",
        "metadata": {"private": True},
    }
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["user-agent"].startswith("sora-mcp/")


async def test_tasks_created_here_are_read_from_their_own_endpoint(sora: SoraClient, fake: FakeGateway) -> None:
    """A created video is read at /v1/videos/generations/{id}, a character at /v1/characters_tasks/{id}."""
    video = await sora.create(VideoRequest(prompt="a cat"))
    fake.tasks[video.task_id].created_at -= 60
    character = await sora.create(CharacterRequest(timestamps="1,3", from_task=video.task_id))
    assert character.kind == "character"
    await sora.get_task(video.task_id)
    await sora.get_task(character.task_id)
    assert paths(fake)[2:] == [f"GET {CREATE}/{video.task_id}", f"GET /v1/characters_tasks/{character.task_id}"]


async def test_foreign_ids_are_found_on_the_right_endpoint_and_remembered(
    settings: object, http_client: httpx2.AsyncClient, fake: FakeGateway
) -> None:
    """An id this process never created: video endpoint first, then characters; the kind is then remembered."""
    video_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    fake.tasks[video_id].created_at -= 60
    character_id = fake.create({"model": "sora-2", "timestamps": "1,3", "from_task": video_id})["id"]
    async with SoraClient(make_settings(), http_client=http_client) as fresh:
        assert (await fresh.get_task(video_id)).kind == "video"
        assert (await fresh.get_task(character_id)).kind == "character"
        await fresh.get_task(character_id)
    assert paths(fake) == [
        f"GET {CREATE}/{video_id}",
        f"GET {CREATE}/{character_id}",
        f"GET /v1/characters_tasks/{character_id}",
        f"GET /v1/characters_tasks/{character_id}",
    ]


async def test_a_character_served_on_the_video_endpoint_is_recognized_by_its_result() -> None:
    """When the gateway serves character tasks at the video endpoint, result.type tells the kind."""
    fake = FakeGateway(api_key=API_KEY, characters_on_video_endpoint=True, character_seconds=0)
    video_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    fake.tasks[video_id].created_at -= 60
    character_id = fake.create({"model": "sora-2", "timestamps": "1,3", "from_task": video_id})["id"]
    async with (
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.build_app())) as http,
        SoraClient(make_settings(), http_client=http) as client,
    ):
        task = await client.get_task(character_id)
    assert task.kind == "character"
    assert task.characters and task.characters[0].mention == f"@{task.characters[0].username}"


async def test_an_unknown_id_is_not_found_after_both_endpoints(sora: SoraClient, fake: FakeGateway) -> None:
    """Both endpoints answer 404: NotFoundError with the gateway's message."""
    with pytest.raises(NotFoundError) as caught:
        await sora.get_task("task_DOESNOTEXIST")
    assert caught.value.message == "Task not found"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("dialect", ["toapis", "dashlyai"])
async def test_both_dialects_normalize_to_the_same_completed_task(dialect: str) -> None:
    """A completed task reads the same from either documented response shape (dashlyai adds a thumbnail)."""
    fake = FakeGateway(api_key=API_KEY, dialect=dialect, video_seconds=0)  # type: ignore[arg-type]
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    async with (
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.build_app())) as http,
        SoraClient(make_settings(), http_client=http) as client,
    ):
        task = await client.get_task(task_id)
    assert (task.status, task.progress, task.kind) == ("completed", 100, "video")
    assert task.video_url is not None and task.video_url.endswith(f"/files/{task_id}.mp4")
    assert task.next_poll_seconds is None
    assert task.completed_at is not None
    if dialect == "dashlyai":
        assert task.thumbnail_url is not None and task.thumbnail_url.endswith(f"/files/{task_id}.jpg")
    else:
        assert task.expires_at == task.completed_at + 86400


# --------------------------------------------------------------------------------------------- errors


async def test_missing_key_fails_before_anything_is_sent(http_client: httpx2.AsyncClient, fake: FakeGateway) -> None:
    """Without SORA_API_KEY every call raises MissingAPIKeyError naming the variable; the gateway sees nothing."""
    async with SoraClient(make_settings(api_key=None), http_client=http_client) as client:
        with pytest.raises(MissingAPIKeyError, match="SORA_API_KEY"):
            await client.create(VideoRequest(prompt="x"))
        with pytest.raises(MissingAPIKeyError):
            await client.get_task("task_1")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequestError), (401, AuthenticationError), (402, PaymentRequiredError), (429, RateLimitError)],
)
async def test_definite_refusals_of_a_create_are_raised_and_never_create_a_task(
    sora: SoraClient, fake: FakeGateway, status: int, error: type[Exception]
) -> None:
    """400/401/402 are not retried; 429 is retried up to max_retries; none creates a task."""
    fake.fault("POST", CREATE, status=status, headers={"Retry-After": "0"}, times=5)
    with pytest.raises(error):
        await sora.create(VideoRequest(prompt="x"))
    assert posts(fake) == (3 if status == 429 else 1)
    assert fake.tasks == {}


async def test_upstream_error_message_is_passed_through(sora: SoraClient, fake: FakeGateway) -> None:
    """The gateway's error.message and request id reach the exception."""
    fake.fault(
        "POST",
        CREATE,
        status=400,
        json={"error": {"code": 400, "message": "timestamps range must be 1-3 s", "type": "invalid_request_error"}},
        headers={"X-Request-Id": "req-42"},
    )
    with pytest.raises(BadRequestError) as caught:
        await sora.create(VideoRequest(prompt="x"))
    assert (caught.value.message, caught.value.request_id) == ("timestamps range must be 1-3 s", "req-42")


async def test_create_is_retried_after_429_and_creates_exactly_one_task(sora: SoraClient, fake: FakeGateway) -> None:
    """429 means the gateway did not take the request: retry (honouring Retry-After) and create once."""
    fake.fault("POST", CREATE, status=429, headers={"Retry-After": "0"}, times=2)
    task = await sora.create(VideoRequest(prompt="x"))
    assert posts(fake) == 3
    assert list(fake.tasks) == [task.task_id]


@pytest.mark.parametrize(
    "script",
    ["500-after-create", "502-html", "200-not-json", "200-no-id"],
)
async def test_a_create_whose_answer_is_lost_is_never_retried(sora: SoraClient, fake: FakeGateway, script: str) -> None:
    """After a 5xx, an HTML page or an unreadable 2xx the task may exist: one POST, CreateOutcomeUnknownError."""
    match script:
        case "500-after-create":
            fake.fail_after_create(500)
        case "502-html":
            fake.fault(
                "POST", CREATE, status=502, text="<html><body>Bad Gateway</body></html>", content_type="text/html"
            )
        case "200-not-json":
            fake.fault("POST", CREATE, status=200, text='{"id": "task_', content_type="application/json")
        case "200-no-id":
            fake.fault("POST", CREATE, status=200, json={"object": "generation.task", "status": "queued"})
    with pytest.raises(CreateOutcomeUnknownError) as caught:
        await sora.create(VideoRequest(prompt="x"))
    assert caught.value.kind == "video"
    assert posts(fake) == 1
    assert len(fake.tasks) == (1 if script == "500-after-create" else 0)


async def test_a_create_that_times_out_after_sending_is_not_retried() -> None:
    """A read timeout on POST: the gateway may be creating the task, so exactly one POST and an unknown outcome."""
    fake = FakeGateway(api_key=API_KEY)
    fake.hang("POST", CREATE, seconds=30)
    async with serve_app(fake.build_app()) as url, SoraClient(make_settings(base_url=url, timeout=0.3)) as client:
        with pytest.raises(CreateOutcomeUnknownError) as caught:
            await client.create(VideoRequest(prompt="x"))
    assert isinstance(caught.value.cause, APITimeoutError)
    assert posts(fake) == 1


async def test_a_refused_connection_is_retried_even_for_a_create_and_reported() -> None:
    """Connection refused means nothing was sent: retried, then APIConnectionError with request_sent False."""
    async with SoraClient(make_settings(base_url=refused_url())) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.create(VideoRequest(prompt="x"))
    assert not isinstance(caught.value, CreateOutcomeUnknownError)
    assert caught.value.request_sent is False
    assert "could not connect to the gateway" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "text", "content_type"),
    [
        (500, None, None),
        (503, None, None),
        (502, "<!DOCTYPE html><html>Bad Gateway</html>", "text/html"),
        (408, None, None),
        (429, None, None),
        (200, "{not json", "application/json"),
        (200, "<html>maintenance</html>", "text/html"),
    ],
    ids=["500", "503", "502-html", "408", "429", "200-bad-json", "200-html"],
)
async def test_reads_are_retried_on_transient_faults_then_succeed(
    sora: SoraClient, fake: FakeGateway, status: int, text: str | None, content_type: str | None
) -> None:
    """A GET that meets a transient fault twice succeeds on the third attempt (max_retries=2)."""
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    fake.fault("GET", CREATE, status=status, text=text, content_type=content_type, times=2)
    task = await sora.get_task(task_id)
    assert task.task_id == task_id
    assert len(fake.requests) == 3


async def test_reads_give_up_after_max_retries_with_the_typed_error(sora: SoraClient, fake: FakeGateway) -> None:
    """A persistent 502 HTML page: 1 + max_retries attempts, then ServerError that knows it was HTML."""
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    fake.fault("GET", CREATE, status=502, text="<html>bad</html>", content_type="text/html", times=10)
    with pytest.raises(ServerError) as caught:
        await sora.get_task(task_id)
    assert caught.value.is_html
    assert len(fake.requests) == 3


async def test_a_persistent_unreadable_answer_raises_api_response_error(sora: SoraClient, fake: FakeGateway) -> None:
    """200 with malformed JSON on every attempt: APIResponseError."""
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    fake.fault("GET", CREATE, status=200, text="{oops", content_type="application/json", times=10)
    with pytest.raises(APIResponseError):
        await sora.get_task(task_id)


async def test_a_long_retry_after_is_reported_instead_of_waited_out(sora: SoraClient, fake: FakeGateway) -> None:
    """Retry-After beyond 30 s: no retry inside the call; the error carries the hint."""
    fake.fault("GET", CREATE, status=429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimitError) as caught:
        await sora.get_task("task_X")
    assert caught.value.retry_after == 120
    assert len(fake.requests) == 1


async def test_401_and_404_on_reads_are_not_retried(sora: SoraClient, fake: FakeGateway) -> None:
    """Definite answers are final: one request each."""
    fake.fault("GET", CREATE, status=401)
    with pytest.raises(AuthenticationError):
        await sora.get_task("task_X")
    assert len(fake.requests) == 1


async def test_a_hanging_read_times_out_and_is_retried() -> None:
    """A GET that hangs past SORA_TIMEOUT is retried and then succeeds."""
    fake = FakeGateway(api_key=API_KEY)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    fake.hang("GET", CREATE, seconds=30)
    async with serve_app(fake.build_app()) as url, SoraClient(make_settings(base_url=url, timeout=0.3)) as client:
        task = await client.get_task(task_id)
    assert task.task_id == task_id
    assert len(fake.requests) == 2


async def test_connections_are_reused_across_calls() -> None:
    """Many calls over real HTTP travel on one kept-alive connection (one client port at the gateway)."""
    fake = FakeGateway(api_key=API_KEY)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    async with serve_app(fake.build_app()) as url, SoraClient(make_settings(base_url=url)) as client:
        for _ in range(10):
            await client.get_task(task_id)
    assert len({r.client for r in fake.requests}) == 1


async def test_the_key_never_appears_in_error_messages(http_client: httpx2.AsyncClient, fake: FakeGateway) -> None:
    """Errors carry the gateway's words, never the Authorization header."""
    canary = "sk-canary-7f3e9a1b2c"
    async with SoraClient(make_settings(api_key=canary), http_client=http_client) as client:
        for call in (client.get_task("task_X"), client.create(VideoRequest(prompt="x"))):
            with pytest.raises(AuthenticationError) as caught:
                await call
            assert canary not in str(caught.value) and canary not in repr(caught.value.__dict__)


# --------------------------------------------------------------------------------------------- waiting


async def test_wait_polls_until_completed_and_reports_progress(sora: SoraClient, fake: FakeGateway) -> None:
    """wait_for_task returns the completed task; progress reports arrive with the latest state."""
    created = await sora.create(VideoRequest(prompt="x"))
    reports: list[tuple[str, float]] = []

    async def on_progress(task: Task | None, waited: float) -> None:
        reports.append((task.status if task else "-", waited))

    with anyio.fail_after(5):
        task = (await sora.wait_for_task(created.task_id, wait_seconds=10, on_progress=on_progress)).task
    assert task.status == "completed" and task.video_url
    assert reports and reports[-1][0] == "completed"
    assert [waited for _, waited in reports] == sorted(waited for _, waited in reports)


async def test_wait_returns_the_latest_state_when_the_time_is_up(
    http_client: httpx2.AsyncClient, fake: FakeGateway
) -> None:
    """A task that outlasts wait_seconds comes back unfinished after polling, not before the time is up."""
    fake.video_seconds = 600
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    async with SoraClient(make_settings(), http_client=http_client) as client:
        started = anyio.current_time()
        waited = await client.wait_for_task(task_id, wait_seconds=0.5)
        elapsed = anyio.current_time() - started
    assert waited.task.status in ("queued", "in_progress") and waited.poll_error is None
    assert elapsed >= 0.5  # a lower bound only: an upper one would measure the machine, not the code
    assert len(fake.requests) > 2


async def test_wait_heartbeats_while_a_slow_poll_is_in_flight() -> None:
    """Progress keeps flowing while a poll hangs, and ending the wait cancels that poll (no timing asserted:
    the test counts heartbeats that arrive while the poll is held, then ends the wait itself)."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    heartbeats_while_hanging = 0
    enough = anyio.Event()

    async def hang_polls_once_known(task: Task | None, waited: float) -> None:
        nonlocal heartbeats_while_hanging
        if task is not None and not fake.faults:
            fake.hang("GET", CREATE, seconds=30)
        elif fake.faults and len(fake.requests) >= 2:  # the poll after the first read is being held
            heartbeats_while_hanging += 1
            if heartbeats_while_hanging >= 5:
                enough.set()

    async def wait(client: SoraClient) -> None:
        waited = await client.wait_for_task(task_id, wait_seconds=50, on_progress=hang_polls_once_known)
        assert waited.task.status in ("queued", "in_progress")

    async with serve_app(fake.build_app()) as url:
        settings = make_settings(base_url=url, timeout=60)
        async with SoraClient(settings, heartbeat_seconds=0.02) as client, anyio.create_task_group() as group:
            with anyio.fail_after(20):
                group.start_soon(wait, client)
                await enough.wait()
                client.stop_waiting()
        assert client.requests_in_flight == 0
    assert heartbeats_while_hanging >= 5


async def test_errors_of_the_first_read_of_a_wait_propagate(sora: SoraClient, fake: FakeGateway) -> None:
    """Without any known state to return, a wait whose first read fails raises the typed error."""
    fake.fault("GET", CREATE, status=503, times=10)
    with pytest.raises(ServerError):
        await sora.wait_for_task("task_X", wait_seconds=1)


async def test_a_failure_after_the_first_read_of_a_wait_keeps_the_known_state(
    sora: SoraClient, fake: FakeGateway
) -> None:
    """First read fine, then every poll fails: the wait ends early with the known task and a hint saying why."""
    fake.video_seconds = 600
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]

    async def break_gateway_once_known(task: Task | None, waited: float) -> None:
        if task is not None and not fake.faults:
            fake.fault("GET", CREATE, status=503, times=100)

    with anyio.fail_after(5):
        waited = await sora.wait_for_task(task_id, wait_seconds=3, on_progress=break_gateway_once_known)
    assert waited.task.status in ("queued", "in_progress")
    assert waited.poll_error is not None and waited.poll_error.startswith("HTTP 503")


async def test_cancelling_a_wait_propagates(sora: SoraClient, fake: FakeGateway) -> None:
    """A cancelled caller cancels the wait promptly; nothing swallows the cancellation."""
    fake.video_seconds = 600
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    with anyio.move_on_after(0.2) as scope:
        await sora.wait_for_task(task_id, wait_seconds=30)
    assert scope.cancelled_caught


async def test_stop_waiting_ends_running_waits_with_the_latest_state_and_later_waits_read_once(
    sora: SoraClient, fake: FakeGateway
) -> None:
    """stop_waiting (a server shutting down): a 30 s wait returns its known state at once; later waits read once."""
    fake.video_seconds = 600
    task_id = fake.create({"model": "sora-2", "prompt": "x"})["id"]
    known = anyio.Event()
    results: list[Task] = []

    async def on_progress(task: Task | None, waited: float) -> None:
        if task is not None:
            known.set()

    async def wait() -> None:
        results.append((await sora.wait_for_task(task_id, wait_seconds=30, on_progress=on_progress)).task)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await known.wait()
            sora.stop_waiting()
        reads_before = len(fake.requests)
        later = (await sora.wait_for_task(task_id, wait_seconds=30)).task
    assert [task.status for task in results] == ["queued"]
    assert later.status == "queued"
    assert len(fake.requests) == reads_before + 1
    assert sora.requests_in_flight == 0


async def test_requests_in_flight_counts_gateway_calls_under_way(sora: SoraClient, fake: FakeGateway) -> None:
    """requests_in_flight is 1 while a create waits for the gateway's answer, 0 once it is cancelled."""
    fake.hang("POST", CREATE, seconds=30)
    before = sora.requests_in_flight
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(sora.create, VideoRequest(prompt="a cat"))
            while True:  # until the fake holds the request
                if fake.requests:
                    break
                await anyio.sleep(0.01)
            during = sora.requests_in_flight
            group.cancel_scope.cancel()
    assert (before, during, sora.requests_in_flight) == (0, 1, 0)
