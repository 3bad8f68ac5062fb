"""What only the PostgreSQL journal has: a server that can be away, replicas starting together, a password to hide,
tables of other programs in the same database, and ``sora-mcp doctor``'s view of it. (Everything both backends
share runs on both in test_journal.py, test_tasks.py, test_money.py and test_journal_stdio.py.)"""

import logging
import re
import sys
import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import psycopg
import pytest
from conftest import API_KEY, make_settings, started_postgres
from fake_gateway import FakeGateway
from mcp import Client
from mcp.types import CallToolResult, TextContent
from postgres import PostgresServer, free_port

from sora_mcp.config import Settings
from sora_mcp.create_requests import VideoRequest
from sora_mcp.doctor import check_database, check_journal_size, check_spending
from sora_mcp.errors import JournalError
from sora_mcp.journal import DriverMissingError, Journal, Submission, journal_for
from sora_mcp.journal_postgres import SCHEMA, PostgresStore
from sora_mcp.journal_schema import SCHEMA_VERSION
from sora_mcp.models import Task
from sora_mcp.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

GATEWAY = "http://gateway.test"
CREATE = "/v1/videos/generations"


def video(prompt: str = "a cat surfing") -> Submission:
    return Submission.of(VideoRequest(prompt=prompt))


def masked(url: str, password: str) -> str:
    return url.replace(password, "***")


def text(result: CallToolResult) -> str:
    item = result.content[0]
    assert isinstance(item, TextContent)
    return item.text


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, which it may stop and start."""
    with started_postgres() as server:
        yield server


async def test_replicas_starting_at_once_create_the_schema_once(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Eight journals opening a new database together: all open, one schema row, one 'Created' line."""
    caplog.set_level(logging.INFO, logger="sora_mcp.journal_postgres")
    journals = [Journal(PostgresStore(database_url)) for _ in range(8)]
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for journal in journals:
                group.start_soon(journal.open)
    with psycopg.connect(database_url) as connection:
        versions = connection.execute(f"SELECT version FROM {SCHEMA}.journal_schema").fetchall()
    assert versions == [(SCHEMA_VERSION,)]
    created = [record for record in caplog.records if record.getMessage().startswith("Created the task journal")]
    assert len(created) == 1
    assert "***" in created[0].getMessage()
    for journal in journals:
        await journal.close()


async def test_other_programs_tasks_tables_are_left_alone(database_url: str) -> None:
    """A ``tasks`` table of another program in ``public`` is neither read nor written: ours live in sora_mcp."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE public.tasks (id TEXT PRIMARY KEY, owner TEXT)")
        connection.execute("INSERT INTO public.tasks VALUES ('theirs', 'another program')")
    journal = Journal(PostgresStore(database_url))
    claim = await journal.claim(video(), gateway=GATEWAY, window=600)
    assert [row.row_id for row in await journal.recent(gateway=GATEWAY, limit=5)] == [claim.entry.row_id]
    await journal.close()
    with psycopg.connect(database_url) as connection:
        assert connection.execute("SELECT * FROM public.tasks").fetchall() == [("theirs", "another program")]


async def test_a_journal_of_a_newer_version_is_refused_naming_the_masked_url(
    postgres: PostgresServer, database_url: str
) -> None:
    journal = Journal(PostgresStore(database_url))
    await journal.open()
    await journal.close()
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"UPDATE {SCHEMA}.journal_schema SET version = 99")
    newer = Journal(PostgresStore(database_url))
    with pytest.raises(JournalError) as caught:
        await newer.open()
    await newer.close()  # a pool left to the garbage collector may be closed on one of its own threads
    assert str(caught.value) == (
        f"The task journal {masked(database_url, postgres.password)} was written by a newer sora-mcp (schema 99; "
        f"this one knows {SCHEMA_VERSION}). Upgrade sora-mcp, or point SORA_DATABASE_URL at another database."
    )


@pytest.mark.parametrize("problem", ["refused", "password", "database"])
async def test_a_database_that_cannot_be_used_is_named_with_the_cause_and_the_fix(
    postgres: PostgresServer, problem: str
) -> None:
    """Refused connection, wrong password, missing database: the cause, the fix, never the password; bounded."""
    url = {
        "refused": postgres.url(port=free_port()),
        "password": postgres.url().replace(postgres.password, "wrong-password-123"),
        "database": postgres.url("no_such_database"),
    }[problem]
    expected = {
        "refused": ("cannot be reached (", "Check that PostgreSQL runs and that this machine can reach it"),
        "password": ("refused the login (", "Check the user and password in SORA_DATABASE_URL."),
        "database": ("does not exist (", "Create the database (see the README, Several machines)"),
    }[problem]
    store = PostgresStore(url, connect_timeout=2)
    with anyio.fail_after(15), pytest.raises(JournalError) as caught:
        await Journal(store).open()
    message = str(caught.value)
    assert message.startswith(f"The task journal {store.where} {expected[0]}")
    assert expected[1] in message
    assert postgres.password not in message and "wrong-password-123" not in message
    assert ":***@127.0.0.1" in message
    # Within the next second the same answer comes at once, without waiting for the pool again.
    with anyio.fail_after(0.5), pytest.raises(JournalError) as again:
        await Journal(store).open()
    assert str(again.value) == message
    store.close()


@pytest.fixture
async def served(
    own_postgres: PostgresServer, fake: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Client, Settings]]:
    """An MCP client of a server whose journal is ``own_postgres``, in memory, against the fake gateway."""
    import httpx2

    monkeypatch.setenv("SORA_DATABASE_URL", own_postgres.database())
    settings = make_settings()
    transport = httpx2.ASGITransport(app=fake.build_app())
    async with (
        httpx2.AsyncClient(transport=transport) as http,
        Client(build_server(settings, http_client=http)) as client,
    ):
        yield client, settings


async def test_postgres_stopped_and_restarted_under_a_running_server(
    own_postgres: PostgresServer,
    served: tuple[Client, Settings],
    fake: FakeGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Down: get_task still answers, a create is refused unsent and says why (no password). Back: creates work."""
    client, _ = served
    first = await client.call_tool("create_video", {"prompt": "before the outage"})
    assert first.is_error is False
    task_id = (first.structured_content or {})["task_id"]
    own_postgres.stop()
    read = await client.call_tool("get_task", {"task_id": task_id})
    refused = await client.call_tool("create_video", {"prompt": "during the outage"})
    listed = await client.call_tool("list_tasks", {})
    own_postgres.start()
    with anyio.fail_after(30):
        while True:  # the pool reconnects by itself; the first call after it is back works
            again = await client.call_tool("create_video", {"prompt": "after the outage"})
            if again.is_error is False:
                break
            await anyio.sleep(0.2)
    after = await client.call_tool("list_tasks", {})

    assert read.is_error is False and (read.structured_content or {})["task_id"] == task_id
    assert refused.is_error is True and listed.is_error is True
    assert "Nothing was sent to the gateway, so nothing was billed" in text(refused)
    assert "cannot be reached" in text(refused) and ":***@127.0.0.1" in text(refused)
    posted = [r.json["prompt"] for r in fake.requests if r.method == "POST"]
    assert posted == ["before the outage", "after the outage"]
    prompts = [t["prompt"] for t in (after.structured_content or {})["tasks"]]
    assert prompts == ["after the outage", "before the outage"]
    everything = " ".join([text(refused), text(listed), caplog.text])
    assert own_postgres.password not in everything


async def test_without_the_driver_the_setting_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """SORA_DATABASE_URL without psycopg installed: start-up says which extra to install."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "sora_mcp.journal_postgres", raising=False)
    settings = make_settings(database_url="postgresql://sora:secret-password@db.example/sora")
    with pytest.raises(DriverMissingError) as caught:
        journal_for(settings)
    assert str(caught.value) == (
        "SORA_DATABASE_URL is set, but the PostgreSQL driver is not installed (psycopg is missing): install "
        "sora-mcp with its postgres extra (pip install 'sora-mcp[postgres]'), or unset SORA_DATABASE_URL to keep "
        "the journal in a local SQLite file."
    )


async def test_doctor_reports_the_database_and_its_spend(postgres: PostgresServer, database_url: str) -> None:
    settings = make_settings(database_url=database_url)
    where = masked(database_url, postgres.password)
    before = await check_database(settings)
    empty = await check_journal_size(settings)
    journal = journal_for(settings)
    await journal.open()
    seen = Task(task_id="task_seen", kind="video", status="queued")
    await journal.observe(seen, gateway="g", link_window=1, in_flight=1)
    await journal.close()
    after = await check_database(settings)
    size = await check_journal_size(settings)
    spending = await check_spending(settings)
    down = await check_database(make_settings(database_url=postgres.url(port=free_port())))
    assert before is not None and after is not None and down is not None
    assert (before.status, before.detail) == (
        "OK",
        f"PostgreSQL at {where} answers: no journal yet; the server creates it at start-up (shared by every replica)",
    )
    assert after.detail == f"PostgreSQL at {where} answers: journal schema {SCHEMA_VERSION} (shared by every replica)"
    assert spending[-1].status == "OK" and spending[-1].detail.startswith("spent $0.00 today")
    kept = "finished tasks are kept 90 days (SORA_JOURNAL_RETENTION_DAYS)"
    assert (empty.status, empty.detail) == ("OK", f"empty: the server creates it at start-up; {kept}")
    assert size.status == "OK" and re.fullmatch(rf"1 rows, \d+\.\d MB; {re.escape(kept)}", size.detail), size
    assert down.status == "FAIL" and "cannot be reached" in down.detail and postgres.password not in down.detail


def test_the_database_url_is_validated_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from sora_mcp.config import describe_settings_error

    monkeypatch.setenv("SORA_API_KEY", API_KEY)
    monkeypatch.setenv("SORA_DATABASE_URL", "mysql://sora:hunter2-password@db/sora")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_settings_error(caught.value)
    assert "SORA_DATABASE_URL: Value error, must be a URL such as postgresql://user:password@host:5432/dbname" in (
        message
    )
    assert "hunter2" not in message


async def test_a_server_started_while_postgres_is_away_serves_and_says_so(
    postgres: PostgresServer, fake: FakeGateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Start-up with the database away: a warning naming it (masked), get_task works, a create is sent and says
    that it is not recorded (the rule of a journal that never worked in this process)."""
    import httpx2

    url = postgres.url(port=free_port())
    monkeypatch.setenv("SORA_DATABASE_URL", url)
    task_id = fake.create({"model": "sora-2", "prompt": "made elsewhere"})["id"]
    transport = httpx2.ASGITransport(app=fake.build_app())
    with anyio.fail_after(30):
        async with (
            httpx2.AsyncClient(transport=transport) as http,
            Client(build_server(make_settings(), http_client=http)) as client,
        ):
            read = await client.call_tool("get_task", {"task_id": task_id})
            created = await client.call_tool("create_video", {"prompt": "while the database is away"})
    assert read.is_error is False
    assert created.is_error is False
    assert "Note: this task is not recorded in the task journal" in (created.structured_content or {})["hint"]
    warning = next(r.getMessage() for r in caplog.records if r.name == "sora_mcp.server.app")
    assert warning.startswith(f"The task journal {masked(url, postgres.password)} cannot be reached (")
    assert postgres.password not in caplog.text


@pytest.mark.parametrize("password", ["s3cr#et-pass", "ab?cd-efgh", "p%40ss-word"])
async def test_a_password_with_url_delimiters_is_masked_too(password: str) -> None:
    """libpq ends the password at the last '@' before the first '/', so '#' and '?' belong to it: masked as a
    whole in the URL and in every message (also decoded, and as a password= parameter)."""
    port = free_port()
    url = f"postgresql://sora:{password}@127.0.0.1:{port}/sora?sslmode=disable&password=other-secret"
    store = PostgresStore(url, connect_timeout=2)
    assert store.where == f"postgresql://sora:***@127.0.0.1:{port}/sora?sslmode=disable&password=***"
    with anyio.fail_after(15), pytest.raises(JournalError) as caught:
        await Journal(store).open()
    store.close()
    message = str(caught.value)
    for secret in (password, "s3cr", "other-secret", "p@ss-word"):
        assert secret not in message, secret


@pytest.mark.slow
async def test_after_a_long_outage_the_first_call_works_once_postgres_is_back(own_postgres: PostgresServer) -> None:
    """The pool backs off 1, 2, 4, 8... s between attempts during an outage; once the database answers again,
    the first call renews the pool instead of waiting for its next attempt."""
    journal = Journal(PostgresStore(own_postgres.database(), connect_timeout=2))
    await journal.open()
    own_postgres.stop()
    with anyio.fail_after(60):
        for _ in range(6):  # about 12 s of failures: the pool's next attempt is then seconds away
            with pytest.raises(JournalError):
                await journal.recent(gateway=GATEWAY, limit=1)
            await anyio.sleep(1.1)
        own_postgres.start()
        assert await journal.recent(gateway=GATEWAY, limit=1) == []
    await journal.close()


async def test_a_busy_pool_says_so_and_is_not_taken_for_an_outage(database_url: str) -> None:
    """Every connection in use past the wait: "busy" (not "cannot be reached"), and the next call, once one is
    free, works at once (no fail-fast window)."""
    store = PostgresStore(database_url, pool_size=1, connect_timeout=1)
    journal = Journal(store)
    await journal.open()
    release = threading.Event()

    def hold(connection: object) -> None:
        release.wait(10)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, store.run, hold)
            await anyio.sleep(0.3)
            with pytest.raises(JournalError, match=r"is busy: all 1 connections stayed in use for 1 s"):
                await journal.recent(gateway=GATEWAY, limit=1)
            release.set()
        assert await journal.recent(gateway=GATEWAY, limit=1) == []
    await journal.close()
