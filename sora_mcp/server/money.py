"""The user's yes before money goes, and the spending ledger, for the paid tools.

With ``SORA_CONFIRM_ABOVE_USD`` set, a paid call estimated at or above it (or whose price is unknown) is not sent
until the user approves it:

- a client that declared elicitation is asked through the SDK's resolver (``Resolve(approve_...)``): a
  server-to-client ``elicitation/create`` on 2025-11-25 sessions, an input-required round trip on 2026-07-28. The
  form has one boolean; true sends the request, anything else is :class:`~sora_mcp.errors.SpendDeclinedError`;
- any other client gets a quote instead (``confirmation_required``, nothing sent); the agent asks the user and
  calls again with ``confirm_quote``, which the create's write-ahead transaction uses up (see ``journal.py``).

A call a budget would refuse is refused before anyone is asked. The resolvers run before the tool body, on every
round; they validate the arguments themselves and ask nothing about a request the body will refuse.
"""

from typing import Annotated, Any, NamedTuple

from mcp.server.mcpserver import AcceptedElicitation, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from sora_mcp.config import Settings
from sora_mcp.create_requests import CharacterRequest, CreateRequest, RemixRequest, VideoRequest
from sora_mcp.errors import ApprovalUnavailableError, SoraError, SpendDeclinedError
from sora_mcp.models import ModelSpending, Spending, Task
from sora_mcp.server.errors import RequestT, validated
from sora_mcp.server.guidance import approval_question, quote_hint
from sora_mcp.server.local_images import LocalImages
from sora_mcp.server.results import task_result
from sora_mcp.server.state import AppState, ToolContext, app_state
from sora_mcp.spending import ESTIMATE_NOTE, Estimate
from sora_mcp.tasks import Spending as SpendingFacts

PROMPT_WORDS = 12
"""Words of the prompt the approval question quotes."""


class UserApproval(BaseModel):
    """The elicitation form: one boolean, which every client that elicits can render."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start-up reads the shipped schemas

    approve: bool = Field(description="Spend the estimated amount on this call?")


class NotAsked(NamedTuple):
    """The resolver asked nothing: ``needed`` is False when no approval is needed (or the body will refuse the
    call anyway), True when it is needed but the client cannot be asked (the body then quotes)."""

    needed: bool


Approval = ElicitationResult[UserApproval]
"""What the tool body receives: accepted with a :class:`UserApproval` (asked) or a :class:`NotAsked`, declined,
or cancelled."""


def needs_approval(state: AppState, cost: Estimate) -> bool:
    """Whether ``cost`` calls for the user's yes under ``SORA_CONFIRM_ABOVE_USD`` (an unknown price does)."""
    threshold = state.settings.confirm_above_usd
    return threshold is not None and (cost.usd is None or cost.usd >= threshold)


def can_ask(ctx: ToolContext) -> bool:
    """Whether the client can show an elicitation form (the SDK's rule: form declared, or neither mode)."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


async def ask_approval(
    ctx: ToolContext,
    request_type: type[RequestT],
    arguments: dict[str, Any],
    confirm_quote: str | None,
    allow_duplicate: bool,
) -> NotAsked | Elicit[UserApproval]:
    """The shared resolver body: ask the user when the call needs it and the client can be asked."""
    state = app_state(ctx)
    if state.settings.confirm_above_usd is None or confirm_quote is not None:
        return NotAsked(needed=False)
    try:
        request = validated(request_type, state.settings, **arguments)
    except ToolError:
        return NotAsked(needed=False)  # the body reports the arguments
    cost = state.tasks.estimate(request)
    if not needs_approval(state, cost):
        return NotAsked(needed=False)
    try:
        if await state.tasks.would_reuse(request, allow_duplicate=allow_duplicate):
            return NotAsked(needed=False)  # an earlier identical task comes back: no new spend to approve
        spent = await state.tasks.spending()
        await state.tasks.check_budgets(cost, spent)
    except SoraError:
        return NotAsked(needed=False)  # over a budget, or no journal: the body refuses with the reason
    if not can_ask(ctx):
        return NotAsked(needed=True)
    sandbox = state.settings.sandbox
    question = approval_question(request.tool, summary(request, cost), cost, spent.today_usd, sandbox=sandbox)
    return Elicit(question, UserApproval)


async def approve_video(
    ctx: ToolContext,
    prompt: str,
    model: str,
    duration: int | None,
    size: str | None,
    local_images: LocalImages,
    style: str | None,
    watermark: bool | None,
    private: bool | None,
    storyboard: bool | None,
    thumbnail: bool | None,
    confirm_quote: str | None,
    allow_duplicate: bool,
) -> NotAsked | Elicit[UserApproval]:
    if local_images.problems:
        return NotAsked(needed=False)  # the body names the local images it cannot read
    arguments = {"prompt": prompt, "model": model, "duration": duration, "size": size, "images": local_images.images}
    arguments |= {"style": style, "watermark": watermark, "private": private, "storyboard": storyboard}
    arguments["thumbnail"] = thumbnail
    return await ask_approval(ctx, VideoRequest, arguments, confirm_quote, allow_duplicate)


async def approve_character(
    ctx: ToolContext,
    timestamps: str,
    url: str | None,
    from_task: str | None,
    model: str,
    confirm_quote: str | None,
    allow_duplicate: bool,
) -> NotAsked | Elicit[UserApproval]:
    arguments = {"timestamps": timestamps, "url": url, "from_task": from_task, "model": model}
    return await ask_approval(ctx, CharacterRequest, arguments, confirm_quote, allow_duplicate)


async def approve_remix(
    ctx: ToolContext,
    task_id: str,
    prompt: str,
    model: str,
    size: str | None,
    duration: int | None,
    confirm_quote: str | None,
    allow_duplicate: bool,
) -> NotAsked | Elicit[UserApproval]:
    arguments = {"source_task_id": task_id, "prompt": prompt, "model": model, "size": size, "duration": duration}
    return await ask_approval(ctx, RemixRequest, arguments, confirm_quote, allow_duplicate)


VideoApproval = Annotated[Approval, Resolve(approve_video)]
CharacterApproval = Annotated[Approval, Resolve(approve_character)]
RemixApproval = Annotated[Approval, Resolve(approve_remix)]


async def spend_gate(
    ctx: ToolContext,
    request: CreateRequest,
    approval: Approval | None,
    confirm_quote: str | None,
    allow_duplicate: bool,
) -> CallToolResult | None:
    """None when the create may go ahead; else the quote result to return (nothing sent). Raises
    ``SpendDeclinedError`` when the user said no, ``BudgetExceededError`` before quoting what a budget refuses."""
    state = app_state(ctx)
    if confirm_quote is not None:
        return None  # the write-ahead uses it up, or refuses it
    cost = state.tasks.estimate(request)
    if not needs_approval(state, cost) or await state.tasks.would_reuse(request, allow_duplicate=allow_duplicate):
        return None
    if isinstance(approval, AcceptedElicitation) and isinstance(approval.data, UserApproval):
        if approval.data.approve:
            return None
        raise SpendDeclinedError(request.tool, cost.describe())
    if approval is not None and not isinstance(approval, AcceptedElicitation):
        raise SpendDeclinedError(request.tool, cost.describe())  # declined or cancelled
    await state.tasks.check_budgets(cost)
    if can_ask(ctx):  # the resolver did not ask (its check failed just before): never quote to a client that can ask
        raise ApprovalUnavailableError(request.tool)
    quote, cost = await state.tasks.quote(request)
    result = Task(
        kind=request.kind,
        status="awaiting_confirmation",
        model=request.model,
        cost_estimate_usd=cost.usd,
        confirmation_required=True,
        quote_id=quote.quote_id,
        quote_expires_at=int(quote.expires_at),
        hint=quote_hint(request.tool, quote, cost, sandbox=state.settings.sandbox),
        sandbox=True if state.settings.sandbox else None,
    )
    return task_result(result)


def summary(request: CreateRequest, cost: Estimate) -> str:
    """The call in a few words, for the approval question: what, which model, how long, the prompt's start."""
    length = (
        ""
        if cost.seconds is None
        else f", {cost.seconds} s" + (" (none given: the shortest)" if cost.duration_assumed else "")
    )
    if isinstance(request, CharacterRequest):
        source = request.url or f"task {request.from_task}"
        return f"a character from {source} ({request.timestamps} s), {request.model}"
    words = request.prompt.split()
    prompt = " ".join(words[:PROMPT_WORDS]) + (" ..." if len(words) > PROMPT_WORDS else "")
    what = f"a remix of {request.source_task_id}" if isinstance(request, RemixRequest) else "a video"
    return f'{what}, {request.model}{length}, prompt "{prompt}"'


def spending_report(settings: Settings, facts: SpendingFacts) -> Spending:
    """The ledger as ``get_spending`` and ``spending://summary`` show it."""
    daily, monthly = settings.budget_daily_usd, settings.budget_monthly_usd
    unpriced = sum(item.unpriced for item in facts.by_model)
    note = ESTIMATE_NOTE + (
        f" {unpriced} task(s) this month have no price, so the sums leave them out." if unpriced else ""
    )
    return Spending(
        today_usd=facts.today_usd,
        month_usd=facts.month_usd,
        budget_daily_usd=daily,
        budget_monthly_usd=monthly,
        remaining_today_usd=None if daily is None else round(max(0.0, daily - facts.today_usd), 4),
        remaining_month_usd=None if monthly is None else round(max(0.0, monthly - facts.month_usd), 4),
        by_model=[ModelSpending(model=item.model, tasks=item.tasks, usd=item.usd) for item in facts.by_model],
        prices=dict(settings.prices),
        confirm_above_usd=settings.confirm_above_usd,
        estimate_note=note,
    )
