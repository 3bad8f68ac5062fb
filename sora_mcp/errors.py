"""The exception tree of the gateway client. Status codes map to classes in one place: :func:`make_status_error`.

::

    SoraError
    ├── MissingAPIKeyError            no SORA_API_KEY configured
    ├── InvalidArgumentError          a request we refuse to send (field + allowed values)
    ├── JournalError                  the task journal (SQLite) cannot be opened, read or written
    ├── SpendRefusedError             a paid call stopped before sending by a budget, a quote, or the user's no
    ├── TaskNotReadyError             download_video on a task without a video to fetch (yet)
    ├── DownloadError                 fetching a result file from the media host, or saving it, failed
    │   ├── MediaExpiredError         the media host refused the URL (403/404/410), also after a fresh read
    │   ├── DownloadTooLargeError     the file is larger than SORA_MAX_DOWNLOAD_MB
    │   ├── OutputDirError            the output folder cannot be created or written
    │   └── FileConflictError         the file name is taken by other content or by a symbolic link
    └── APIError                      anything the gateway (or the way to it) did wrong
        ├── APIConnectionError        no HTTP answer; ``request_sent`` says whether it may have arrived
        │   └── APITimeoutError
        ├── APIResponseError          a 2xx answer we cannot read (HTML, malformed JSON, no task id)
        ├── APIStatusError            a non-2xx answer; ``status_code``, ``message``, ``code``, ``request_id``
        │   ├── BadRequestError           400
        │   ├── AuthenticationError       401
        │   ├── PaymentRequiredError      402
        │   ├── PermissionDeniedError     403
        │   ├── NotFoundError             404
        │   ├── ContentPolicyError        422
        │   ├── RateLimitError            429
        │   └── ServerError               5xx
        └── CreateOutcomeUnknownError a create POST may have created (and billed) a task, but we got no id

The MCP layer turns each of these into exactly one actionable tool error (``server.py``). The API key is never
part of any message: errors carry only what the gateway answered, trimmed. The messages of ``TaskNotReadyError``
and the ``DownloadError`` family are written for the calling model as they are: what happened, what to do.
"""

from typing import Any

MAX_DETAIL_CHARS = 300


class SoraError(Exception):
    """Base of every error raised by the sora-mcp client."""


class MissingAPIKeyError(SoraError):
    """No gateway key is configured."""

    def __init__(self) -> None:
        super().__init__(
            "SORA_API_KEY is not set. Add SORA_API_KEY=<your dashlyai key> to the environment of this MCP server "
            "(the 'env' block of your MCP client configuration) and restart it, or start it with --sandbox to try "
            "the tools without a key."
        )


class SpendRefusedError(SoraError):
    """A paid call refused before anything was sent (a budget, an unusable ``confirm_quote``, the user's no). The
    message is written for the calling model: what was refused, that nothing was billed, what to do."""


class BudgetExceededError(SpendRefusedError):
    """The call's estimate would take the spend of a budget's window over it."""

    def __init__(self, variable: str, limit_usd: float, spent_usd: float, estimate_usd: float, resets_at: float):
        super().__init__(variable)
        self.variable = variable
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.estimate_usd = estimate_usd
        self.resets_at = resets_at


class QuoteRefusedError(SpendRefusedError):
    """``confirm_quote`` names no quote usable for this call: ``reason`` is unknown, used, expired or
    different_arguments."""

    def __init__(self, quote_id: str, reason: str) -> None:
        super().__init__(reason)
        self.quote_id = quote_id
        self.reason = reason


class SpendDeclinedError(SpendRefusedError):
    """The user said no to the call (declined, cancelled, or answered false)."""

    def __init__(self, tool: str, estimate: str) -> None:
        super().__init__(tool)
        self.tool = tool
        self.estimate = estimate


class ApprovalUnavailableError(SpendRefusedError):
    """The call needed the user's yes and the client can be asked, but the question could not be asked just now
    (the check before it failed); a quote would let the agent approve its own spend."""

    def __init__(self, tool: str) -> None:
        super().__init__(tool)
        self.tool = tool


class InvalidArgumentError(SoraError):
    """An argument the gateway would reject (or that would waste money); nothing was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class JournalError(SoraError):
    """The task journal cannot be used. The message names the file, the reason and the fix."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class TaskNotReadyError(SoraError):
    """The task has no video to download: still running, failed, a character task, or no URL given."""

    def __init__(self, message: str, *, task_id: str, status: str) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.status = status


class DownloadError(SoraError):
    """Fetching a result file or saving it failed. No partial file is ever left at the target path."""


class MediaExpiredError(DownloadError):
    """The media host refused the URL with 403, 404 or 410: the link expired (or was revoked)."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class DownloadTooLargeError(DownloadError):
    """The file is larger than the configured cap (``SORA_MAX_DOWNLOAD_MB``)."""

    def __init__(self, message: str, *, limit_bytes: int) -> None:
        super().__init__(message)
        self.limit_bytes = limit_bytes


class OutputDirError(DownloadError):
    """The output folder cannot be created or written (read-only, not a folder, disk full)."""


class FileConflictError(DownloadError):
    """The requested file name already holds different content, or is a symbolic link: never overwritten."""


class APIError(SoraError):
    """The gateway could not be reached, answered with an error, or answered something unreadable."""


class APIConnectionError(APIError):
    """No HTTP response arrived. ``request_sent`` is False only when the request surely never left."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The gateway did not answer within SORA_TIMEOUT."""


class APIResponseError(APIError):
    """A successful status with a body that is not the JSON we expect (HTML page, malformed JSON, no id)."""

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body[:MAX_DETAIL_CHARS]


class APIStatusError(APIError):
    """The gateway answered with a non-2xx status. ``str()`` is ``HTTP <status>: <message>``; ``message`` is the
    gateway's own text."""

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        is_html: bool = False,
    ) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.message = message
        self.status_code = status_code
        self.code = code
        self.error_type = error_type
        self.request_id = request_id
        self.retry_after = retry_after
        self.is_html = is_html


class BadRequestError(APIStatusError):
    """400: the gateway rejected the request parameters."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PaymentRequiredError(APIStatusError):
    """402: the account balance is too low."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(APIStatusError):
    """404: no such task for this key."""


class ContentPolicyError(APIStatusError):
    """422: the prompt or an input was refused by the content policy."""


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` holds the gateway's hint when it gave one."""


class ServerError(APIStatusError):
    """5xx: the gateway or something behind it failed."""


class CreateOutcomeUnknownError(APIError):
    """A create request reached the gateway, but its answer was lost or unusable: a task may exist and be billed.

    Never retried automatically: a second POST could create (and bill) a second task.
    """

    def __init__(self, kind: str, cause: APIError) -> None:
        super().__init__(f"{kind} task outcome unknown: {cause}")
        self.kind = kind
        self.cause = cause
        self.journaled = False
        """Set by the task service once the task journal holds the submission (``list_tasks`` shows it)."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: ContentPolicyError,
    429: RateLimitError,
}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:MAX_DETAIL_CHARS]


def make_status_error(
    status_code: int,
    body: Any,
    *,
    raw_text: str = "",
    is_html: bool = False,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the typed error for a non-2xx answer from its parsed JSON body (or raw text when not JSON).

    Both documented envelopes are read: ``{"error": {"code": 401, "message", "type"}}`` and the string-code
    variant ``{"error": {"code": "unauthorized", "message", "param", "type"}}``; a bare ``{"message": ...}``
    or ``{"error": "text"}`` also works. Without any message we fall back to a trimmed body or the status.
    """
    message: str | None = None
    code: str | None = None
    error_type: str | None = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = _text(error.get("message"))
            code = _text(error.get("code"))
            error_type = _text(error.get("type"))
        elif isinstance(error, str):
            message = _text(error)
        message = message or _text(body.get("message")) or _text(body.get("detail"))
    if message is None:
        if is_html:
            message = "the gateway answered with an HTML error page instead of JSON"
        else:
            message = _text(raw_text.strip()) or f"HTTP {status_code}"
    cls = _STATUS_CLASSES.get(status_code, ServerError if status_code >= 500 else APIStatusError)
    return cls(
        message,
        status_code=status_code,
        code=code,
        error_type=error_type,
        request_id=request_id,
        retry_after=retry_after,
        is_html=is_html,
    )
