"""What every tool call reaches through the lifespan: settings, the task service, the clock. Nothing else does.

Tools and resources read ``app_state(ctx)``; nothing reaches a tool through a closure, so each tool is a plain
module-level function (``server/tools.py``) that can be opened, imported and tested on its own.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context

from sora_mcp.config import Settings
from sora_mcp.models import Task
from sora_mcp.server.guidance import render
from sora_mcp.tasks import TaskOutcome, TaskService


@dataclass(frozen=True)
class AppState:
    """The lifespan state of one server: its settings, its task service (gateway client plus journal), its clock."""

    settings: Settings
    tasks: TaskService
    clock: Callable[[], float]

    @property
    def secret(self) -> str | None:
        """The API key to mask in any text shown (``Settings.maskable_key``)."""
        return self.settings.maskable_key

    def render(self, outcome: TaskOutcome) -> Task:
        """The task of ``outcome`` with its hint and poll advice, as the calling model reads it."""
        return render(outcome, now=self.clock(), sandbox=self.settings.sandbox)


ToolContext = Context[AppState, Any]


def app_state(ctx: Context[Any, Any]) -> AppState:
    """The state of the server handling this request."""
    state: AppState = ctx.request_context.lifespan_context
    return state
