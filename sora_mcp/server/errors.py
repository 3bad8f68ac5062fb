"""The one boundary between errors and tool errors: every ``SoraError`` a tool meets becomes one ``ToolError``
whose text says what happened, what it means for the user's money, and what to do next (never the API key).

Argument problems found by our request models come out here too, in one style that names each argument.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from sora_mcp.config import Settings, redact
from sora_mcp.create_requests import (
    DURATIONS,
    REMIX_DURATIONS,
    CharacterRequest,
    RemixRequest,
    VideoRequest,
    describe_validation_error,
    duration_problem,
)
from sora_mcp.errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    ApprovalUnavailableError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ContentPolicyError,
    CreateOutcomeUnknownError,
    DownloadError,
    InvalidArgumentError,
    JournalError,
    MissingAPIKeyError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    QuoteRefusedError,
    RateLimitError,
    ServerError,
    SoraError,
    SpendDeclinedError,
    SpendRefusedError,
    TaskNotReadyError,
)
from sora_mcp.spending import usd

RequestT = TypeVar("RequestT", VideoRequest, CharacterRequest, RemixRequest)


NOTHING_SENT = "Invalid arguments, nothing was sent to the gateway: "
"""How every argument error starts, whichever layer found it (the SDK's argument model or our request models)."""


def validated(request_type: type[RequestT], settings: Settings, /, **arguments: Any) -> RequestT:
    """Build a request model, turning its validation errors into one tool error that names each argument."""
    try:
        return request_type.model_validate(arguments, context={"max_image_bytes": settings.max_image_bytes})
    except ValidationError as exc:
        raise ToolError(NOTHING_SENT + describe_validation_error(exc)) from None


def unknown_arguments(tool: str, unknown: Iterable[str], allowed: Iterable[str]) -> str:
    """The error for arguments a tool does not take (a typo would otherwise be dropped and the default paid)."""
    names = ", ".join(sorted(unknown))
    return f"{NOTHING_SENT}{tool} has no argument {names}. Its arguments are: {', '.join(allowed)}."


def argument_errors(tool: str, exc: ValidationError, arguments: dict[str, Any]) -> str:
    """The SDK's argument validation errors in sora-mcp's one style: ``field: problem`` per argument, and for a
    duration the values the requested model allows (the schema's enum lists every model's)."""
    lines = []
    for item in exc.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if field == "duration" and item["type"] == "literal_error":
            message = _duration_rule(tool, arguments.get("model", "sora-2"), item.get("input"))
        lines.append(f"{field}: {message}")
    return NOTHING_SENT + "; ".join(lines)


def _duration_rule(tool: str, model: Any, value: Any) -> str:
    remix = tool == "remix_video"
    rules = REMIX_DURATIONS if remix else DURATIONS
    problem = duration_problem(value, model, rules, " for a remix" if remix else "")
    if problem is None:  # the model is wrong too (it has its own line): name every value
        every = sorted({d for durations in rules.values() for d in durations})
        return f"must be one of {', '.join(map(str, every))} seconds (which ones depends on the model), got {value!r}"
    return problem


@contextmanager
def tool_errors(secret: str | None, *, task_id: str | None = None, remix_of: str | None = None) -> Iterator[None]:
    """Turn every ``SoraError`` raised inside into a ``ToolError`` with actionable text (never the API key).

    ``task_id`` is the task a read is about; ``remix_of`` the video a remix starts from (a 404 then means that id).
    """
    try:
        yield
    except SoraError as exc:
        raise ToolError(redact(describe_error(exc, task_id=task_id, remix_of=remix_of), secret)) from exc


NOTHING_BILLED = "Nothing was sent to the gateway, so nothing was created or billed."
QUOTE_PROBLEMS = {
    "unknown": "is not a quote this server issued (for this gateway)",
    "used": "was already used for a create: a quote is good for one",
    "expired": "has expired: quotes last 10 minutes",
    "different_arguments": "was issued for different arguments",
}


def spend_refusal(exc: SpendRefusedError) -> str:
    """The tool error of a paid call stopped by a budget, a quote or the user."""
    if isinstance(exc, BudgetExceededError):
        resets = datetime.fromtimestamp(exc.resets_at).astimezone().strftime("%Y-%m-%d %H:%M %Z")
        return (
            f"Refused: this call is estimated at {usd(exc.estimate_usd)} and {usd(exc.spent_usd)} is already spent "
            f"({'today' if 'DAILY' in exc.variable else 'this month'}, estimates), over the budget "
            f"{exc.variable}={usd(exc.limit_usd)}. {NOTHING_BILLED} The budget resets at {resets}. Tell the user; "
            "do not retry before then unless they raise the budget."
        )
    if isinstance(exc, QuoteRefusedError):
        problem = QUOTE_PROBLEMS.get(exc.reason, exc.reason)
        fix = (
            "Call with exactly the arguments of the quoted call"
            if exc.reason == "different_arguments"
            else "Call the tool again without confirm_quote for a new quote, and ask the user again"
        )
        return f"confirm_quote {exc.quote_id!r} {problem}. {NOTHING_BILLED} {fix}."
    if isinstance(exc, ApprovalUnavailableError):
        return (
            f"The user's approval of this {exc.tool} call could not be asked just now. {NOTHING_BILLED} Call "
            f"{exc.tool} again to ask the user."
        )
    if isinstance(exc, SpendDeclinedError):
        return (
            f"The user declined this {exc.tool} call (estimated {exc.estimate}). {NOTHING_BILLED} Do not call "
            f"{exc.tool} again unless the user asks for it."
        )
    return str(exc)


def describe_error(exc: SoraError, *, task_id: str | None = None, remix_of: str | None = None) -> str:
    """The tool-error text for a client error: what happened, what it means for money, what to do next."""
    if isinstance(exc, CreateOutcomeUnknownError):
        recorded = (
            " The submission is recorded in the task journal: list_tasks shows it (outcome_unknown), and the same "
            "request again within the duplicate window returns it instead of paying twice."
            if exc.journaled
            else ""
        )
        return (
            f"The gateway may have created this {exc.kind} task, and may bill it, but its answer was lost "
            f"({_cause(exc.cause)}). Do not call create again right away: that could pay for a second one. Tell "
            "the user the outcome is unknown; they can check the gateway dashboard for a new task (get_task with "
            f"its id links it to this request), or decide to try again knowingly with allow_duplicate=true.{recorded}"
        )
    if isinstance(exc, SpendRefusedError):
        return spend_refusal(exc)
    if isinstance(exc, MissingAPIKeyError | JournalError | TaskNotReadyError | DownloadError):
        return str(exc)  # written for the calling model already
    if isinstance(exc, InvalidArgumentError):
        return f"Invalid argument {exc}"
    nothing = "" if task_id else " Nothing was created."
    if isinstance(exc, APIStatusError):
        return _status_advice(exc, task_id, remix_of) + nothing
    if isinstance(exc, APITimeoutError):
        return f"{_sentence(_cause(exc))}, also on retry. Try again shortly; raise SORA_TIMEOUT if it persists."
    if isinstance(exc, APIConnectionError):
        return f"{_sentence(_cause(exc))}. Check the network connection and SORA_BASE_URL, then try again."
    if isinstance(exc, APIResponseError):
        return f"{_sentence(_cause(exc))}, also on retry: the gateway may be failing. Try again in a minute."
    return str(exc)


STATUS_ADVICE: tuple[tuple[type[APIStatusError], str], ...] = (
    (AuthenticationError, "The gateway rejected the API key ({detail}). Check SORA_API_KEY in this server's env."),
    (PaymentRequiredError, "The gateway account balance is too low ({detail}). Top up the account, then try again."),
    (PermissionDeniedError, "This API key may not use that model or endpoint ({detail})."),
    (NotFoundError, "The gateway does not serve this endpoint ({detail}). Check SORA_BASE_URL."),
    (ContentPolicyError, "The content policy refused this request ({detail}). Change the prompt or inputs."),
    (BadRequestError, "The gateway rejected the request ({detail}). Fix what it names and try again."),
    (RateLimitError, "The gateway is rate limiting requests ({detail}). Wait {wait}, then try again."),
    (ServerError, "The gateway failed ({detail}), also on retry. Try again in a minute."),
)
"""What each gateway status means and what to do, first match wins; ``{detail}`` is the status and message."""


def _status_advice(exc: APIStatusError, task_id: str | None, remix_of: str | None) -> str:
    detail = _status_detail(exc)
    if isinstance(exc, NotFoundError) and remix_of and not exc.is_html:
        return (
            f"No video task '{remix_of}' exists for this API key to remix ({detail}). Check task_id: use the "
            "task_id of a completed video from create_video or list_tasks."
        )
    if isinstance(exc, NotFoundError) and task_id:
        return (
            f"No task '{task_id}' exists for this API key ({detail}). Check the task_id: use the one "
            "returned by create_video or create_character."
        )
    wait = f"{exc.retry_after:.0f} s" if exc.retry_after is not None else "about 30 s"
    for kind, advice in STATUS_ADVICE:
        if isinstance(exc, kind):
            return advice.format(detail=detail, wait=wait)
    return f"The gateway refused the request ({detail})."


def _status_detail(exc: APIStatusError) -> str:
    text = f"HTTP {exc.status_code}: {exc.message}"
    if exc.request_id:
        text += f"; request id {exc.request_id}"
    return text


def _cause(exc: Exception) -> str:
    return _status_detail(exc) if isinstance(exc, APIStatusError) else str(exc)


def _sentence(text: str) -> str:
    """``text`` with its first letter upper-cased; unlike ``str.capitalize`` it keeps "HTTP", URLs, class names."""
    return text[:1].upper() + text[1:]
