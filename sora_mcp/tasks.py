"""Tasks with a memory: the gateway client wrapped in the task journal. Knows nothing about MCP.

``TaskService`` is what the tools call:

* ``create``: duplicate check and write-ahead in the journal, then the POST, then the task id into the journal
  (or "outcome unknown", or nothing when the gateway surely refused);
* ``get_task``: the journal picks the endpoint, the client reads (and waits), the journal keeps the state;
* ``list_tasks``: the journal's rows, optionally re-read from the gateway.

Every answer is a :class:`TaskOutcome`: the task plus the facts around it (reused, linked to a lost submission,
read from the journal because the gateway failed, not recorded...). The service writes no sentences; the MCP
face turns outcomes into hints (``server/guidance.py``).

The money rule when the journal fails: if the write-ahead cannot be recorded although the journal worked earlier
in this process, nothing is sent (a transient fault; trying again is safe and free). If the journal has not
worked since start-up (a read-only home, say; the log said so at start), creates go ahead and their outcome
says they are not recorded: refusing every create would make the server useless until someone fixes the file.
"""

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import anyio

from sora_mcp.client import MAX_RETRY_AFTER_SECONDS, BoundedDict, ProgressCallback, SoraClient
from sora_mcp.config import Settings
from sora_mcp.create_requests import CreateRequest
from sora_mcp.errors import (
    BudgetExceededError,
    CreateOutcomeUnknownError,
    JournalError,
    QuoteRefusedError,
    SoraError,
)
from sora_mcp.journal import (
    Budget,
    BudgetExceeded,
    Journal,
    JournalEntry,
    ModelSpend,
    Quote,
    QuoteRefused,
    SpendGuard,
    Submission,
    task_snapshot,
)
from sora_mcp.models import Task, TaskKind, TaskStatus
from sora_mcp.spending import Estimate, day_and_month, estimate, over_budget

if TYPE_CHECKING:
    from sora_mcp.upkeep import JournalUpkeep

logger = logging.getLogger(__name__)

REFRESH_CONCURRENCY = 4
"""Gateway reads at once during ``list_tasks(refresh=True)``."""
REFRESH_DEADLINE_SECONDS = 20.0
"""Longest a ``list_tasks(refresh=True)`` spends reading the gateway (well inside clients' tool timeouts); tasks
not read by then are listed with their last known state and say so."""
RECORDED_LIMIT = 4096
"""Tasks whose last recorded state this process keeps in memory."""
QUOTE_SECONDS = 600.0
"""How long a quote can be confirmed (``confirm_quote``)."""
CLOCK_SKEW_SECONDS = 60.0
"""Allowed difference between our clock and the gateway's when matching a task to a lost submission."""


SANDBOX_SCOPE = "sandbox"


def gateway_scope(settings: Settings) -> str:
    """The gateway a journal row belongs to: rows of other gateways are neither listed nor reused.

    The sandbox's tasks outlive its process (the simulated gateway stores them in the state directory), so all
    sandbox servers share one scope, as they share one store.
    """
    return SANDBOX_SCOPE if settings.sandbox else settings.base_url


def in_flight_seconds(settings: Settings) -> float:
    """Longest time a create request can take, retries included; a ``submitting`` row older than this was
    abandoned (its process stopped before the answer)."""
    return (settings.timeout + MAX_RETRY_AFTER_SECONDS) * (settings.max_retries + 1)


def spend_budgets(settings: Settings) -> tuple[Budget, ...]:
    """The budgets ``settings`` set, each with the variable that sets it."""
    budgets = []
    if settings.budget_daily_usd is not None:
        budgets.append(Budget("SORA_BUDGET_DAILY_USD", settings.budget_daily_usd, "day"))
    if settings.budget_monthly_usd is not None:
        budgets.append(Budget("SORA_BUDGET_MONTHLY_USD", settings.budget_monthly_usd, "month"))
    return tuple(budgets)


class Spending(NamedTuple):
    """Estimated spend in the current local day and month (``TaskService.spending``)."""

    today_usd: float
    month_usd: float
    by_model: list[ModelSpend]
    """This month's, by model."""
    day_resets_at: float
    month_resets_at: float


class TaskOutcome(NamedTuple):
    """A task as a service call found it, with the facts the MCP face explains. No prose here.

    ``task`` holds what the gateway (or the journal) knows; its ``hint`` is empty until the face renders it.
    """

    task: Task
    entry: JournalEntry | None = None
    """The journal row, when ``task`` is its last known state rather than a fresh gateway read."""
    sending: bool = False
    """For a row whose outcome is unknown: a live process is sending its create right now."""
    read_error: str | None = None
    """Why the gateway could not be read, when the last known state stands in for a fresh read."""
    poll_error: str | None = None
    """A poll that failed during a wait, which ended the wait early with the last known state."""
    wait_error: str | None = None
    """A wait after a create that failed (the create itself succeeded)."""
    linked_at: float | None = None
    """When the lost submission this task turned out to answer was sent (the journal just linked them)."""
    reused_at: float | None = None
    """When the earlier identical request that a create returned instead was sent."""
    tool: str | None = None
    """The create tool of the request (for advice on deliberate repeats)."""
    unrecorded: str | None = None
    """Why the journal could not record this created task (the create went ahead)."""
    recording_later: bool = False
    """``unrecorded`` for now: the record is retried in the background (``upkeep.py``)."""
    unrecorded_at_start: bool = False
    """``unrecorded`` because the journal has not worked since start-up (so the write-ahead was skipped)."""
    estimate: Estimate | None = None
    """What the create that made (or reused) this task is estimated to cost."""

    @property
    def reused(self) -> bool:
        return self.reused_at is not None

    @property
    def linked(self) -> bool:
        return self.linked_at is not None

    @property
    def outcome_unknown(self) -> bool:
        return self.entry is not None and self.entry.outcome_unknown


class TaskBook:
    """The journal of one gateway scope, read as outcomes. Never calls the gateway (the ``tasks://recent``
    resource reads it without a client)."""

    def __init__(
        self, journal: Journal, settings: Settings, *, scope: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.journal = journal
        self.scope = scope
        """The gateway scope of this server's rows (:func:`gateway_scope`; fixed for the server's life)."""
        self.in_flight_seconds = in_flight_seconds(settings)
        self.clock = clock
        """The clock of row times and calendar windows (tests pass a manual one)."""
        self.pruning = False
        """Whether a pruning pass of this journal scope runs in this process now (``upkeep.py``)."""
        self.pruned_at: float | None = None
        """When the last pruning pass ended (``anyio.current_time()``), if one did."""

    async def recent(
        self, *, limit: int = 20, kind: TaskKind | None = None, status: TaskStatus | None = None
    ) -> list[JournalEntry]:
        """The latest rows of this scope, newest first."""
        return await self.journal.recent(gateway=self.scope, limit=limit, kind=kind, status=status)

    async def spending(self) -> "Spending":
        """The estimated spend of today and of this month (local calendar), with the month's by model."""
        day, month = day_and_month(self.clock())
        today = await self.journal.spending(gateway=self.scope, since=day.start, until=day.end)
        this_month = await self.journal.spending(gateway=self.scope, since=month.start, until=month.end)
        return Spending(
            today_usd=round(sum(item.usd for item in today), 4),
            month_usd=round(sum(item.usd for item in this_month), 4),
            by_model=this_month,
            day_resets_at=day.end,
            month_resets_at=month.end,
        )

    def outcome(self, entry: JournalEntry, *, read_error: str | None = None) -> TaskOutcome:
        """A journal row as an outcome: its last known state, and whether its create is being sent right now."""
        in_flight = self.clock() - (entry.submitted_at or 0) < self.in_flight_seconds
        sending = entry.state == "submitting" and in_flight and entry.sender_alive
        return TaskOutcome(entry.task(), entry=entry, sending=sending, read_error=read_error)


class TaskService:
    """The tools' way to the gateway: ``SoraClient`` calls recorded in the task journal of one gateway scope."""

    def __init__(
        self, client: SoraClient, book: TaskBook, settings: Settings, *, upkeep: "JournalUpkeep | None" = None
    ) -> None:
        self.client = client
        self._upkeep = upkeep
        """Where a created task the journal could not take at once goes to be recorded later (None: nowhere)."""
        self.book = book
        self.journal = book.journal
        self.scope = book.scope
        self._window = settings.duplicate_window
        self._link_window = book.in_flight_seconds + CLOCK_SKEW_SECONDS
        self._prices = settings.prices
        self._budgets = spend_budgets(settings)
        self._costs: BoundedDict[str, float] = BoundedDict(RECORDED_LIMIT)
        """task_id -> the estimate recorded when it was created: fresh reads of the task carry it too."""
        self._recorded: BoundedDict[str, str] = BoundedDict(RECORDED_LIMIT)
        """task_id -> the snapshot this process last recorded: a poll that saw nothing new costs no journal write
        (a thread hop and a write transaction, most of a poll's time). The client remembers each task's kind."""

    # ------------------------------------------------------------------------------------------- create

    def estimate(self, request: CreateRequest) -> Estimate:
        """What ``request`` is estimated to cost under the configured prices."""
        return estimate(request, self._prices)

    async def create(
        self, request: CreateRequest, *, allow_duplicate: bool = False, quote_id: str | None = None
    ) -> TaskOutcome:
        """Create a task unless the same request was made within the duplicate window (then return that one).

        The write-ahead row records the estimate, uses up ``quote_id`` (a confirmed quote) and is refused when a
        budget would be exceeded (``BudgetExceededError``, ``QuoteRefusedError``; nothing sent). Raises the
        client's errors; ``CreateOutcomeUnknownError.journaled`` tells whether the journal holds the submission.
        Raises ``JournalError`` without sending anything when the write-ahead fails (see module doc).
        """
        payload = request.to_payload()  # built once: the journal records exactly what the client sends
        submission = Submission.of(request, payload)
        cost = self.estimate(request)
        guard = SpendGuard(cost.usd, self._budgets, quote_id)
        unrecorded: str | None = None
        row_id: int | None = None
        try:
            claim = await self.journal.claim(
                submission, gateway=self.scope, window=0.0 if allow_duplicate else self._window, spend=guard
            )
        except BudgetExceeded as exc:
            limit = exc.budget
            raise BudgetExceededError(
                limit.variable, limit.limit_usd, exc.spent_usd, exc.estimate_usd, exc.resets_at
            ) from None
        except QuoteRefused as exc:
            raise QuoteRefusedError(exc.quote_id, exc.reason) from None
        except JournalError as exc:
            if self.journal.ever_opened or self._budgets or quote_id is not None:
                raise JournalError(
                    f"Nothing was sent to the gateway, so nothing was billed: sora-mcp does not spend money on a "
                    f"task it cannot record. {exc} Then call {submission.tool} again.",
                    path=exc.path,
                ) from exc
            logger.warning("Creating a %s task without recording it: %s", submission.kind, exc)
            unrecorded = str(exc)
        else:
            if claim.duplicate:
                return await self._reuse(claim.entry, submission)
            row_id = claim.entry.row_id

        task = (await self._send(request, payload, row_id)).model_copy(update={"cost_estimate_usd": cost.usd})
        if task.task_id and cost.usd is not None:
            self._costs.remember(task.task_id, cost.usd)
        if unrecorded is not None:
            return TaskOutcome(task, unrecorded=unrecorded, unrecorded_at_start=True, estimate=cost)
        assert row_id is not None
        try:
            await self.journal.record_created(row_id, task)
        except JournalError as exc:
            if self._upkeep is None:
                logger.error("Task %s was created but the journal could not record it: %s", task.task_id, exc)
                return TaskOutcome(task, unrecorded=str(exc), estimate=cost)
            logger.warning("Task %s was created; recording it failed and is retried: %s", task.task_id, exc)
            self._upkeep.record_later(row_id, task)
            return TaskOutcome(task, unrecorded=str(exc), recording_later=True, estimate=cost)
        return TaskOutcome(task, estimate=cost)

    async def would_reuse(self, request: CreateRequest, *, allow_duplicate: bool) -> bool:
        """Whether :meth:`create` would return an earlier identical task (no new spend) rather than send."""
        if allow_duplicate or self._window <= 0:
            return False
        earlier = await self.journal.find_duplicate(Submission.of(request), gateway=self.scope, window=self._window)
        return earlier is not None

    async def quote(self, request: CreateRequest) -> tuple[Quote, Estimate]:
        """A quote for ``request`` that the user can confirm (``create(..., quote_id=...)``) within
        :data:`QUOTE_SECONDS`; nothing is sent. Raises ``JournalError`` (quotes live in the journal)."""
        cost = self.estimate(request)
        quote = await self.journal.quote(
            Submission.of(request), gateway=self.scope, estimate_usd=cost.usd, ttl=QUOTE_SECONDS
        )
        return quote, cost

    async def spending(self) -> "Spending":
        """The estimated spend of today and this month (``TaskBook.spending``)."""
        return await self.book.spending()

    async def check_budgets(self, cost: Estimate, spent: "Spending | None" = None) -> None:
        """Raise ``BudgetExceededError`` when ``cost`` would not fit a budget now (read-only; the create's
        write-ahead checks again, atomically). Used to refuse before asking the user to approve. ``spent`` is a
        spending just read, when the caller has one."""
        if not self._budgets:
            return
        spent = spent or await self.book.spending()
        for budget in self._budgets:
            so_far, resets = (
                (spent.today_usd, spent.day_resets_at)
                if budget.window == "day"
                else (spent.month_usd, spent.month_resets_at)
            )
            if over_budget(so_far, cost.usd or 0.0, budget.limit_usd):
                raise BudgetExceededError(budget.variable, budget.limit_usd, so_far, cost.usd or 0.0, resets)

    async def _send(self, request: CreateRequest, payload: dict[str, object], row_id: int | None) -> Task:
        """The create POST, with the journal row ``row_id`` marked by how it ended."""
        try:
            return await self.client.create(request, payload)
        except CreateOutcomeUnknownError as exc:
            if row_id is not None:
                await self._record_unknown(row_id, str(exc.cause))
                exc.journaled = True
            raise
        except SoraError:
            if row_id is not None:
                await self._discard(row_id)
            raise
        except BaseException:  # cancelled (or a bug) while the request may have been on its way
            if row_id is not None:
                with anyio.CancelScope(shield=True):
                    await self._record_unknown(row_id, "the create call was cancelled before the gateway answered")
            raise

    async def _reuse(self, entry: JournalEntry, submission: Submission) -> TaskOutcome:
        """The answer to a duplicate request: the earlier task (freshly read when possible), marked ``reused``."""
        found = self.book.outcome(entry) if entry.task_id is None else await self._refreshed(entry)
        submitted_at = None if entry.submitted_at is None else int(entry.submitted_at)
        update = {"reused": True, "submitted_at": submitted_at, "prompt": None, "cost_estimate_usd": None}
        task = found.task.model_copy(update=update)
        return found._replace(task=task, reused_at=entry.submitted_at or entry.recorded_at, tool=submission.tool)

    async def _refreshed(self, entry: JournalEntry) -> TaskOutcome:
        """The task of ``entry`` read from the gateway now, or its last known state if that read fails."""
        assert entry.task_id is not None
        try:
            task = await self.client.get_task(entry.task_id, kind=entry.kind)
        except SoraError as exc:
            logger.warning("Reading task %s failed; using its last known state: %s", entry.task_id, exc)
            return self.book.outcome(entry, read_error=str(exc))
        return await self._observe(task)

    async def _record_unknown(self, row_id: int, reason: str) -> None:
        try:
            await self.journal.record_unknown(row_id, reason)
        except JournalError as exc:  # the row stays 'submitting', which list_tasks shows as unknown too
            logger.error("Could not mark journal row %d as outcome unknown: %s", row_id, exc)

    async def _discard(self, row_id: int) -> None:
        try:
            await self.journal.discard(row_id)
        except JournalError as exc:
            logger.error("Could not remove journal row %d of a refused create: %s", row_id, exc)

    # ------------------------------------------------------------------------------------------- reads

    async def get_task(
        self, task_id: str, *, wait_seconds: float = 0, on_progress: ProgressCallback | None = None
    ) -> TaskOutcome:
        """Read (and optionally wait for) a task; the journal picks the endpoint and keeps the state seen."""
        kind = await self._known_kind(task_id)
        waited = await self.client.wait_for_task(task_id, wait_seconds=wait_seconds, on_progress=on_progress, kind=kind)
        outcome = await self._observe(waited.task)
        return outcome._replace(poll_error=waited.poll_error)

    async def task_state(self, task_id: str) -> TaskOutcome:
        """The task read from the gateway, or, when that fails and the journal knows it, its last known state."""
        try:
            return await self.get_task(task_id)
        except SoraError as exc:
            try:
                entry = await self.journal.get(task_id)
            except JournalError:
                entry = None
            if entry is None:
                raise
            return self.book.outcome(entry, read_error=str(exc))

    async def list_tasks(
        self,
        *,
        limit: int = 20,
        kind: TaskKind | None = None,
        status: TaskStatus | None = None,
        refresh: bool = False,
        refresh_deadline: float = REFRESH_DEADLINE_SECONDS,
    ) -> list[TaskOutcome]:
        """Recent tasks, newest first; with ``refresh``, unfinished ones are read from the gateway first, for at
        most ``refresh_deadline`` seconds in all (a hanging gateway cannot hold the call for minutes)."""
        entries = await self.book.recent(limit=limit, kind=kind, status=status)
        if not refresh:
            return [self.book.outcome(entry) for entry in entries]
        results: list[TaskOutcome | None] = [None] * len(entries)
        limiter = anyio.CapacityLimiter(REFRESH_CONCURRENCY)

        async def refresh_one(index: int, entry: JournalEntry) -> None:
            async with limiter:
                found = await self._refreshed(entry)
            submitted_at = None if entry.submitted_at is None else int(entry.submitted_at)
            task = found.task.model_copy(update={"prompt": entry.prompt, "submitted_at": submitted_at})
            results[index] = found._replace(task=task)

        with anyio.move_on_after(refresh_deadline):
            async with anyio.create_task_group() as group:
                for index, entry in enumerate(entries):
                    if entry.task_id is not None and not (entry.snapshot and entry.snapshot.is_terminal):
                        group.start_soon(refresh_one, index, entry)
                    else:
                        results[index] = self.book.outcome(entry)
        late = f"not read from the gateway within the {refresh_deadline:g} s a refresh may take"
        return [
            result if result is not None else self.book.outcome(entry, read_error=late)
            for result, entry in zip(results, entries, strict=True)
        ]

    async def _known_kind(self, task_id: str) -> TaskKind | None:
        if (known := self.client.known_kind(task_id)) is not None:
            return known
        try:
            entry = await self.journal.get(task_id)
        except JournalError as exc:
            logger.debug("Journal lookup of %s failed: %s", task_id, exc)
            return None
        return None if entry is None else entry.kind

    async def _observe(self, task: Task) -> TaskOutcome:
        """Record a task just read; if it turns out to be the result of a lost submission, say so. The task carries
        the estimate its create recorded (this process's, or the journal's)."""
        task_id = task.task_id
        if not task_id:
            return TaskOutcome(task)
        if (cost := self._costs.get(task_id)) is not None:
            task = task.model_copy(update={"cost_estimate_usd": cost})
        snapshot = task_snapshot(task)
        if self._recorded.get(task_id) == snapshot:
            return TaskOutcome(task)  # this process recorded (or is recording) exactly this state
        # Claimed before the write, so concurrent polls seeing the same state do not queue the same write.
        self._recorded.remember(task_id, snapshot)
        try:
            observation = await self.journal.observe(
                task, gateway=self.scope, link_window=self._link_window, in_flight=self.book.in_flight_seconds
            )
        except JournalError as exc:
            logger.warning("Could not record the state of task %s: %s", task.task_id, exc)
            self._recorded.pop(task_id, None)
            return TaskOutcome(task)
        except BaseException:  # cancelled mid-write: the next poll records it
            self._recorded.pop(task_id, None)
            raise
        recorded_cost = observation.entry.cost_estimate_usd
        if recorded_cost is not None and task.cost_estimate_usd is None:
            self._costs.remember(task_id, recorded_cost)
            task = task.model_copy(update={"cost_estimate_usd": recorded_cost})
        if not observation.linked:
            return TaskOutcome(task)
        return TaskOutcome(task, linked_at=observation.entry.submitted_at or observation.entry.recorded_at)
