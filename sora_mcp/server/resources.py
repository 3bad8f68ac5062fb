"""Resources: ``task://{task_id}`` (one task, as ``get_task`` returns it), ``tasks://recent`` (the journal's
latest tasks, as ``list_tasks`` returns them) and ``spending://summary`` (the ledger, as ``get_spending`` returns
it). The template reads the lifespan state, like the tools; the static ones hold what they read."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from sora_mcp.config import Settings, redact
from sora_mcp.errors import JournalError, NotFoundError, SoraError
from sora_mcp.models import check_task_id
from sora_mcp.server.errors import describe_error
from sora_mcp.server.guidance import render
from sora_mcp.server.money import spending_report
from sora_mcp.server.results import task_data, to_json
from sora_mcp.server.state import app_state
from sora_mcp.tasks import TaskBook

RECENT_LIMIT = 20


async def task_resource(task_id: str, ctx: Context[Any, Any]) -> str:
    """A task read from the gateway; its last known state from the journal when the gateway cannot be read."""
    try:
        checked = check_task_id(task_id)
    except ValueError as exc:
        raise ResourceNotFoundError(f"task_id: {exc}") from None
    state = app_state(ctx)
    try:
        found = await state.tasks.task_state(checked)
    except SoraError as exc:
        message = redact(describe_error(exc, task_id=checked), state.secret)
        raise (ResourceNotFoundError if isinstance(exc, NotFoundError) else ResourceError)(message) from exc
    return to_json(task_data(state.render(found)))


@dataclass(frozen=True)
class RecentTasks:
    """``tasks://recent``: a static resource, which the SDK calls without a context, so it holds what it reads."""

    book: TaskBook
    settings: Settings
    clock: Callable[[], float]

    async def read(self) -> str:
        """The latest tasks of the journal, newest first, with their last known state."""
        try:
            entries = await self.book.recent(limit=RECENT_LIMIT)
        except JournalError as exc:
            raise ResourceError(str(exc)) from exc
        now, sandbox = self.clock(), self.settings.sandbox
        tasks = [task_data(render(self.book.outcome(entry), now=now, sandbox=sandbox)) for entry in entries]
        return to_json({"tasks": tasks})


class SpendingSummary(NamedTuple):
    """``spending://summary``: static, so it holds the journal and the settings it reads."""

    book: TaskBook
    settings: Settings

    async def read(self) -> str:
        """The estimated spend of today and this month, by model, against the budgets."""
        try:
            facts = await self.book.spending()
        except JournalError as exc:
            raise ResourceError(str(exc)) from exc
        return to_json(spending_report(self.settings, facts).model_dump(mode="json", exclude_none=True))


def register_resources(server: MCPServer[Any], recent: RecentTasks) -> None:
    server.resource(
        "task://{task_id}",
        name="task",
        title="Task",
        description="A video or character task as JSON (the Task that get_task returns), read from the gateway; "
        "its last known state from the journal when the gateway cannot be read.",
        mime_type="application/json",
    )(task_resource)
    server.resource(
        "tasks://recent",
        name="recent_tasks",
        title="Recent tasks",
        description=f"The {RECENT_LIMIT} latest tasks of the task journal, newest first, with their last known "
        "state (the list_tasks result as JSON).",
        mime_type="application/json",
    )(recent.read)
    server.resource(
        "spending://summary",
        name="spending",
        title="Spending",
        description="Estimated spend of today and this month (local calendar), by model, against the budgets, "
        "with the price table (the get_spending result as JSON). Estimates, not the gateway's bill.",
        mime_type="application/json",
    )(SpendingSummary(recent.book, recent.settings).read)
