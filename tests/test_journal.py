"""The task journal on its own: write-ahead rows, the duplicate window and linking on both backends (SQLite and
PostgreSQL, parametrized by the ``journal_backend`` fixture); the SQLite file's own failures."""

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import read_only_directory
from fake_gateway import ManualClock

from sora_mcp.create_requests import CharacterRequest, VideoRequest
from sora_mcp.errors import JournalError
from sora_mcp.journal import JOURNAL_FILENAME, SCHEMA_VERSION, Journal, Submission, journal_path
from sora_mcp.journal_postgres import PostgresStore
from sora_mcp.models import Task

pytestmark = pytest.mark.anyio

GATEWAY = "http://gateway.test"
PNG = "data:image/png;base64,iVBORw0KGgo="
LINK = {"link_window": 300.0, "in_flight": 300.0}
"""How far back a lost submission is a candidate for a new task, and how long a create may be in flight."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def new_journal(journal_backend: str, state_dir: Path) -> AsyncIterator[Callable[..., Journal]]:
    """Journals on the backend under test, all in the same place (one file, or one database); closed at the end
    (a PostgreSQL pool left to the garbage collector may be closed on one of its own threads)."""
    url = os.environ.get("SORA_DATABASE_URL")
    made: list[Journal] = []

    def new_journal(**options: Any) -> Journal:
        if journal_backend == "postgres":
            assert url is not None
            made.append(Journal(PostgresStore(url), **options))
        else:
            made.append(Journal(journal_path(state_dir), **options))
        return made[-1]

    yield new_journal
    for journal in made:
        await journal.close()


@pytest.fixture
async def journal(new_journal: Callable[..., Journal], clock: ManualClock) -> Journal:
    journal = new_journal(clock=clock)
    await journal.open()
    return journal


def video(prompt: str = "a cat surfing", **fields: object) -> Submission:
    return Submission.of(VideoRequest(prompt=prompt, **fields))  # type: ignore[arg-type]  # test shorthand


def created(task_id: str, *, created_at: int | None = None, model: str = "sora-2", status: str = "queued") -> Task:
    return Task(task_id=task_id, kind="video", status=status, model=model, created_at=created_at)  # type: ignore[arg-type]


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --------------------------------------------------------------------------------------------- the file


async def test_open_creates_a_versioned_wal_database_in_the_state_directory(state_dir: Path) -> None:
    """The directory and file are created on open; the file is in WAL mode with the current schema version."""
    path = state_dir / "nested" / JOURNAL_FILENAME
    await Journal(path).open()
    with contextlib.closing(sqlite3.connect(path)) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_journal_path_defaults_to_the_platform_state_directory() -> None:
    """Without SORA_STATE_DIR the journal lives in the user state directory of sora-mcp."""
    default = journal_path(None)
    assert default.name == JOURNAL_FILENAME
    assert default.parent.name == "sora-mcp"
    assert journal_path(Path("/srv/state")) == Path("/srv/state") / JOURNAL_FILENAME


async def test_a_corrupt_file_is_reported_with_its_path_and_the_fix(state_dir: Path) -> None:
    """A file that is not SQLite gives a JournalError naming the file and saying to move it aside."""
    path = journal_path(state_dir)
    write_file(path, b"this is not a database, just some bytes that went wrong" * 100)
    with pytest.raises(JournalError) as caught:
        await Journal(path).open()
    assert str(caught.value) == (
        f"The task journal {path} is damaged or not a SQLite database (file is not a database). Move the file "
        f"aside (for example rename it to {JOURNAL_FILENAME}.broken) and restart sora-mcp to start a new journal, "
        "or set SORA_STATE_DIR to another directory."
    )
    assert caught.value.path == str(path)


async def test_a_state_directory_that_cannot_be_made_is_reported(tmp_path: Path) -> None:
    """When the state directory cannot be created (a file is in the way), the error says so and names the fix."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    path = blocker / "state" / JOURNAL_FILENAME
    with pytest.raises(JournalError) as caught:
        await Journal(path).open()
    assert str(caught.value) == (
        f"The task journal cannot be created: the directory {blocker / 'state'} cannot be made (Not a directory). "
        "Set SORA_STATE_DIR to a directory this user can write, or fix the path, then restart sora-mcp."
    )


async def test_a_read_only_directory_is_reported_and_the_journal_heals_once_writable(
    state_dir: Path, clock: ManualClock
) -> None:
    """An existing journal in a read-only directory fails with a permission fix; after chmod it works again."""
    path = journal_path(state_dir)
    first = Journal(path, clock=clock)
    await first.claim(video(), gateway=GATEWAY, window=600)
    await first.close()
    journal = Journal(path, clock=clock)
    with read_only_directory(state_dir):
        with pytest.raises(JournalError) as caught:
            await journal.open()
        message = str(caught.value)
        assert message.startswith(f"The task journal {path} cannot be opened for writing (")
        assert message.endswith(
            f"Make {state_dir} and the journal files in it writable for this user, or set SORA_STATE_DIR to a "
            "writable directory."
        )
        assert journal.ever_opened is False
    assert [entry.prompt for entry in await journal.recent(gateway=GATEWAY, limit=5)] == ["a cat surfing"]
    assert journal.ever_opened is True


async def test_a_journal_from_a_newer_version_is_refused(state_dir: Path) -> None:
    """A schema version above ours is not touched: the error says to upgrade."""
    path = journal_path(state_dir)
    write_file(path, b"")
    with contextlib.closing(sqlite3.connect(path)) as newer:
        newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(
        JournalError,
        match=rf"written by a newer sora-mcp \(schema {SCHEMA_VERSION + 1}; this one knows {SCHEMA_VERSION}\)",
    ):
        await Journal(path).open()


async def test_a_write_locked_by_another_process_fails_after_the_busy_timeout(state_dir: Path) -> None:
    """A write waits busy_timeout for another connection's lock, then reports the lock."""
    path = journal_path(state_dir)
    journal = Journal(path, busy_timeout=0.1)
    await journal.open()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(JournalError, match=r"stayed locked by another process for more than 0.1 s"):
            await journal.claim(video(), gateway=GATEWAY, window=600)
        other.execute("ROLLBACK")
    claim = await journal.claim(video(), gateway=GATEWAY, window=600)
    assert claim.duplicate is False


# --------------------------------------------------------------------------------------------- requests


def test_equal_requests_have_equal_keys_and_data_uris_are_stored_short() -> None:
    """The key is the canonical payload (whitespace of the prompt and defaults normalized); images are digested."""
    same = Submission.of(VideoRequest(prompt="  a cat  ", model="sora-2", images=[PNG]))
    assert same.request_hash == Submission.of(VideoRequest(prompt="a cat", images=[PNG])).request_hash
    assert (
        same.request_hash
        != Submission.of(VideoRequest(prompt="a cat", images=["data:image/png;base64,iVBORw0KGgoA"])).request_hash
    )
    assert same.request_hash != Submission.of(VideoRequest(prompt="a cat", images=[PNG], duration=10)).request_hash
    assert same.arguments == (
        '{"images":["data:image/png;base64 (12 chars, sha256 929e08d597feae56)"],"model":"sora-2","prompt":"a cat"}'
    )
    assert (same.kind, same.tool, same.prompt, same.model) == ("video", "create_video", "a cat", "sora-2")
    character = Submission.of(CharacterRequest(timestamps="1,3", from_task="task_1"))
    assert (character.kind, character.tool, character.prompt) == ("character", "create_character", None)
    assert character.arguments == '{"from_task":"task_1","model":"sora-2","timestamps":"1,3"}'


async def test_claim_writes_a_submitting_row_and_finds_the_same_request_inside_the_window(
    journal: Journal, clock: ManualClock
) -> None:
    """The second identical claim returns the first row; after the window, or with window 0, a new row."""
    first = await journal.claim(video(), gateway=GATEWAY, window=600)
    assert (first.duplicate, first.entry.state, first.entry.outcome_unknown) == (False, "submitting", True)
    assert first.entry.submitted_at == clock.now
    clock.advance(599)
    again = await journal.claim(video(), gateway=GATEWAY, window=600)
    assert (again.duplicate, again.entry.row_id) == (True, first.entry.row_id)
    assert (await journal.claim(video("a dog"), gateway=GATEWAY, window=600)).duplicate is False
    assert (await journal.claim(video(), gateway="sandbox", window=600)).duplicate is False
    assert (await journal.claim(video(), gateway=GATEWAY, window=0)).duplicate is False
    clock.advance(2)
    later = await journal.claim(video(), gateway=GATEWAY, window=600)
    assert later.duplicate is True  # the window=0 row of a moment ago
    clock.advance(601)
    assert (await journal.claim(video(), gateway=GATEWAY, window=600)).duplicate is False


async def test_a_failed_task_does_not_block_trying_again(journal: Journal) -> None:
    """An earlier identical request whose task failed is not a duplicate: a retry after failure is deliberate."""
    first = await journal.claim(video(), gateway=GATEWAY, window=600)
    await journal.record_created(first.entry.row_id, created("task_1"))
    await journal.observe(created("task_1", status="failed"), gateway=GATEWAY, **LINK)
    assert (await journal.claim(video(), gateway=GATEWAY, window=600)).duplicate is False


async def test_created_unknown_and_discarded_submissions_end_in_their_states(journal: Journal) -> None:
    """record_created stores the id and state; record_unknown keeps the reason; discard removes the row."""
    kept = await journal.claim(video("one"), gateway=GATEWAY, window=600)
    lost = await journal.claim(video("two"), gateway=GATEWAY, window=600)
    refused = await journal.claim(video("three"), gateway=GATEWAY, window=600)
    entry = await journal.record_created(kept.entry.row_id, created("task_1", created_at=1))
    assert (entry.state, entry.task_id, entry.outcome_unknown) == ("created", "task_1", False)
    assert entry.task() == created("task_1", created_at=1).model_copy(
        update={"prompt": "one", "submitted_at": int(entry.submitted_at or 0)}
    )
    await journal.record_unknown(lost.entry.row_id, "HTTP 500: boom")
    await journal.discard(refused.entry.row_id)
    rows = await journal.recent(gateway=GATEWAY, limit=10)
    assert [(row.prompt, row.state, row.unknown_reason) for row in rows] == [
        ("two", "unknown", "HTTP 500: boom"),
        ("one", "created", None),
    ]
    assert rows[0].task().model_dump(exclude_none=True, exclude={"characters"}) == {
        "kind": "video",
        "status": "unknown",
        "progress": 0,
        "model": "sora-2",
        "hint": "",
        "prompt": "two",
        "submitted_at": int(rows[0].submitted_at or 0),
        "outcome_unknown": True,
    }


async def test_observe_updates_known_tasks_and_records_unknown_ones(journal: Journal, clock: ManualClock) -> None:
    """A known id gets its new state; an unknown id gets an observed row; get finds either."""
    claim = await journal.claim(video(), gateway=GATEWAY, window=600)
    await journal.record_created(claim.entry.row_id, created("task_1"))
    clock.advance(30)
    done = created("task_1", status="completed").model_copy(
        update={"progress": 100, "video_url": "https://files.test/1.mp4", "expires_at": 99, "hint": "ready"}
    )
    updated = await journal.observe(done, gateway=GATEWAY, **LINK)
    assert (updated.linked, updated.entry.row_id, updated.entry.updated_at) == (False, claim.entry.row_id, clock.now)
    assert updated.entry.snapshot == done.model_copy(update={"hint": ""})
    other = await journal.observe(created("task_2").model_copy(update={"kind": "character"}), gateway=GATEWAY, **LINK)
    assert (other.linked, other.entry.state, other.entry.kind) == (False, "observed", "character")
    assert (await journal.get("task_2")) == other.entry
    assert await journal.get("task_3") is None
    row = await anyio.to_thread.run_sync(
        journal.store.run,
        lambda connection: connection.execute("SELECT * FROM tasks WHERE task_id = 'task_1'").fetchone(),
    )
    assert (row["status"], row["progress"], row["video_url"]) == ("completed", 100, "https://files.test/1.mp4")


async def test_observe_links_a_task_to_the_single_matching_unknown_submission(
    journal: Journal, clock: ManualClock
) -> None:
    """A new task created close after a lost submission of the same model becomes that submission's result."""
    lost = await journal.claim(video(), gateway=GATEWAY, window=600)
    await journal.record_unknown(lost.entry.row_id, "HTTP 502")
    sent = int(clock.now)
    far = await journal.observe(created("task_far", created_at=sent + 1000), gateway=GATEWAY, **LINK)
    other_model = await journal.observe(
        created("task_pro", created_at=sent + 2, model="sora-2-pro"), gateway=GATEWAY, **LINK
    )
    assert (far.linked, other_model.linked) == (False, False)
    match = await journal.observe(created("task_lost", created_at=sent + 2), gateway=GATEWAY, **LINK)
    assert (match.linked, match.entry.row_id, match.entry.state) == (True, lost.entry.row_id, "created")
    assert match.entry.outcome_unknown is False
    assert (await journal.claim(video(), gateway=GATEWAY, window=600)).entry.task_id == "task_lost"


async def test_observe_links_nothing_when_two_lost_submissions_could_match(
    journal: Journal, clock: ManualClock
) -> None:
    """With two candidate submissions the task cannot be told apart: it is recorded on its own."""
    for prompt in ("one", "two"):
        claim = await journal.claim(video(prompt), gateway=GATEWAY, window=600)
        await journal.record_unknown(claim.entry.row_id, "timeout")
    observed = await journal.observe(created("task_x", created_at=int(clock.now)), gateway=GATEWAY, **LINK)
    assert (observed.linked, observed.entry.state) == (False, "observed")


async def test_a_create_still_in_flight_is_never_linked_to_a_task_read_meanwhile(
    journal: Journal, clock: ManualClock
) -> None:
    """Issue 16's wrong link: while this process's create is in flight, a get_task of a task made elsewhere at
    the same time used to record that task as our request's result, and a repeat of our request then returned
    the foreign task as "reused". A live sender's submission is no link candidate: its own answer names its task."""
    sending = await journal.claim(video(), gateway=GATEWAY, window=600)  # this process: alive, in flight
    foreign = await journal.observe(created("task_foreign", created_at=int(clock.now)), gateway=GATEWAY, **LINK)
    assert (foreign.linked, foreign.entry.state) == (False, "observed")
    assert foreign.entry.row_id != sending.entry.row_id
    repeat = await journal.find_duplicate(video(), gateway=GATEWAY, window=600)
    assert repeat is not None and (repeat.row_id, repeat.task_id) == (sending.entry.row_id, None)
    await journal.discard(sending.entry.row_id)  # the gateway refused ours: nothing of ours exists
    assert await journal.find_duplicate(video(), gateway=GATEWAY, window=600) is None
    assert (await journal.get("task_foreign")).state == "observed"  # type: ignore[union-attr]


async def test_a_submission_of_a_gone_or_late_sender_is_a_link_candidate(journal: Journal, clock: ManualClock) -> None:
    """``submitting`` rows whose sender died have an outcome that nobody will learn: they are linked like ``unknown``
    ones. Another machine's row is trusted to be in flight until its time is up; a live process of this machine's,
    however old (its record may be retried for minutes)."""
    mine = await journal.claim(video("mine"), gateway=GATEWAY, window=600)
    dead = await journal.claim(video("dead"), gateway=GATEWAY, window=600)
    async with await anyio.open_process(["true"]) as ended:
        await ended.wait()  # reaped: its pid names no process now
    elsewhere = await journal.claim(video("elsewhere"), gateway=GATEWAY, window=600)
    await anyio.to_thread.run_sync(
        journal.store.run,
        lambda connection: (
            connection.execute("UPDATE tasks SET owner_pid = ? WHERE id = ?", (ended.pid, dead.entry.row_id)),
            connection.execute(
                "UPDATE tasks SET owner_host = 'another-machine' WHERE id = ?", (elsewhere.entry.row_id,)
            ),
        ),
    )
    first = await journal.observe(created("task_a", created_at=int(clock.now)), gateway=GATEWAY, **LINK)
    assert (first.linked, first.entry.row_id) == (True, dead.entry.row_id)
    second = await journal.observe(created("task_b", created_at=int(clock.now)), gateway=GATEWAY, **LINK)
    assert (second.linked, second.entry.state) == (False, "observed")
    clock.advance(LINK["in_flight"] + 1)  # the other machine's create cannot still be waiting for its answer
    third = await journal.observe(created("task_c", created_at=int(clock.now) - 10), gateway=GATEWAY, **LINK)
    assert (third.linked, third.entry.row_id) == (True, elsewhere.entry.row_id)  # not ours, still sending
    assert (await journal.find_duplicate(video("mine"), gateway=GATEWAY, window=9999)).row_id == mine.entry.row_id  # type: ignore[union-attr]


async def test_a_task_linked_to_a_submission_whose_record_was_late_gets_a_row_of_its_own(
    journal: Journal, clock: ManualClock
) -> None:
    """Another machine took our submission for abandoned and linked task Z to it; then our create's answer, task
    Y, is recorded at last: the row is Y's, and Z keeps its state in an ``observed`` row (nothing is lost)."""
    ours = await journal.claim(video("late record"), gateway=GATEWAY, window=600)
    await anyio.to_thread.run_sync(
        journal.store.run,
        lambda connection: connection.execute(
            "UPDATE tasks SET owner_host = 'another-machine' WHERE id = ?", (ours.entry.row_id,)
        ),
    )
    clock.advance(LINK["in_flight"] + 1)
    guess = await journal.observe(
        created("task_z", created_at=int(clock.now) - 10, status="in_progress"), gateway=GATEWAY, **LINK
    )
    assert (guess.linked, guess.entry.row_id) == (True, ours.entry.row_id)
    recorded = await journal.record_created(ours.entry.row_id, created("task_y"))
    assert (recorded.row_id, recorded.task_id, recorded.state) == (ours.entry.row_id, "task_y", "created")
    other = await journal.get("task_z")
    assert other is not None and (other.state, other.snapshot.status) == ("observed", "in_progress")  # type: ignore[union-attr]


async def test_a_wrong_link_is_undone_when_the_true_owner_records_its_task(
    journal: Journal, clock: ManualClock
) -> None:
    """A lost submission (``unknown``) and another process's create in flight: a task read meanwhile is linked to
    the lost one (the only candidate). If the create's answer then names that very task, the guess was wrong:
    the task becomes the create's, and the lost submission's outcome is unknown again."""
    lost = await journal.claim(video("lost"), gateway=GATEWAY, window=600)
    await journal.record_unknown(lost.entry.row_id, "HTTP 502")
    sending = await journal.claim(video("sending"), gateway=GATEWAY, window=600)
    guess = await journal.observe(created("task_x", created_at=int(clock.now)), gateway=GATEWAY, **LINK)
    assert (guess.linked, guess.entry.row_id) == (True, lost.entry.row_id)
    owner = await journal.record_created(sending.entry.row_id, created("task_x"))
    assert (owner.row_id, owner.state, owner.task_id) == (sending.entry.row_id, "created", "task_x")
    undone = await journal.find_duplicate(video("lost"), gateway=GATEWAY, window=600)
    assert undone is not None
    assert (undone.row_id, undone.state, undone.task_id, undone.snapshot) == (lost.entry.row_id, "unknown", None, None)
    assert undone.unknown_reason == "HTTP 502"


async def test_prune_deletes_old_finished_tasks_in_batches_and_keeps_the_unresolved(
    journal: Journal, clock: ManualClock
) -> None:
    """Finished tasks recorded before the cut-off go, a batch at a time; unknown outcomes, unfinished tasks, newer
    rows and other gateways' rows stay."""
    old_done = []
    for index in range(5):
        claim = await journal.claim(video(f"old {index}"), gateway=GATEWAY, window=600)
        status = "failed" if index == 0 else "completed"
        old_done.append(await journal.record_created(claim.entry.row_id, created(f"old_{index}", status=status)))
    await journal.observe(created("old_seen", status="completed"), gateway=GATEWAY, **LINK)
    unfinished = await journal.claim(video("old unfinished"), gateway=GATEWAY, window=600)
    await journal.record_created(unfinished.entry.row_id, created("old_running", status="in_progress"))
    lost = await journal.claim(video("old lost"), gateway=GATEWAY, window=600)
    await journal.record_unknown(lost.entry.row_id, "timeout")
    other = await journal.claim(video("other gateway"), gateway="sandbox", window=600)
    await journal.record_created(other.entry.row_id, created("other_done", status="completed"))
    cutoff = clock.now + 1
    clock.advance(10)
    fresh = await journal.claim(video("fresh"), gateway=GATEWAY, window=600)
    await journal.record_created(fresh.entry.row_id, created("fresh_done", status="completed"))

    assert await journal.prune(gateway=GATEWAY, before=cutoff, batch=4) == 4
    assert await journal.prune(gateway=GATEWAY, before=cutoff, batch=4) == 2
    assert await journal.prune(gateway=GATEWAY, before=cutoff, batch=4) == 0
    left = {entry.task_id for entry in await journal.recent(gateway=GATEWAY, limit=50)}
    assert left == {"old_running", None, "fresh_done"}
    assert [entry.task_id for entry in await journal.recent(gateway="sandbox", limit=5)] == ["other_done"]
    assert (await journal.size()).rows == 4


async def test_recent_filters_by_gateway_kind_and_status_newest_first(journal: Journal, clock: ManualClock) -> None:
    """recent() returns one gateway's rows, newest first, limited, optionally by kind and last known status."""
    for index in range(3):
        claim = await journal.claim(video(f"video {index}"), gateway=GATEWAY, window=600)
        await journal.record_created(claim.entry.row_id, created(f"task_{index}"))
        clock.advance(1)
    character = await journal.claim(
        Submission.of(CharacterRequest(timestamps="1,3", from_task="task_0")), gateway=GATEWAY, window=600
    )
    await journal.claim(video("sandboxed"), gateway="sandbox", window=600)
    rows = await journal.recent(gateway=GATEWAY, limit=10)
    assert [row.prompt for row in rows] == [None, "video 2", "video 1", "video 0"]
    assert [row.prompt for row in await journal.recent(gateway=GATEWAY, limit=2)] == [None, "video 2"]
    assert [row.row_id for row in await journal.recent(gateway=GATEWAY, limit=9, kind="character")] == [
        character.entry.row_id
    ]
    assert len(await journal.recent(gateway=GATEWAY, limit=9, status="queued")) == 3
    assert [row.prompt for row in await journal.recent(gateway="sandbox", limit=9)] == ["sandboxed"]


async def test_concurrent_identical_claims_from_two_journals_create_one_row(
    new_journal: Callable[..., Journal],
) -> None:
    """Two connections to one journal racing with the same request: exactly one new row, the rest see it."""
    journals = [new_journal(), new_journal()]
    outcomes: list[bool] = []

    async def claim(journal: Journal) -> None:
        outcomes.append((await journal.claim(video(), gateway=GATEWAY, window=600)).duplicate)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for index in range(20):
                group.start_soon(claim, journals[index % 2])
    assert sorted(outcomes) == [False] + [True] * 19
    assert len(await journals[0].recent(gateway=GATEWAY, limit=100)) == 1


async def test_reads_follow_the_writer_to_a_journal_file_started_anew(state_dir: Path) -> None:
    """The file moved aside (as an error message advises) and the writing connection reopened: reads see the new
    file, not the old one through a connection left open."""
    path = journal_path(state_dir)
    journal = Journal(path)
    try:
        old = await journal.claim(video("in the old file"), gateway=GATEWAY, window=600)
        assert await journal.find_duplicate(video("in the old file"), gateway=GATEWAY, window=600) is not None

        def fail(connection: Any) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        with pytest.raises(JournalError):
            await anyio.to_thread.run_sync(journal.store.run, fail)  # the writer drops its connection
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                await anyio.Path(f"{path}{suffix}").rename(f"{path}{suffix}.aside")
        new = await journal.claim(video("in the new file"), gateway=GATEWAY, window=600)
        assert await journal.find_duplicate(video("in the old file"), gateway=GATEWAY, window=600) is None
        found = await journal.find_duplicate(video("in the new file"), gateway=GATEWAY, window=600)
        assert found is not None and found.row_id == new.entry.row_id and old.entry.row_id == 1
    finally:
        await journal.close()
