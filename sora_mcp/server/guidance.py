"""Every sentence the calling model reads besides tool and field descriptions: the server instructions, each
result's ``hint`` and ``next_poll_seconds``, and the notes on reused, linked, lost and sandbox tasks.

The services return facts (:class:`~sora_mcp.tasks.TaskOutcome`, :class:`~sora_mcp.download.SavedVideo`);
:func:`render` and :func:`download_hint` turn them into advice. Nothing here calls anything, and nothing
elsewhere decides on what a sentence says. Error advice lives in ``server/errors.py``.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sora_mcp.journal import JournalEntry, Quote
from sora_mcp.models import MAX_WAIT_SECONDS, Task
from sora_mcp.spending import Estimate, usd
from sora_mcp.tasks import TaskOutcome

if TYPE_CHECKING:  # the download and inspection code is imported on first use (start-up does not need it)
    from sora_mcp.download import SavedVideo
    from sora_mcp.inspect_video import Finding, Inspection

QUEUED_POLL_SECONDS = 10
RUNNING_POLL_SECONDS = 15
MIN_POLL_SECONDS = 5
MAX_POLL_SECONDS = 30
SANDBOX_MARK = "[Sandbox: simulated task, nothing was billed] "
SANDBOX_MEDIA_NOTE = (
    " The sandbox serves this sample file from this server process: its URL works while the server runs; after a "
    "restart, get_task gives a new one."
)

INSTRUCTIONS = """\
Make videos with the Sora-2 models. Creating costs the user real money and takes minutes, so:
1. Call create_video (text or image to video) or create_character (a reusable @character cut from 1-3 s of a
   video) only when the user asks for it. Each returns a task_id at once.
2. Call get_task(task_id, wait_seconds={wait}) until status is "completed" or "failed"; each call waits on the
   server and reports progress. Follow the result's "hint".
3. Give the user video_url (it expires, about 24 h) or the character's "@username" mention, which casts the
   character when written into a create_video prompt. If the user wants to keep a video, call
   download_video(task_id) before it expires: it saves the file on this computer and returns its path.
4. remix_video(task_id, prompt) makes a new (paid) video from a completed one, when the user asks for changes.
Never create a task again because a call timed out or a task is slow: poll the task_id you have. Lost a task_id
(new chat, timeout, restart)? list_tasks shows every task this server created, newest first. An identical create
within minutes returns the earlier task ("reused": true) instead of paying twice. Paid results carry
cost_estimate_usd: tell the user the estimate. get_spending shows today's and this month's spend and the
budgets. A result with confirmation_required needs the user's yes before you call again with its
confirm_quote.""".format(wait=MAX_WAIT_SECONDS)  # noqa: UP032 (f-string lines would exceed 120)


def format_utc(timestamp: float) -> str:
    """``2026-01-15 08:48 UTC``: a time for hints, unambiguous in every time zone."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(seconds: float) -> str:
    """``42 s ago`` or ``3 min ago``."""
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s ago"
    return f"{round(seconds / 60)} min ago"


def suggest_next_poll(task: Task, now: float) -> int | None:
    """Seconds an agent polling without ``wait_seconds`` should pause; None once the task is finished."""
    if task.is_terminal:
        return None
    remaining: float | None = task.eta_seconds
    if remaining is None and task.progress > 0 and task.created_at is not None:
        elapsed = now - task.created_at
        if elapsed > 0:
            remaining = elapsed * (100 - task.progress) / task.progress
    if remaining is None:
        return QUEUED_POLL_SECONDS if task.status == "queued" else RUNNING_POLL_SECONDS
    return int(max(MIN_POLL_SECONDS, min(MAX_POLL_SECONDS, remaining)))


def next_step(task: Task) -> str:
    """What to do next with a task as the gateway reports it."""
    if task.status == "completed" and task.kind == "video":
        keep = f" The URL expires at {format_utc(task.expires_at)}" if task.expires_at else " Result URLs expire (24 h)"
        return (
            "The video is ready: give the user video_url." + keep + ", so if the user wants to keep the file, "
            f"call download_video with task_id='{task.task_id}' before then."
        )
    if task.status == "completed":
        mentions = " ".join(c.mention for c in task.characters if c.mention)
        if mentions:
            return f"The character is ready: write {mentions} in a create_video prompt to cast it."
        return "The character task completed but the gateway returned no username; check the task on the gateway."
    if task.status == "failed":
        reason = task.error.message if task.error else "no reason given"
        return (
            f"The task failed ({reason}). Nothing more will happen to it. A new attempt is a new paid task: "
            "ask the user before creating one, adjusting the prompt or inputs if the reason points at them."
        )
    waiting = (
        f"Call get_task with task_id='{task.task_id}' and wait_seconds={MAX_WAIT_SECONDS} to wait for it "
        "(or poll again in next_poll_seconds); do not create it again."
    )
    if task.status == "unknown":
        return f"The gateway reports an unrecognized status '{task.upstream_status}'. " + waiting
    noun = "video" if task.kind == "video" else "character"
    state = "is queued" if task.status == "queued" else f"is rendering ({task.progress}%)"
    return f"The {noun} {state}. " + waiting


def unknown_outcome(entry: JournalEntry, *, sending: bool) -> str:
    """A submission without a task id: being sent right now, or lost (the gateway may have billed it)."""
    noun = entry.kind
    sent = format_utc(entry.submitted_at or entry.recorded_at)
    if sending:
        return (
            f"This {noun} request is being sent right now (by this or another sora-mcp process, since {sent}). "
            "Call list_tasks again in a few seconds to get its task_id; do not create it again."
        )
    reason = entry.unknown_reason or "the process that sent it stopped before the gateway answered"
    return (
        f"The outcome of this {noun} request, sent at {sent}, is unknown ({reason}): the gateway may have "
        "created, and billed, a task whose id never arrived. The gateway cannot list tasks, so sora-mcp cannot "
        "check: tell the user, who can look for the task in the gateway's dashboard; if they find its id, call "
        f"get_task with it and the journal links it to this request. Only if the user wants a new task anyway, "
        f"call {_tool_of(entry)} again with allow_duplicate=true (it costs money again)."
    )


def last_known(entry: JournalEntry, task: Task, now: float) -> str:
    """Advice on a task's last known state from the journal (not read from the gateway just now)."""
    if task.status == "completed" and task.video_url and task.expires_at and task.expires_at < now:
        return (
            f"The video was ready, but its URL expired at {format_utc(task.expires_at)}: it cannot be "
            "downloaded any more."
        )
    if not task.is_terminal:
        return f"Last known state, from {format_utc(entry.updated_at)}. " + next_step(task)
    return next_step(task)


def render(outcome: TaskOutcome, *, now: float, sandbox: bool) -> Task:
    """The task of ``outcome`` with its ``hint``, ``next_poll_seconds`` and sandbox marker filled in."""
    task, entry = outcome.task, outcome.entry
    if entry is not None and entry.outcome_unknown:
        step = unknown_outcome(entry, sending=outcome.sending)
    elif entry is not None:
        step = last_known(entry, task, now)
    else:
        step = next_step(task)
    notes: list[str] = []
    if outcome.linked_at is not None:
        notes.append(
            f"This is the task of the {task.kind} request sent at {format_utc(outcome.linked_at)} whose outcome "
            "was unknown; the journal now records it."
        )
    if outcome.read_error:
        notes.append(f"Could not read it from the gateway just now ({outcome.read_error}).")
    if outcome.poll_error:
        notes.append(f"The last poll failed ({outcome.poll_error}).")
    hint = " ".join([*notes, step])
    if outcome.estimate is not None and not outcome.reused:
        hint += " " + estimate_sentence(outcome.estimate)
    if outcome.reused_at is not None:
        hint = _reused(outcome, hint, now)
    if outcome.unrecorded and outcome.unrecorded_at_start:
        hint += f" Note: this task is not recorded in the task journal ({outcome.unrecorded}), so keep its task_id."
    elif outcome.unrecorded and outcome.recording_later:
        hint += (
            f" Note: the task journal could not record this task yet ({outcome.unrecorded}); sora-mcp keeps "
            "trying in the background, but keep its task_id."
        )
    elif outcome.unrecorded:
        hint += f" Note: the task journal could not record this task ({outcome.unrecorded}), so keep its task_id."
    if outcome.wait_error:
        hint += f" Waiting for it failed ({outcome.wait_error}); the task exists: poll it with get_task."
    if sandbox:
        hint = SANDBOX_MARK + hint
        if task.video_url or any(c.profile_picture_url for c in task.characters):
            hint += SANDBOX_MEDIA_NOTE
    return task.model_copy(
        update={"hint": hint, "next_poll_seconds": suggest_next_poll(task, now), "sandbox": True if sandbox else None}
    )


def estimate_sentence(cost: Estimate) -> str:
    """What a paid call is estimated to cost, said as an estimate."""
    if cost.usd is None:
        return f"Estimated cost: {cost.describe()}; budgets cannot see this task's cost (set a price in SORA_PRICES)."
    return f"Estimated cost: {cost.describe()}, from the configured prices (SORA_PRICES), not the gateway's bill."


def quote_hint(tool: str, quote: Quote, cost: Estimate, *, sandbox: bool) -> str:
    """The hint of a quote: nothing was sent; ask the user; how to confirm."""
    return (SANDBOX_MARK if sandbox else "") + (
        f"Nothing was created or billed yet: this {tool} call needs the user's approval first "
        f"(SORA_CONFIRM_ABOVE_USD). Estimated cost: {cost.describe()}, from the configured prices, not the "
        "gateway's bill. Ask the user whether to spend it. If they agree, call "
        f"{tool} again with the same arguments plus confirm_quote='{quote.quote_id}' (good for one create, until "
        f"{format_utc(quote.expires_at)}); if not, do not create it."
    )


def approval_question(tool: str, summary: str, cost: Estimate, spent_today: float, *, sandbox: bool) -> str:
    """The question an elicitation asks the user before a paid call."""
    return (SANDBOX_MARK if sandbox else "") + (
        f"{tool}: {summary}. Estimated cost {cost.describe()}, from the configured prices (not the gateway's "
        f"bill). Spent today so far: {usd(spent_today)} (estimates). Spend it?"
    )


def _reused(outcome: TaskOutcome, hint: str, now: float) -> str:
    """The hint of an earlier identical request returned instead of a new, paid one."""
    assert outcome.reused_at is not None
    tool = outcome.tool or "create"
    when = ago(now - outcome.reused_at)
    again = (
        f"Only if the user wants another one on purpose, call {tool} with allow_duplicate=true (it costs money again)."
    )
    if outcome.outcome_unknown:
        # A lost submission's hint already says how to repeat it deliberately; one being sent says to wait.
        extra = f" {again}" if outcome.sending else ""
        return f"Nothing was sent: an identical {tool} request was made {when}. {hint}{extra}"
    return (
        f"Nothing was sent and nothing billed again: an identical {tool} request was made {when}, "
        f"and this is its task. {hint} {again}"
    )


def _tool_of(entry: JournalEntry) -> str:
    return entry.tool or f"create_{entry.kind}"


def human_size(size: int) -> str:
    """``5.0 MB``, ``41 KB`` or ``512 bytes``."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"


def download_hint(saved: "SavedVideo") -> str:
    """What to tell the user after ``download_video``: where the file is, and what was not saved."""
    video, thumbnail = saved.video, saved.thumbnail
    size = human_size(video.size)
    if video.reused:
        hint = f"The video was already saved at {video.path} ({size}); nothing was downloaded again."
    else:
        hint = f"Saved the video to {video.path} ({size})."
    if thumbnail is not None:
        hint += f" Thumbnail: {thumbnail.path}."
    elif saved.wanted_thumbnail and not saved.has_thumbnail:
        hint += " The gateway gave no thumbnail for this video."
    hint += " Tell the user where the file is."
    if saved.thumbnail_problem:
        hint += f" The thumbnail was not saved: {saved.thumbnail_problem}"
    return hint


SANDBOX_INSPECT_NOTE = (
    " The sandbox serves the same 3-second 320x180 test pattern for every task, so a duration or aspect ratio "
    "mismatch is expected here."
)


def finding_note(finding: "Finding", samples_per_second: float) -> str:
    """What one ``inspect_video`` finding means."""
    every = f"sampled {samples_per_second:g} times per second"
    if finding.kind == "black":
        return (
            f"Black or near-black frames from {finding.start:g} s to {finding.end:g} s ({every}). A moment at the "
            "very start or end can be a fade; elsewhere, or for long, the video is probably broken there."
        )
    if finding.kind == "frozen":
        return (
            f"No visible motion from {finding.start:g} s to {finding.end:g} s ({every}): a frozen picture, or a "
            "deliberately still shot; check the contact sheet and the prompt."
        )
    if finding.kind == "duration_mismatch":
        return f"The video lasts {finding.actual}; the request asked for {finding.expected}."
    return f"The video is {finding.actual}; the request asked for {finding.expected}."


def inspection_hint(inspection: "Inspection", *, sandbox: bool) -> str:
    """What to do after ``inspect_video``: judge the contact sheet, and tell the user about any finding."""
    report = inspection.report
    sheet = ", ".join(f"{at:g}" for at in report.sheet.times)
    hint = (
        f"The image is a contact sheet of {len(report.sheet.times)} frames at {sheet} s (labelled on each frame): "
        "check that it shows what the user asked for before reporting the video as done."
    )
    sampled = f"{len(report.samples)} frames sampled {report.samples_per_second:g} times per second"
    if inspection.requested is None:
        hint += " The request is not in this server's task journal, so its duration and aspect ratio were not compared."
    if not inspection.findings:
        what = (
            "black frames, frozen stretches or differences from the request"
            if inspection.requested
            else ("black frames or frozen stretches")
        )
        hint += f" No {what} were found in {sampled}."
    else:
        kinds = sorted({finding.kind.replace("_", " ") for finding in inspection.findings})
        hint += (
            f" Findings: {', '.join(kinds)} (see findings[].note). Tell the user what was found; making the video "
            "again is a new, paid create_video: only if the user wants it."
        )
    if sandbox:
        hint = SANDBOX_MARK + hint + SANDBOX_INSPECT_NOTE
    return hint
