"""``build_server(settings)``: the MCP server of sora-mcp, with its lifespan, state and registrations.

Nothing happens at import time or in ``build_server``: no environment reads, no sockets, no files. The lifespan
opens the task journal and the gateway client (and, in sandbox mode, the simulated gateway) and hands every tool
an :class:`~sora_mcp.server.state.AppState`. Tools live in ``tools.py``, resources in ``resources.py``, prompts in
``prompts.py``; this module only wires them.
"""

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx2
from mcp.server import MCPServer
from mcp.server.request_state import RequestStateSecurity

from sora_mcp import __version__
from sora_mcp.client import SoraClient
from sora_mcp.config import Settings
from sora_mcp.errors import JournalError
from sora_mcp.journal import Journal, journal_for
from sora_mcp.server.guidance import INSTRUCTIONS
from sora_mcp.server.player import player_extension, register_player
from sora_mcp.server.prompts import register_prompts
from sora_mcp.server.resources import RecentTasks, register_resources
from sora_mcp.server.state import AppState
from sora_mcp.server.tools import TOOLS
from sora_mcp.tasks import TaskBook, TaskService, gateway_scope
from sora_mcp.upkeep import JournalUpkeep

logger = logging.getLogger(__name__)

SERVER_NAME = "sora-mcp"

GatewayClient = SoraClient | Callable[[], SoraClient]
"""A process-wide client handed in, or a function returning the one the host application opened."""


def build_server(
    settings: Settings,
    *,
    http_client: httpx2.AsyncClient | None = None,
    client: GatewayClient | None = None,
    journal: Journal | None = None,
    clock: Callable[[], float] = time.time,
) -> MCPServer[AppState]:
    """Create the MCP server.

    By default its lifespan opens one ``SoraClient`` (and, with ``settings.sandbox``, the simulated gateway)
    and closes it on shutdown. ``client`` hands in a process-wide client instead, which is then left open: a
    ``SoraClient``, or a function returning the one that the host application opened (the HTTP app does this,
    as the SSE transport enters this lifespan once per connection). ``http_client`` is passed to a client
    created here (tests use ``httpx2.ASGITransport``). The task journal (``SORA_STATE_DIR``, or ``journal``) is
    opened at start-up; if it cannot be, a warning goes to the log and the tools that need it say why, while
    ``get_task`` keeps working.
    """
    journal = journal or journal_for(settings, clock=clock)
    # One scope for the server's life: SSE enters the lifespan once per connection.
    book = TaskBook(journal, settings, scope=gateway_scope(settings), clock=clock)
    lifespan = Lifespan(settings, book, client=client, http_client=http_client, clock=clock)
    server = MCPServer(
        SERVER_NAME,
        title="Sora video generation",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/sora-mcp/sora-mcp",
        lifespan=lifespan,
        tools=TOOLS.build(),
        request_state_security=request_state_security(settings),
        extensions=[player_extension(settings)],
    )
    register_resources(server, RecentTasks(book, settings, clock))
    register_player(server)
    register_prompts(server)
    return server


@dataclass(frozen=True)
class Lifespan:
    """The server's lifespan: journal open, gateway client open (unless handed in), state for every call."""

    settings: Settings
    book: TaskBook
    client: GatewayClient | None
    http_client: httpx2.AsyncClient | None
    clock: Callable[[], float]

    @asynccontextmanager
    async def __call__(self, _: MCPServer[AppState]) -> AsyncIterator[AppState]:
        try:
            await self.book.journal.open()
        except JournalError as exc:
            logger.warning("%s Until then tasks are not recorded, and list_tasks cannot answer.", exc)
        try:
            async with AsyncExitStack() as stack:
                if self.client is None:
                    sora = await stack.enter_async_context(
                        open_client(self.settings, http_client=self.http_client, clock=self.clock)
                    )
                else:
                    sora = self.client() if callable(self.client) else self.client
                upkeep = await stack.enter_async_context(
                    JournalUpkeep.running(self.book, retention_days=self.settings.journal_retention_days)
                )
                tasks = TaskService(sora, self.book, self.settings, upkeep=upkeep)
                yield AppState(settings=self.settings, tasks=tasks, clock=self.clock)
        finally:
            with anyio.CancelScope(shield=True):
                await self.book.journal.close()


def request_state_security(settings: Settings) -> RequestStateSecurity | None:
    """Sealing with ``SORA_MCP_STATE_KEY`` when set, so that replicas resume each other's questions; else
    the SDK's key per process."""
    if settings.mcp_state_key is None:
        return None
    return RequestStateSecurity(keys=[settings.mcp_state_key.get_secret_value()])


@asynccontextmanager
async def open_client(
    settings: Settings, *, http_client: httpx2.AsyncClient | None = None, clock: Callable[[], float] = time.time
) -> AsyncIterator[SoraClient]:
    """Open the gateway client ``settings`` describe, in front of the simulated gateway when ``settings.sandbox``.

    The MCP lifespan uses it, and so does the HTTP app, which opens one client for the whole process.
    """
    async with AsyncExitStack() as stack:
        base_url = None
        if settings.sandbox:
            # Only sandbox runs pay for the simulator's imports.
            from sora_mcp.sandbox import SandboxGateway, serve_sandbox
            from sora_mcp.sandbox_store import open_sandbox_store

            gateway = SandboxGateway(
                video_seconds=settings.sandbox_seconds,
                character_seconds=settings.sandbox_seconds / 2,
                store=stack.enter_context(open_sandbox_store(settings.state_dir)),
            )
            base_url = await stack.enter_async_context(serve_sandbox(gateway))
            logger.info("Sandbox gateway at %s: simulated tasks, nothing is billed", base_url)
        yield await stack.enter_async_context(
            SoraClient(settings, http_client=http_client, base_url=base_url, sandbox=settings.sandbox, clock=clock)
        )
