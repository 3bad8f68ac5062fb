"""What the calling model reads: hints and poll advice rendered from a service's facts (``server/guidance.py``).

The end-to-end tests (``test_server.py``, ``test_tasks.py``) check the hints through the MCP client; these check
the rendering rules on their own, from ``TaskOutcome`` facts, with a fixed clock.
"""

import re
from pathlib import Path

from test_models import CHARACTER_COMPLETED, TOAPIS_COMPLETED

from sora_mcp.journal import JournalEntry
from sora_mcp.models import MAX_WAIT_SECONDS, Task, parse_task
from sora_mcp.server.guidance import INSTRUCTIONS, SANDBOX_MARK, ago, render, suggest_next_poll
from sora_mcp.tasks import TaskOutcome

NOW = 1_768_380_300.0
ROOT = Path(__file__).resolve().parents[1]


def rendered(task: Task, *, sandbox: bool = False, **facts: object) -> Task:
    return render(TaskOutcome(task, **facts), now=NOW, sandbox=sandbox)  # type: ignore[arg-type]


def entry(**fields: object) -> JournalEntry:
    values: dict[str, object] = {
        "row_id": 1,
        "gateway": "g",
        "state": "unknown",
        "kind": "video",
        "task_id": None,
        "tool": "create_video",
        "prompt": "a cat",
        "model": "sora-2",
        "arguments": None,
        "submitted_at": NOW - 30,
        "owner_pid": None,
        "recorded_at": NOW - 30,
        "updated_at": NOW - 30,
        "unknown_reason": "the gateway did not answer within 30 s",
        "snapshot": None,
    }
    values.update(fields)
    return JournalEntry(**values)  # type: ignore[arg-type]


def test_next_poll_is_a_bounded_hint_while_running_and_absent_when_finished() -> None:
    """Queued 10 s, running by progress rate within 5-30 s, by ETA when given; None once terminal."""
    queued = parse_task({"id": "t", "status": "queued"}, "video", now=NOW)
    assert suggest_next_poll(queued, NOW) == 10
    halfway = parse_task(
        {"id": "t", "status": "in_progress", "progress": 50, "created_at": int(NOW) - 20}, "video", now=NOW
    )
    assert suggest_next_poll(halfway, NOW) == 20
    nearly = parse_task(
        {"id": "t", "status": "in_progress", "progress": 99, "created_at": int(NOW) - 20}, "video", now=NOW
    )
    assert suggest_next_poll(nearly, NOW) == 5
    slow = parse_task(
        {"id": "t", "status": "in_progress", "progress": 1, "created_at": int(NOW) - 60}, "video", now=NOW
    )
    assert suggest_next_poll(slow, NOW) == 30
    assert suggest_next_poll(parse_task(TOAPIS_COMPLETED, "video", now=NOW), NOW) is None


def test_hints_tell_the_agent_what_to_do_next() -> None:
    """Running: wait with get_task; completed video: give the URL before it expires; character: use the mention."""
    running = rendered(parse_task({"id": "t9", "status": "in_progress", "progress": 40}, "video", now=NOW))
    assert f"get_task with task_id='t9' and wait_seconds={MAX_WAIT_SECONDS}" in running.hint
    assert "do not create it again" in running.hint and running.next_poll_seconds == 15
    done = rendered(parse_task(TOAPIS_COMPLETED, "video", now=NOW))
    assert "video_url" in done.hint and "2026-01-15 08:48 UTC" in done.hint and done.next_poll_seconds is None
    assert f"call download_video with task_id='{done.task_id}' before then" in done.hint
    character = rendered(parse_task(CHARACTER_COMPLETED, "character", now=NOW))
    assert character.hint == "The character is ready: write @duksvfkf.turbo_whis in a create_video prompt to cast it."
    sandboxed = rendered(parse_task({"id": "t", "status": "queued"}, "video", now=NOW), sandbox=True)
    assert sandboxed.sandbox is True and sandboxed.hint.startswith(SANDBOX_MARK + "The video is queued.")
    assert rendered(parse_task({"id": "t", "status": "queued"}, "video", now=NOW)).sandbox is None


def test_facts_become_notes_in_a_fixed_order_with_the_sandbox_mark_first() -> None:
    """Linked, read error and poll error lead, in that order; journal notes and a failed wait follow the step."""
    task = parse_task({"id": "t1", "status": "queued"}, "video", now=NOW)
    hint = rendered(
        task,
        sandbox=True,
        linked_at=NOW - 60,
        read_error="HTTP 503: busy",
        poll_error="HTTP 502: bad gateway",
        unrecorded="disk full",
        wait_error="it broke",
    ).hint
    assert hint == (
        SANDBOX_MARK + "This is the task of the video request sent at 2026-01-14 08:44 UTC whose outcome was unknown; "
        "the journal now records it. Could not read it from the gateway just now (HTTP 503: busy). The last poll "
        "failed (HTTP 502: bad gateway). The video is queued. Call get_task with task_id='t1' and wait_seconds=50 "
        "to wait for it (or poll again in next_poll_seconds); do not create it again. Note: the task journal "
        "could not record this task (disk full), so keep its task_id. Waiting for it failed (it broke); the "
        "task exists: poll it with get_task."
    )
    at_start = rendered(task, unrecorded="read-only home", unrecorded_at_start=True).hint
    assert at_start.endswith(
        "Note: this task is not recorded in the task journal (read-only home), so keep its task_id."
    )


def test_a_lost_submission_and_one_being_sent_get_different_advice() -> None:
    """Lost: the gateway may have billed it, repeat only with allow_duplicate. Being sent: wait for list_tasks."""
    lost = entry()
    lost_hint = rendered(lost.task(), entry=lost).hint
    assert lost_hint.startswith(
        "The outcome of this video request, sent at 2026-01-14 08:44 UTC, is unknown (the gateway"
    )
    assert "call create_video again with allow_duplicate=true" in lost_hint
    sending = entry(state="submitting", unknown_reason=None)
    sending_hint = rendered(sending.task(), entry=sending, sending=True).hint
    assert sending_hint.startswith("This video request is being sent right now")
    assert "allow_duplicate" not in sending_hint


def test_a_reused_request_says_nothing_was_sent_and_how_to_repeat_on_purpose() -> None:
    """Reuse of a task with an id names the earlier request's age; reuse of a lost one adds the advice only once."""
    task = parse_task({"id": "t1", "status": "in_progress", "progress": 10}, "video", now=NOW)
    hint = rendered(task, reused_at=NOW - 125, tool="remix_video").hint
    assert hint.startswith(
        "Nothing was sent and nothing billed again: an identical remix_video request was made 2 min ago, and this "
        "is its task. The video is rendering (10%)."
    )
    assert hint.endswith("call remix_video with allow_duplicate=true (it costs money again).")
    lost = entry()
    lost_hint = rendered(lost.task(), entry=lost, reused_at=NOW - 5, tool="create_video").hint
    assert lost_hint.startswith("Nothing was sent: an identical create_video request was made 5 s ago. The outcome")
    assert lost_hint.count("allow_duplicate=true") == 1
    sending = entry(state="submitting")
    sending_hint = rendered(sending.task(), entry=sending, sending=True, reused_at=NOW, tool="create_video").hint
    assert sending_hint.count("allow_duplicate=true") == 1


def test_a_last_known_state_says_when_it_was_seen_and_an_expired_url_says_so() -> None:
    running = parse_task({"id": "t1", "status": "in_progress", "progress": 10}, "video", now=NOW)
    row = entry(state="created", task_id="t1", snapshot=running, updated_at=NOW - 3600)
    assert rendered(running, entry=row).hint.startswith("Last known state, from 2026-01-14 07:45 UTC. The video is")
    done = parse_task(TOAPIS_COMPLETED, "video", now=NOW).model_copy(update={"expires_at": int(NOW) - 1})
    expired = rendered(done, entry=entry(state="created", task_id=done.task_id, snapshot=done)).hint
    assert expired.startswith("The video was ready, but its URL expired at ")


def test_ago_reads_as_seconds_then_minutes() -> None:
    assert [ago(0), ago(89), ago(90), ago(-5)] == ["0 s ago", "89 s ago", "2 min ago", "0 s ago"]


def test_every_suggested_wait_is_the_longest_wait_a_tool_allows() -> None:
    """The number in "wait_seconds=N" advice, wherever the model reads it, is MAX_WAIT_SECONDS (one value)."""
    texts = [INSTRUCTIONS]
    texts += [path.read_text() for path in (ROOT / "sora_mcp").rglob("*.py")]
    numbers = {int(n) for text in texts for n in re.findall(r"wait_seconds=(\d+)", text)}
    assert numbers == {MAX_WAIT_SECONDS}
