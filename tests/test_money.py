"""Spend control through the official MCP client, in memory, in both protocol eras: estimates, the user's yes
(elicitation accept, decline, cancel; the quote flow for clients that cannot be asked), budgets and the ledger.
The fake gateway's request log proves what was and was not sent."""

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import make_settings
from fake_gateway import FakeGateway, ManualClock
from mcp import Client
from mcp.types import ElicitRequestParams, ElicitResult
from pydantic import ValidationError
from test_tasks import call, error_of, ok

from sora_mcp.config import Settings, describe_settings_error
from sora_mcp.journal import SCHEMA_VERSION, Journal, journal_path
from sora_mcp.journal_schema import sqlite_schema
from sora_mcp.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("journal_backend")]
"""Every test runs on both journal backends (SQLite and PostgreSQL) unless it names one."""
SQLITE_ONLY = pytest.mark.parametrize("journal_backend", ["sqlite"], indirect=True)

CREATE = "/v1/videos/generations"
MODES = ["auto", "legacy"]
NOTHING = "Nothing was sent to the gateway, so nothing was created or billed."


class Asker:
    """An elicitation callback answering as told, recording each question."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.questions: list[ElicitRequestParams] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.questions.append(params)
        if self.answer in ("true", "false"):
            return ElicitResult(action="accept", content={"approve": self.answer == "true"})
        return ElicitResult(action=self.answer)  # type: ignore[arg-type]


@asynccontextmanager
async def connect(
    fake: FakeGateway,
    *,
    mode: str = "auto",
    asker: Asker | None = None,
    clock: ManualClock | None = None,
    **settings: Any,
) -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.build_app())))
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        server = build_server(make_settings(**settings), http_client=http, **extra)
        callback: dict[str, Any] = {"elicitation_callback": asker} if asker is not None else {}
        yield await stack.enter_async_context(Client(server, mode=mode, **callback))


def creates(fake: FakeGateway) -> int:
    return sum(request.method == "POST" for request in fake.requests)


# --------------------------------------------------------------------------------------------- estimates


@pytest.mark.parametrize(
    ("tool", "arguments", "usd", "priced"),
    [
        (
            "create_video",
            {"prompt": "a cat", "model": "sora-2-pro", "duration": 15},
            4.5,
            "$4.50 for 15 s of sora-2-pro,",
        ),
        ("create_video", {"prompt": "a cat"}, 1.0, "$1.00 for 10 s of sora-2 (the shortest duration; none was given),"),
        (
            "create_character",
            {"timestamps": "1,3", "url": "https://cdn.example.com/a.mp4"},
            0.05,
            "$0.05 for one character task,",
        ),
    ],
)
async def test_every_paid_result_carries_its_estimate_and_says_what_was_priced(
    fake: FakeGateway, tool: str, arguments: dict[str, Any], usd: float, priced: str
) -> None:
    async with connect(fake, prices='{"character": 0.05}') as client:
        task = ok(await call(client, tool, arguments))
        (listed,) = ok(await call(client, "list_tasks", {}))["tasks"]
    assert task["cost_estimate_usd"] == listed["cost_estimate_usd"] == usd
    assert priced in task["hint"] and "from the configured prices (SORA_PRICES), not the gateway's bill" in task["hint"]


async def test_a_remix_is_priced_at_its_models_shortest_remix_duration_and_an_unpriced_call_says_so(
    fake: FakeGateway,
) -> None:
    async with connect(fake) as client:
        source = ok(await call(client, "create_video", {"prompt": "a cat", "wait_seconds": 5}))
        remix = ok(
            await call(
                client, "remix_video", {"task_id": source["task_id"], "prompt": "at night", "model": "sora-2-pro"}
            )
        )
        character = ok(await call(client, "create_character", {"timestamps": "1,3", "from_task": source["task_id"]}))
    assert remix["cost_estimate_usd"] == 4.5  # sora-2-pro remixes are 15 or 25 s
    assert "cost_estimate_usd" not in character
    assert "budgets cannot see this task's cost (set a price in SORA_PRICES)" in character["hint"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "must be JSON, an object such as"),
        ("[0.1]", "must be a JSON object"),
        ('{"sora-2": -0.1}', "the price of 'sora-2' must be a number of USD, 0 or more, got -0.1"),
        ('{"sora-2": "cheap"}', "the price of 'sora-2' must be a number of USD, 0 or more, got 'cheap'"),
        ('{"sora-2": true}', "the price of 'sora-2' must be a number of USD, 0 or more, got True"),
        ('{"sora-2": 1e999}', "must be a number of USD"),
    ],
)
def test_bad_prices_stop_start_up_naming_sora_prices(monkeypatch: pytest.MonkeyPatch, value: str, problem: str) -> None:
    monkeypatch.setenv("SORA_PRICES", value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    message = describe_settings_error(raised.value)
    assert "SORA_PRICES:" in message and problem in message


def test_prices_merge_over_the_list_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_PRICES", '{"sora-2": 0.12, "character": 0.05}')
    assert Settings().prices == {"sora-2": 0.12, "sora-2-pro": 0.30, "character": 0.05}
    monkeypatch.delenv("SORA_PRICES")
    assert Settings().prices == {"sora-2": 0.10, "sora-2-pro": 0.30}


# --------------------------------------------------------------------------------------------- the user's yes


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", ["true", "false", "decline", "cancel"])
async def test_elicitation_asks_once_and_only_a_yes_sends_the_request(
    fake: FakeGateway, mode: str, answer: str
) -> None:
    asker = Asker(answer)
    arguments = {"prompt": "a red fox crossing a frozen lake at dawn, slow dolly shot", "duration": 15}
    async with connect(fake, mode=mode, asker=asker, confirm_above_usd=1.0) as client:
        result = await call(client, "create_video", arguments)
    [question] = asker.questions
    assert question.mode == "form"
    assert question.requested_schema["properties"] == {
        "approve": {"type": "boolean", "title": "Approve", "description": "Spend the estimated amount on this call?"}
    }
    for part in ("create_video", "sora-2", "15 s", '"a red fox crossing a frozen lake at dawn, slow dolly shot"'):
        assert part in question.message
    assert "Estimated cost $1.50" in question.message and "Spent today so far: $0.00" in question.message
    if answer == "true":
        assert ok(result)["status"] == "queued" and creates(fake) == 1
    else:
        assert error_of(result, "create_video") == (
            "The user declined this create_video call (estimated $1.50 for 15 s of sora-2). "
            + NOTHING
            + " Do not call create_video again unless the user asks for it."
        )
        assert creates(fake) == 0


@pytest.mark.parametrize("mode", MODES)
async def test_below_the_threshold_nothing_is_asked_and_an_unknown_price_is_asked(fake: FakeGateway, mode: str) -> None:
    asker = Asker("true")
    async with connect(fake, mode=mode, asker=asker, confirm_above_usd=2.0) as client:
        ok(await call(client, "create_video", {"prompt": "a cat"}))  # $1.00
        assert asker.questions == []
        ok(await call(client, "create_character", {"timestamps": "1,3", "url": "https://cdn.example.com/a.mp4"}))
    [question] = asker.questions
    assert "unknown (SORA_PRICES has no price for character tasks)" in question.message
    assert creates(fake) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_cannot_be_asked_gets_a_quote_to_confirm_once(fake: FakeGateway, mode: str) -> None:
    arguments = {"prompt": "a cat", "model": "sora-2-pro"}
    async with connect(fake, mode=mode, confirm_above_usd=0) as client:
        quoted = ok(await call(client, "create_video", arguments))
        assert creates(fake) == 0
        confirmed = ok(await call(client, "create_video", {**arguments, "confirm_quote": quoted["quote_id"]}))
        again = await call(
            client, "create_video", {**arguments, "confirm_quote": quoted["quote_id"], "allow_duplicate": True}
        )
        other = ok(await call(client, "create_video", {"prompt": "a dog"}))
        wrong = await call(client, "create_video", {"prompt": "a horse", "confirm_quote": other["quote_id"]})
        unknown = await call(client, "create_video", {"prompt": "a dog", "confirm_quote": "quote_0000"})
    assert quoted == {
        "kind": "video",
        "status": "awaiting_confirmation",
        "progress": 0,
        "model": "sora-2-pro",
        "cost_estimate_usd": 3.0,
        "confirmation_required": True,
        "quote_id": quoted["quote_id"],
        "quote_expires_at": quoted["quote_expires_at"],
        "hint": quoted["hint"],
    }
    assert "task_id" not in quoted
    assert f"plus confirm_quote='{quoted['quote_id']}'" in quoted["hint"]
    assert quoted["hint"].startswith("Nothing was created or billed yet: this create_video call needs the user's")
    assert confirmed["status"] == "queued" and confirmed["cost_estimate_usd"] == 3.0
    assert creates(fake) == 1  # the used quote, the other arguments and the unknown id sent nothing
    assert "was already used for a create: a quote is good for one" in error_of(again, "create_video")
    assert "was issued for different arguments" in error_of(wrong, "create_video")
    assert error_of(unknown, "create_video") == (
        f"confirm_quote 'quote_0000' is not a quote this server issued (for this gateway). {NOTHING} Call the tool "
        "again without confirm_quote for a new quote, and ask the user again."
    )


async def test_a_quote_expires_after_ten_minutes(fake: FakeGateway) -> None:
    clock = ManualClock()
    async with connect(fake, clock=clock, confirm_above_usd=0) as client:
        quoted = ok(await call(client, "create_video", {"prompt": "a cat"}))
        assert quoted["quote_expires_at"] == int(clock.now) + 600
        clock.advance(601)
        expired = await call(client, "create_video", {"prompt": "a cat", "confirm_quote": quoted["quote_id"]})
    assert "has expired: quotes last 10 minutes" in error_of(expired, "create_video")
    assert creates(fake) == 0


async def test_the_sandbox_quotes_and_confirms_too(tmp_path: Path) -> None:
    settings = Settings(sandbox=True, sandbox_seconds=1, confirm_above_usd=0, state_dir=tmp_path)
    async with Client(build_server(settings)) as client:
        quoted = ok(await call(client, "create_video", {"prompt": "a cat"}))
        confirmed = ok(await call(client, "create_video", {"prompt": "a cat", "confirm_quote": quoted["quote_id"]}))
    assert quoted["hint"].startswith("[Sandbox: simulated task, nothing was billed] Nothing was created or billed")
    assert confirmed["sandbox"] is True and confirmed["cost_estimate_usd"] == 1.0


# --------------------------------------------------------------------------------------------- budgets


def local_time(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute).astimezone().timestamp()


async def test_the_daily_budget_refuses_the_call_that_would_pass_it_and_resets_at_midnight(fake: FakeGateway) -> None:
    clock = ManualClock(local_time(2026, 12, 2, 23, 58))
    async with connect(fake, clock=clock, budget_daily_usd=2.0) as client:
        ok(await call(client, "create_video", {"prompt": "one"}))
        ok(await call(client, "create_video", {"prompt": "two"}))
        refused = await call(client, "create_video", {"prompt": "three"})
        spending = ok(await call(client, "get_spending", {}))
        clock.advance(180)  # past local midnight
        after_midnight = ok(await call(client, "create_video", {"prompt": "three"}))
    midnight = datetime(2026, 12, 3).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    assert error_of(refused, "create_video") == (
        "Refused: this call is estimated at $1.00 and $2.00 is already spent (today, estimates), over the budget "
        f"SORA_BUDGET_DAILY_USD=$2.00. {NOTHING} The budget resets at {midnight}. Tell the user; do not retry "
        "before then unless they raise the budget."
    )
    assert (spending["today_usd"], spending["budget_daily_usd"], spending["remaining_today_usd"]) == (2.0, 2.0, 0.0)
    assert after_midnight["status"] == "queued"
    assert creates(fake) == 3


async def test_failed_and_reused_tasks_are_not_spend_and_the_monthly_budget_holds(fake: FakeGateway) -> None:
    clock = ManualClock(local_time(2026, 12, 31, 12, 0))
    fake.clock = clock
    async with connect(fake, clock=clock, budget_monthly_usd=2.0) as client:
        failing = ok(await call(client, "create_video", {"prompt": "[fail] a cat"}))
        clock.advance(1)
        assert ok(await call(client, "get_task", {"task_id": failing["task_id"]}))["status"] == "failed"
        ok(await call(client, "create_video", {"prompt": "a dog"}))
        reused = ok(await call(client, "create_video", {"prompt": "a dog"}))
        ok(await call(client, "create_video", {"prompt": "a horse"}))
        refused = await call(client, "create_video", {"prompt": "a cow"})
        spending = ok(await call(client, "get_spending", {}))
    assert reused["reused"] is True
    assert "SORA_BUDGET_MONTHLY_USD=$2.00" in error_of(refused, "create_video")
    assert "$2.00 is already spent (this month, estimates)" in error_of(refused, "create_video")
    assert spending["by_model"] == [{"model": "sora-2", "tasks": 2, "usd": 2.0}]
    assert (spending["month_usd"], spending["remaining_month_usd"]) == (2.0, 0.0)
    assert creates(fake) == 3  # the failed one, the dog, the horse


async def test_a_budget_refuses_before_asking_the_user(fake: FakeGateway) -> None:
    asker = Asker("true")
    async with connect(fake, asker=asker, confirm_above_usd=0, budget_daily_usd=0.5) as client:
        refused = await call(client, "create_video", {"prompt": "a cat"})
    assert "SORA_BUDGET_DAILY_USD=$0.50" in error_of(refused, "create_video")
    assert asker.questions == [] and creates(fake) == 0


async def test_get_spending_without_budgets_shows_the_prices_and_no_caps(fake: FakeGateway) -> None:
    async with connect(fake) as client:
        spending = ok(await call(client, "get_spending", {}))
    assert spending == {
        "today_usd": 0.0,
        "month_usd": 0.0,
        "by_model": [],
        "prices": {"sora-2": 0.1, "sora-2-pro": 0.3},
        "estimate_note": "Estimates come from the configured price table (SORA_PRICES), not from the gateway's "
        "bill: the gateway states no prices, and what it charges may differ.",
    }


# --------------------------------------------------------------------------------------------- the journal


@SQLITE_ONLY
async def test_a_journal_of_schema_1_is_migrated_and_keeps_its_tasks(fake: FakeGateway, state_dir: Path) -> None:
    """A journal written by the previous release opens, gains the estimate column and the quotes table, keeps
    every task, and its old tasks count as unpriced spend."""
    path = journal_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as old:
        for statement in sqlite_schema():
            old.execute(statement)
        old.execute(
            "INSERT INTO tasks (gateway, state, kind, task_id, tool, prompt, model, submitted_at, recorded_at, "
            "updated_at, status, snapshot) VALUES (?, 'created', 'video', 'task_old', 'create_video', 'an old cat', "
            "'sora-2', ?, ?, ?, 'completed', ?)",
            (
                make_settings().base_url,
                datetime.now().timestamp(),
                datetime.now().timestamp(),
                datetime.now().timestamp(),
                json.dumps({"task_id": "task_old", "kind": "video", "status": "completed", "progress": 100}),
            ),
        )
        old.execute("PRAGMA user_version = 1")
        old.commit()
    async with connect(fake) as client:
        (listed,) = ok(await call(client, "list_tasks", {}))["tasks"]
        spending = ok(await call(client, "get_spending", {}))
    assert (listed["task_id"], listed["prompt"], listed["status"]) == ("task_old", "an old cat", "completed")
    assert "cost_estimate_usd" not in listed
    assert spending["by_model"] == [{"model": "sora-2", "tasks": 1, "usd": 0.0}]
    assert "1 task(s) this month have no price" in spending["estimate_note"]
    with closing(sqlite3.connect(path)) as migrated:
        assert migrated.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        columns = {row[1] for row in migrated.execute("PRAGMA table_info(tasks)")}
        assert "cost_estimate_usd" in columns
        assert migrated.execute("SELECT COUNT(*) FROM quotes").fetchone()[0] == 0
    journal = Journal(path)
    await journal.open()  # opening again changes nothing
    await journal.close()


def test_the_budget_windows_follow_the_local_calendar() -> None:
    from sora_mcp.spending import day_and_month

    now = local_time(2026, 2, 28, 15, 30)
    day, month = day_and_month(now)
    assert (day.start, day.end) == (local_time(2026, 2, 28, 0, 0), local_time(2026, 3, 1, 0, 0))
    assert (month.start, month.end) == (local_time(2026, 2, 1, 0, 0), local_time(2026, 3, 1, 0, 0))
    december = day_and_month(local_time(2026, 12, 31, 23, 59))[1]
    assert december.end == local_time(2027, 1, 1, 0, 0)
    assert timedelta(seconds=day.end - day.start) in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))


async def test_a_quote_used_by_a_create_the_gateway_refused_can_be_used_again(fake: FakeGateway) -> None:
    """The gateway answered 400 (surely nothing created): the quote is not spent, and the retry goes through."""
    async with connect(fake, confirm_above_usd=0) as client:
        quoted = ok(await call(client, "create_video", {"prompt": "a cat"}))
        fake.fault("POST", CREATE, status=400)
        refused = await call(client, "create_video", {"prompt": "a cat", "confirm_quote": quoted["quote_id"]})
        retried = ok(await call(client, "create_video", {"prompt": "a cat", "confirm_quote": quoted["quote_id"]}))
    assert refused.is_error is True
    assert retried["status"] == "queued"
    assert creates(fake) == 2  # the refused POST and the one that created


@pytest.mark.parametrize("zone", ["America/Santiago", "America/Havana", "Asia/Beirut", "Europe/Berlin", "UTC"])
def test_every_moment_lies_in_its_own_day_and_month_even_where_dst_starts_at_midnight(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where 00:00 does not exist on the day DST starts, the day begins at 01:00: no hour falls outside every
    window (a budget would not see it). Each hour of 2020-2023 (the lost hour is a whole hour)."""
    import time

    from sora_mcp.spending import day_and_month

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        outside = [
            moment
            for moment in range(1_577_836_800 + 600, 1_577_836_800 + 4 * 365 * 86400, 3600)
            for day, month in [day_and_month(moment)]
            if not (day.start <= moment < day.end and month.start <= moment < month.end)
        ]
    finally:
        monkeypatch.undo()
        time.tzset()
    assert outside == []


# --------------------------------------------------------------------------------------------- found in review


@pytest.mark.parametrize("mode", MODES)
async def test_an_identical_retry_is_reused_without_a_question_a_quote_or_a_budget_refusal(
    fake: FakeGateway, mode: str
) -> None:
    """The documented way to recover a lost task id (the same call again) returns the earlier task, even when
    confirmation is on and the budget is spent: it costs nothing new."""
    asker = Asker("true")
    async with connect(fake, mode=mode, asker=asker, confirm_above_usd=0, budget_daily_usd=1.0) as client:
        first = ok(await call(client, "create_video", {"prompt": "a cat"}))
        again = ok(await call(client, "create_video", {"prompt": "a cat"}))
    assert len(asker.questions) == 1
    assert again["reused"] is True and again["task_id"] == first["task_id"]
    assert creates(fake) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_declaring_url_only_elicitation_gets_a_quote_not_a_protocol_error(
    fake: FakeGateway, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp import types
    from mcp.client.session import ClientSession

    declared = ClientSession._build_capabilities

    def url_only(self: ClientSession, version: Any) -> Any:
        capabilities = declared(self, version)
        return capabilities.model_copy(
            update={"elicitation": types.ElicitationCapability(url=types.UrlElicitationCapability())}
        )

    monkeypatch.setattr(ClientSession, "_build_capabilities", url_only)
    asker = Asker("true")
    async with connect(fake, mode=mode, asker=asker, confirm_above_usd=0) as client:
        quoted = ok(await call(client, "create_video", {"prompt": "a cat"}))
    assert quoted["confirmation_required"] is True and asker.questions == []
    assert creates(fake) == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_can_be_asked_is_never_given_a_quote(
    fake: FakeGateway, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the resolver could not ask (its journal read failed once), the call is refused with nothing sent;
    a quote would let the agent approve its own spend."""
    from sora_mcp.errors import JournalError
    from sora_mcp.tasks import TaskService

    spending = TaskService.spending
    failures = [JournalError("the journal is busy", path="x")]

    async def fails_once(self: TaskService) -> Any:
        if failures:
            raise failures.pop()
        return await spending(self)

    monkeypatch.setattr(TaskService, "spending", fails_once)
    asker = Asker("false")
    async with connect(fake, mode=mode, asker=asker, confirm_above_usd=0) as client:
        refused = await call(client, "create_video", {"prompt": "a cat"})
    assert "could not be asked just now" in error_of(refused, "create_video")
    assert "quote" not in error_of(refused, "create_video")
    assert creates(fake) == 0


async def test_waited_refreshed_and_read_tasks_keep_their_estimate(fake: FakeGateway) -> None:
    async with connect(fake) as client:
        waited = ok(await call(client, "create_video", {"prompt": "a cat", "wait_seconds": 5}))
        other = ok(await call(client, "create_video", {"prompt": "a dog", "model": "sora-2-pro"}))
        read = ok(await call(client, "get_task", {"task_id": other["task_id"]}))
        refreshed = ok(await call(client, "list_tasks", {"refresh": True}))["tasks"]
    assert waited["status"] == "completed" and waited["cost_estimate_usd"] == 1.0
    assert "Estimated cost: $1.00 for 10 s of sora-2" in waited["hint"]
    assert read["cost_estimate_usd"] == 3.0
    assert [task["cost_estimate_usd"] for task in refreshed] == [3.0, 1.0]
