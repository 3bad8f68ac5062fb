"""Shared waits (polling.py) against the fake gateway: one poll per task however many wait, each wait with its own
progress and deadline, hand-over when the polling waiter leaves, shared errors, the bound on polls in flight,
jitter, shutdown; and through the MCP server, concurrent get_task waits on one task."""

import itertools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import TaskGroup
from conftest import API_KEY, make_settings
from fake_gateway import FakeGateway, RecordedRequest
from mcp import Client
from starlette.types import ASGIApp, Receive, Scope, Send

from sora_mcp.client import SoraClient
from sora_mcp.create_requests import VideoRequest
from sora_mcp.errors import ServerError
from sora_mcp.models import Task
from sora_mcp.polling import (
    HEARTBEAT_PHASE_JITTER,
    POLL_CONCURRENCY,
    POLL_GROWTH,
    POLL_JITTER,
    Waited,
    heartbeat_phase,
    poll_pause,
)
from sora_mcp.server import build_server

pytestmark = pytest.mark.anyio

STATUS = "/v1/videos/generations/"
EPSILON = 0.005
"""Slack for the event loop's clock resolution in lower bounds of pauses."""


class InFlight:
    """An ASGI wrapper counting the GETs under way at the gateway, and the most there ever were at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.now = 0
        self.most = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


@asynccontextmanager
async def gateway_client(
    fake: FakeGateway,
    *,
    poll_interval: float,
    heartbeat_seconds: float = 10.0,
    rand: Callable[[], float] = lambda: 0.0,
    meter: list[InFlight] | None = None,
) -> AsyncIterator[SoraClient]:
    """A SoraClient talking to ``fake`` in memory; ``meter`` receives the InFlight wrapper of its app."""
    app = InFlight(fake.build_app())
    if meter is not None:
        meter.append(app)
    async with (
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app)) as http,
        SoraClient(
            make_settings(poll_interval=poll_interval), http_client=http, heartbeat_seconds=heartbeat_seconds, rand=rand
        ) as client,
    ):
        yield client


def running_task(fake: FakeGateway) -> str:
    task_id: str = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    return task_id


def gets(fake: FakeGateway, task_id: str) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "GET" and r.path == STATUS + task_id]


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds: conditions on the fake's request log or the poller, which have no event."""
    while not condition():  # noqa: ASYNC110
        await anyio.sleep(0.005)


class Reports:
    """One waiter's progress callback: every (task, waited) it is called with."""

    def __init__(self) -> None:
        self.calls: list[Task | None] = []
        self.first = anyio.Event()

    async def __call__(self, task: Task | None, waited: float) -> None:
        self.calls.append(task)
        if task is not None:
            self.first.set()

    @property
    def states(self) -> list[Task]:
        """The distinct states reported, in order (a heartbeat repeats the latest)."""
        distinct: list[Task] = []
        for task in self.calls:
            if task is not None and (not distinct or distinct[-1] is not task):
                distinct.append(task)
        return distinct


# --------------------------------------------------------------------------------------------- one poll per task


async def test_fifty_waiters_on_one_task_make_one_poll_per_interval() -> None:
    """50 concurrent waits on one task make the GETs one wait makes (the first read, then one per interval), and
    every waiter is called with each of the states those GETs read, the same ones, in order."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = running_task(fake)
    interval, wait_seconds = 0.3, 0.75
    reports = [Reports() for _ in range(50)]
    results: list[Waited] = []
    meter: list[InFlight] = []
    async with gateway_client(fake, poll_interval=interval, meter=meter) as client:

        async def wait(report: Reports) -> None:
            results.append(await client.wait_for_task(task_id, wait_seconds=wait_seconds, on_progress=report))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for report in reports:
                    group.start_soon(wait, report)
        assert client.poller.watching(task_id) == 0  # the watch left with its last waiter
    polled = gets(fake, task_id)
    # One wait alone: the first read at 0, polls at >= 0.3 and >= 0.6, the next not before 0.9 > 0.75.
    assert 2 <= len(polled) <= 3
    arrivals = [r.received_at for r in polled]
    assert all(b - a >= interval - EPSILON for a, b in itertools.pairwise(arrivals))
    assert meter[0].most == 1
    states = reports[0].states
    assert len(states) == len(polled)  # one state per GET, each reported once
    assert all(report.calls == states for report in reports)  # no heartbeat within 0.75 s; no repeated final
    assert len(results) == 50 and all(result.task is states[-1] and result.poll_error is None for result in results)


async def test_waiters_with_different_deadlines_each_return_at_their_own_with_their_own_reports() -> None:
    """Waits of 0.2, 0.4 and 0.6 s on one task: each returns after its own time with the latest state, reports
    heartbeats of its own and every new state; the task is never polled twice at once."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = running_task(fake)
    deadlines = [0.6, 0.2, 0.4]
    reports = {seconds: Reports() for seconds in deadlines}
    returned: list[tuple[float, float, Waited]] = []
    meter: list[InFlight] = []
    async with gateway_client(
        fake, poll_interval=0.05, heartbeat_seconds=0.03, rand=random.Random(7).random, meter=meter
    ) as client:

        async def wait(seconds: float) -> None:
            started = anyio.current_time()
            waited = await client.wait_for_task(task_id, wait_seconds=seconds, on_progress=reports[seconds])
            returned.append((seconds, anyio.current_time() - started, waited))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for seconds in deadlines:
                    group.start_soon(wait, seconds)
    assert [seconds for seconds, _, _ in returned] == [0.2, 0.4, 0.6]
    assert all(elapsed >= seconds for seconds, elapsed, _ in returned)
    for seconds, _, waited in returned:
        report = reports[seconds]
        assert report.calls[-1] is waited.task  # it ended with the latest state it had
        assert len(report.calls) > len(report.states)  # heartbeats of its own, between the states
    # The longer waits saw the states the shorter ones saw, then fresher ones polled after those left.
    assert reports[0.4].states[: len(reports[0.2].states)] == reports[0.2].states
    assert reports[0.6].states[: len(reports[0.4].states)] == reports[0.4].states
    assert len(reports[0.6].states) > len(reports[0.4].states) > len(reports[0.2].states)
    assert len(reports[0.6].states) == len(gets(fake, task_id))  # the longest wait saw every GET's answer
    assert meter[0].most == 1


async def test_a_wait_that_joins_starts_from_the_fresh_state_without_a_get() -> None:
    """A second wait on a task whose state was read a moment ago starts from that state: no GET of its own."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = running_task(fake)
    first, second = Reports(), Reports()
    async with gateway_client(fake, poll_interval=1.0) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: client.wait_for_task(task_id, wait_seconds=30, on_progress=first))
                await first.first.wait()
                group.start_soon(lambda: client.wait_for_task(task_id, wait_seconds=30, on_progress=second))
                await second.first.wait()
                assert len(gets(fake, task_id)) == 1
                assert client.poller.watching(task_id) == 2
                client.stop_waiting()
    assert second.calls[0] is first.calls[0]


async def test_a_read_without_waiting_shares_the_get_under_way_but_never_a_stale_state() -> None:
    """get_task(wait_seconds=0) during a wait's poll takes that poll's answer; with no GET under way it reads."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = running_task(fake)
    report = Reports()
    async with gateway_client(fake, poll_interval=0.05) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: client.wait_for_task(task_id, wait_seconds=30, on_progress=report))
                await report.first.wait()
                fake.hang("GET", STATUS, seconds=0.3)  # the next poll is held
                await until(lambda: len(gets(fake, task_id)) >= 2)
                read = (await client.wait_for_task(task_id, wait_seconds=0)).task
                assert len(gets(fake, task_id)) == 2  # it took the held poll's answer
                await until(lambda: len(report.states) >= 2)
                assert read is report.states[1]
                client.stop_waiting()
        before = len(gets(fake, task_id))
        await client.wait_for_task(task_id, wait_seconds=0)  # no wait and no GET under way: a read of its own
        assert len(gets(fake, task_id)) == before + 1


# --------------------------------------------------------------------------------------------- hand-over and errors


async def test_when_the_polling_waiter_is_cancelled_another_takes_over() -> None:
    """The waiter whose GET is under way is cancelled: the waits that were sharing that GET poll anew and go on
    getting fresh states."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = running_task(fake)
    fake.hang("GET", STATUS, seconds=30)  # the first GET is held
    others = [Reports() for _ in range(5)]
    async with gateway_client(fake, poll_interval=0.02) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                poller = anyio.CancelScope()

                async def first_waiter() -> None:
                    with poller:
                        await client.wait_for_task(task_id, wait_seconds=30)

                group.start_soon(first_waiter)
                await until(lambda: bool(gets(fake, task_id)))
                for report in others:
                    group.start_soon(lambda r=report: client.wait_for_task(task_id, wait_seconds=30, on_progress=r))
                await until(lambda: client.poller.watching(task_id) == 6)
                assert len(gets(fake, task_id)) == 1  # they joined the held GET
                poller.cancel()
                await until(lambda: min(len(report.states) for report in others) >= 3)
                client.stop_waiting()
        assert poller.cancelled_caught
        assert client.requests_in_flight == 0
    # The held GET was given up, one of the others polled instead, and they all shared each answer since.
    assert all(report.states[:3] == others[0].states[:3] for report in others)
    assert len(gets(fake, task_id)) >= 4


async def test_a_first_read_error_reaches_every_waiter_that_shared_it() -> None:
    """Ten waits whose first read is one GET that fails (503 through its retries) all raise that error."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = running_task(fake)
    fake.fault("GET", STATUS, status=503, times=3)  # max_retries=2: three attempts, all 503
    errors: list[BaseException] = []
    async with gateway_client(fake, poll_interval=0.05) as client:

        async def wait() -> None:
            try:
                await client.wait_for_task(task_id, wait_seconds=5)
            except ServerError as exc:
                errors.append(exc)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(wait)
    assert len(errors) == 10 and all(error is errors[0] for error in errors)
    assert len(gets(fake, task_id)) == 3


async def test_a_poll_failure_after_the_first_read_ends_every_wait_with_the_known_state() -> None:
    """First read fine, then a poll fails: every wait ends with its known state and the poll error; one failing
    poll (three attempts) for all of them."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = running_task(fake)
    armed = False

    async def break_gateway_once_known(task: Task | None, waited: float) -> None:
        nonlocal armed
        if task is not None and not armed:
            armed = True
            fake.fault("GET", STATUS, status=503, times=3)

    results: list[Waited] = []
    async with gateway_client(fake, poll_interval=0.05) as client:

        async def wait() -> None:
            results.append(await client.wait_for_task(task_id, wait_seconds=5, on_progress=break_gateway_once_known))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(wait)
    assert len(results) == 10
    assert all(r.poll_error is not None and r.poll_error.startswith("HTTP 503") for r in results)
    assert all(r.task is results[0].task and r.task.status in ("queued", "in_progress") for r in results)
    assert len(gets(fake, task_id)) == 1 + 3


async def test_stop_waiting_ends_every_wait_on_a_shared_task_at_once() -> None:
    """stop_waiting (shutdown) ends 20 waits sharing a task with its latest state; a later wait reads once."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_id = running_task(fake)
    reports = [Reports() for _ in range(20)]
    results: list[Task] = []
    async with gateway_client(fake, poll_interval=0.05) as client:

        async def wait(report: Reports) -> None:
            results.append((await client.wait_for_task(task_id, wait_seconds=30, on_progress=report)).task)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for report in reports:
                    group.start_soon(wait, report)
                for report in reports:
                    await report.first.wait()
                client.stop_waiting()
            before = len(fake.requests)
            later = await client.wait_for_task(task_id, wait_seconds=30)
        assert client.requests_in_flight == 0
    assert len(results) == 20 and all(task.status in ("queued", "in_progress") for task in results)
    assert later.task.status in ("queued", "in_progress")
    assert len(fake.requests) == before + 1


# --------------------------------------------------------------------------------------------- many tasks


async def test_polls_of_many_tasks_never_exceed_the_bound_in_flight() -> None:
    """Waits on 40 distinct tasks, each GET answered after 50 ms: at most POLL_CONCURRENCY GETs at the gateway at
    once, and that many while the first reads queue."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_ids = [running_task(fake) for _ in range(40)]
    fake.hang("GET", STATUS, seconds=0.05, times=10_000)
    meter: list[InFlight] = []
    results: list[Waited] = []
    async with gateway_client(fake, poll_interval=0.05, meter=meter) as client:

        async def wait(task_id: str) -> None:
            results.append(await client.wait_for_task(task_id, wait_seconds=0.3))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for task_id in task_ids:
                    group.start_soon(wait, task_id)
    assert len(results) == 40
    assert meter[0].most == POLL_CONCURRENCY
    assert all(gets(fake, task_id) for task_id in task_ids)


async def hold_every_slot(client: SoraClient, group: TaskGroup, task_ids: list[str], meter: InFlight) -> None:
    """Start a 30 s wait on each of ``task_ids`` (whose GETs hang) in ``group``; return once every poll slot is
    taken by one."""
    for task_id in task_ids:
        group.start_soon(lambda t=task_id: client.wait_for_task(t, wait_seconds=30))
    await until(lambda: meter.now == POLL_CONCURRENCY)


async def test_creates_and_late_first_reads_do_not_wait_for_poll_slots() -> None:
    """With every poll slot held by a hanging GET (and more polls queued), a create still goes through, and a
    wait whose first read is still queued when its time is up reads outside the bound."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    task_ids = [running_task(fake) for _ in range(POLL_CONCURRENCY + 4)]
    fake.hang("GET", STATUS, seconds=30, times=len(task_ids))
    meter: list[InFlight] = []
    async with gateway_client(fake, poll_interval=0.05, meter=meter) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                await hold_every_slot(client, group, task_ids, meter[0])
                created = await client.create(VideoRequest(prompt="a dog"))
                assert meter[0].now == POLL_CONCURRENCY  # the other waits still queue for a slot
                fake.faults.clear()  # the new task's read is answered at once
                late = await client.wait_for_task(created.task_id, wait_seconds=0.1)
                assert meter[0].most == POLL_CONCURRENCY + 1  # its first read went ahead of the queue
                group.cancel_scope.cancel()
    assert created.status == "queued"
    assert late.task.task_id == created.task_id and late.poll_error is None


async def test_a_wait_that_joins_a_queued_poll_still_returns_by_its_own_deadline() -> None:
    """Every slot held by hanging GETs; a 30 s wait queues the poll of a task, and a 0.1 s wait on the same task
    joins it: the short one reads outside the bound at its deadline instead of waiting with the long one."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    holders = [running_task(fake) for _ in range(POLL_CONCURRENCY)]
    shared = running_task(fake)
    fake.hang("GET", STATUS, seconds=30, times=POLL_CONCURRENCY)
    meter: list[InFlight] = []
    async with gateway_client(fake, poll_interval=0.05, meter=meter) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                await hold_every_slot(client, group, holders, meter[0])
                group.start_soon(lambda: client.wait_for_task(shared, wait_seconds=30))  # queues for a slot
                await until(lambda: client.poller.watching(shared) == 1)
                started = anyio.current_time()
                short = await client.wait_for_task(shared, wait_seconds=0.1)
                took = anyio.current_time() - started
                group.cancel_scope.cancel()
    assert short.task.task_id == shared and short.poll_error is None
    assert took < 2  # not held until a slot frees (30 s)
    assert len(gets(fake, shared)) == 1


# --------------------------------------------------------------------------------------------- jitter


def test_poll_pauses_are_jittered_within_the_interval() -> None:
    """With a fixed rand the pause before a poll differs by draw, is shortened by at most POLL_JITTER, and never
    exceeds SORA_POLL_INTERVAL; the delay grows by POLL_GROWTH whatever the draw."""
    pauses = {draw: poll_pause(1.0, None, 5.0, lambda d=draw: d) for draw in (0.0, 0.25, 0.5, 0.999)}
    assert len({pause for pause, _ in pauses.values()}) == 4
    assert all(1.0 - POLL_JITTER <= pause <= 1.0 for pause, _ in pauses.values())
    assert all(following == 1.0 * POLL_GROWTH for _, following in pauses.values())
    assert poll_pause(4.0, None, 5.0, lambda: 0.0) == (4.0, 4.0 * POLL_GROWTH)
    assert poll_pause(4.0, None, 2.0, lambda: 0.5) == (2.0 * (1 - POLL_JITTER / 2), 2.0 * POLL_GROWTH)
    assert poll_pause(1.0, 9, 5.0, lambda: 0.0) == (3.0, 3.0 * POLL_GROWTH)  # an eta of 9 s: a third of it


def test_heartbeat_phases_are_spread_but_never_later_than_the_heartbeat() -> None:
    phases = [heartbeat_phase(2.0, lambda d=draw: d) for draw in (0.0, 0.3, 0.6, 0.999)]
    assert len(set(phases)) == 4
    assert phases[0] == 2.0
    assert all(2.0 * (1 - HEARTBEAT_PHASE_JITTER) <= phase <= 2.0 for phase in phases)


# --------------------------------------------------------------------------------------------- through MCP


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


async def test_concurrent_get_task_waits_on_one_task_share_the_polls(mode: str) -> None:
    """20 concurrent get_task(wait_seconds=1) calls on one task through the MCP server: the gateway sees the
    first read and at most one poll (SORA_POLL_INTERVAL=1), and every call reports its own progress."""
    fake = FakeGateway(api_key=API_KEY, video_seconds=600)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.build_app())) as http:
        server = build_server(make_settings(poll_interval=1.0), http_client=http)
        async with Client(server, mode=mode) as client:
            created = await client.call_tool("create_video", {"prompt": "a cat"})
            assert created.structured_content is not None
            task_id = created.structured_content["task_id"]
            progress: list[list[tuple[float, str | None]]] = [[] for _ in range(20)]
            results: list[dict[str, Any]] = []

            async def wait(events: list[tuple[float, str | None]]) -> None:
                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    events.append((value, message))

                result = await client.call_tool(
                    "get_task", {"task_id": task_id, "wait_seconds": 1}, progress_callback=on_progress
                )
                assert result.is_error is False and result.structured_content is not None
                results.append(result.structured_content)

            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    for events in progress:
                        group.start_soon(wait, events)
    assert len(results) == 20 and all(r["status"] in ("queued", "in_progress") for r in results)
    assert all(r["task_id"] == task_id for r in results)
    assert 1 <= len(gets(fake, task_id)) <= 2  # one wait alone: the first read, a poll after 0.8 to 1 s
    assert all(events and events[0][1] and events[0][1].startswith(("queued", "in_progress")) for events in progress)
