"""``sora-mcp doctor``: check the configuration and the way to the gateway, and say what to fix.

It prints one line per check, ``OK``, ``WARN`` or ``FAIL``, then a summary; the exit status is 1 when a check
failed. The gateway probe costs nothing: it reads a task id that cannot exist. The gateway checks the key before
it looks a task up, so its answer tells the cases apart: 404 means the key was accepted, 401 a bad key, 402 an
empty balance; no answer at all is told apart as unreachable, a TLS problem or a timeout.

The key itself is never printed, only :func:`mask_key`'s form (``sk-...abcd``). Output goes to stdout: the
doctor is a command for a person, not the stdio server.
"""

import os
import platform
import re
import socket
import sqlite3
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal, TextIO, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx2
from pydantic import ValidationError

from sora_mcp import __version__
from sora_mcp.client import SoraClient
from sora_mcp.config import Settings, is_loopback, redact, settings_error_lines
from sora_mcp.download import default_output_dir
from sora_mcp.errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    JournalError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
)
from sora_mcp.journal import DriverMissingError, default_state_dir, journal_path

PROBE_TASK_ID = "sora-mcp-doctor-probe-0000000000"
"""A well-formed task id the gateway never issues (its ids start with ``task_`` or ``video_``)."""

Status = Literal["OK", "WARN", "FAIL"]
ErrorT = TypeVar("ErrorT", bound=BaseException)


@dataclass(frozen=True)
class Check:
    """The outcome of one check: a status, what was checked, and what was found (and what to do)."""

    status: Status
    subject: str
    detail: str


def mask_key(key: str) -> str:
    """``sk-...abcd``: the ``sk-`` prefix (when present) and the last 4 characters; a short key is fully masked."""
    if len(key) < 12:
        return "*" * 8
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}...{key[-4:]}"


def load_settings(*, sandbox: bool = False) -> Settings | list[Check]:
    """The settings from the environment, as the server reads them; or one ``FAIL`` per invalid variable."""
    try:
        return Settings(sandbox=True) if sandbox else Settings()
    except ValidationError as exc:
        return [Check("FAIL", "configuration", line) for line in settings_error_lines(exc)]


def directory_settings(settings: Settings) -> list[tuple[str, Path]]:
    """The directories the server writes to, each with its environment variable (one entry per setting)."""
    return [
        ("SORA_STATE_DIR", settings.state_dir or default_state_dir()),
        ("SORA_OUTPUT_DIR", settings.output_dir or default_output_dir()),
    ]


async def diagnose(settings: Settings, *, http_client: httpx2.AsyncClient | None = None) -> list[Check]:
    """Run every check against ``settings``; ``http_client`` reaches the gateway (tests pass an in-memory one)."""
    checks = [Check("OK", "configuration", "the SORA_* settings are valid")]
    if settings.sandbox:
        checks.append(
            Check(
                "WARN",
                "SORA_SANDBOX",
                "on: the server serves simulated tasks and uses neither the key nor the gateway; "
                "the checks below are about the real gateway",
            )
        )
    checks.append(_check_key(settings))
    checks.append(_check_base_url(settings))
    checks.append(await check_gateway(settings, http_client=http_client))
    checks.extend(check_directory(variable, path) for variable, path in directory_settings(settings))
    if (database := await check_database(settings)) is not None:
        checks.append(database)
    checks.extend(await check_spending(settings))
    checks.append(await check_journal_size(settings))
    checks.append(await check_server(settings))
    return [Check(check.status, check.subject, redact(check.detail, settings.maskable_key)) for check in checks]


def _check_key(settings: Settings) -> Check:
    if settings.api_key is None:
        if settings.sandbox:
            return Check("WARN", "SORA_API_KEY", "not set (the sandbox needs none; the real gateway does)")
        return Check(
            "FAIL",
            "SORA_API_KEY",
            "not set: add SORA_API_KEY=<your dashlyai key> to the 'env' block of your MCP client configuration "
            "(or run with --sandbox to try the tools without a key)",
        )
    return Check("OK", "SORA_API_KEY", f"set: {mask_key(settings.api_key.get_secret_value())}")


def _check_base_url(settings: Settings) -> Check:
    parts = urlsplit(settings.base_url)
    shown = _display_url(settings.base_url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        return Check("WARN", "SORA_BASE_URL", f"{shown} is plain http: the key travels unencrypted; use https")
    return Check("OK", "SORA_BASE_URL", shown)


async def check_gateway(settings: Settings, *, http_client: httpx2.AsyncClient | None = None) -> Check:
    """Probe the gateway once, without retries, by reading a task that cannot exist; classify the answer."""
    if settings.api_key is None:
        return Check("FAIL" if not settings.sandbox else "WARN", "gateway", "not probed: there is no key to try")
    probe_settings = settings.model_copy(update={"max_retries": 0})
    where = _display_url(settings.base_url)
    started = time.perf_counter()
    try:
        async with SoraClient(probe_settings, http_client=http_client) as client:
            await client.get_task(PROBE_TASK_ID)
    except NotFoundError as exc:
        if exc.is_html:
            return Check(
                "FAIL",
                "gateway",
                f"{where} answered with an HTML 'not found' page, not the gateway API: check SORA_BASE_URL "
                "(the gateway's address, without /v1)",
            )
        elapsed = (time.perf_counter() - started) * 1000
        return Check(
            "OK",
            "gateway",
            f"reached {where} in {elapsed:.0f} ms; the key was accepted (HTTP 404 for a task that cannot exist)",
        )
    except AuthenticationError as exc:
        return Check(
            "FAIL",
            "gateway",
            f"reached, but the key was rejected (HTTP 401: {exc.message}): copy SORA_API_KEY again from the "
            "gateway's console; a key of another service does not work here",
        )
    except PaymentRequiredError as exc:
        return Check(
            "FAIL",
            "gateway",
            f"reached, the key is known, but the balance is too low (HTTP 402: {exc.message}): top up the account",
        )
    except PermissionDeniedError as exc:
        return Check(
            "FAIL",
            "gateway",
            f"reached, but this key may not use the video API (HTTP 403: {exc.message}): check the key's permissions",
        )
    except RateLimitError as exc:
        return Check(
            "WARN",
            "gateway",
            f"reached, but it is rate limiting this key (HTTP 429: {exc.message}); try again in a minute",
        )
    except APIStatusError as exc:
        return Check(
            "FAIL",
            "gateway",
            f"reached, but it answered HTTP {exc.status_code} ({exc.message}): if SORA_BASE_URL is right, the "
            "gateway is failing; try again later",
        )
    except APITimeoutError:
        return Check(
            "FAIL",
            "gateway",
            f"{where} did not answer within {settings.timeout:g} s (SORA_TIMEOUT): check the network, a proxy, "
            "or raise SORA_TIMEOUT",
        )
    except APIConnectionError as exc:
        return describe_connection_error(exc, where)
    except APIResponseError as exc:
        return Check(
            "FAIL",
            "gateway",
            f"{where} answered HTTP {exc.status_code} with something that is not the gateway API: check SORA_BASE_URL",
        )
    elapsed = (time.perf_counter() - started) * 1000
    return Check("OK", "gateway", f"reached {where} in {elapsed:.0f} ms; the key was accepted")


def describe_connection_error(exc: APIConnectionError, where: str) -> Check:
    """Tell a TLS problem, a name that does not resolve and a refused or dropped connection apart."""
    tls_error = _find_in_chain(exc, ssl.SSLError)
    if isinstance(tls_error, ssl.SSLCertVerificationError):
        return Check(
            "FAIL",
            "gateway",
            f"TLS problem: the certificate of {where} is not trusted ({_ssl_text(tls_error)}). If a proxy or "
            "antivirus inspects TLS, add its CA certificate to the system trust store; check the system clock",
        )
    if tls_error is not None:
        return Check(
            "FAIL",
            "gateway",
            f"TLS problem: the TLS handshake with {where} failed ({_ssl_text(tls_error)}). Check the scheme of "
            "SORA_BASE_URL (https for the gateway) and any proxy between here and the gateway",
        )
    if _find_in_chain(exc, socket.gaierror) is not None:
        host = urlsplit(where).hostname
        return Check(
            "FAIL",
            "gateway",
            f"unreachable: the name {host} does not resolve (DNS). Check SORA_BASE_URL and the network",
        )
    return Check(
        "FAIL", "gateway", f"unreachable: {exc}. Check the network (and any firewall or proxy) and SORA_BASE_URL"
    )


def check_directory(variable: str, path: Path) -> Check:
    """Whether the server can write in ``path``, changing nothing: an existing directory gets a temporary file
    (removed again); a missing one needs its nearest existing parent to be a writable directory."""
    fix = f"choose another {variable}"
    if path.exists():
        if not path.is_dir():
            return Check("FAIL", variable, f"{path} exists but is not a directory: {fix}")
        try:
            with tempfile.NamedTemporaryFile(dir=path, prefix=".sora-mcp-doctor-"):
                pass
        except OSError as exc:
            return Check("FAIL", variable, f"{path} is not writable ({exc.strerror or type(exc).__name__}): {fix}")
        return Check("OK", variable, f"{path} is writable")
    parent = next(ancestor for ancestor in path.parents if ancestor.exists())
    if not parent.is_dir():
        return Check("FAIL", variable, f"{path} cannot be created: {parent} is a file, not a directory: {fix}")
    if not os.access(parent, os.W_OK | os.X_OK):
        return Check("FAIL", variable, f"{path} cannot be created: {parent} is not writable: {fix}")
    return Check("OK", variable, f"{path} does not exist yet; the server will create it")


async def check_spending(settings: Settings) -> list[Check]:
    """The price table, the confirmation threshold, the budgets and today's estimated spend. The journal is read
    read-only: the doctor neither creates nor upgrades it (the server does, at start-up)."""
    from sora_mcp.spending import CHARACTER_PRICE, usd

    priced = [f"{name} {usd(price)}/s" for name, price in settings.prices.items() if name != CHARACTER_PRICE]
    character = settings.prices.get(CHARACTER_PRICE)
    priced.append(f"character {usd(character)} per task" if character is not None else "character: no price")
    checks = [Check("OK", "SORA_PRICES", "estimates from " + ", ".join(priced))]
    confirm = settings.confirm_above_usd
    confirmation = "never asks" if confirm is None else f"asks the user at {usd(confirm)} or more"
    budgets = ", ".join(
        f"{name} {usd(limit)}" if limit is not None else f"{name} none"
        for name, limit in (("daily", settings.budget_daily_usd), ("monthly", settings.budget_monthly_usd))
    )
    try:
        spent = await anyio.to_thread.run_sync(read_spending, settings)
    except (sqlite3.Error, JournalError, DriverMissingError) as exc:
        where = journal_path(settings.state_dir) if settings.database_url is None else "the database"
        checks.append(Check("WARN", "spending", f"cannot read {where} ({exc}); budgets: {budgets}; {confirmation}"))
        return checks
    today, this_month = spent
    detail = f"spent {usd(today)} today and {usd(this_month)} this month (estimates); budgets: {budgets}"
    checks.append(Check("OK", "spending", f"{detail}; {confirmation}"))
    return checks


def read_spending(settings: Settings) -> tuple[float, float]:
    """Today's and this month's estimated spend, from the journal ``settings`` name (read-only)."""
    from sora_mcp.journal import load_postgres, read_spend
    from sora_mcp.tasks import gateway_scope

    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        spent: tuple[float, float] = load_postgres().inspect(url, gateway=gateway_scope(settings), now=time.time())[1]
        return spent
    return read_spend(journal_path(settings.state_dir), gateway=gateway_scope(settings), now=time.time())


async def check_journal_size(settings: Settings) -> Check:
    """How many rows the journal holds and how much room it takes, and how long finished tasks stay (read-only)."""
    from sora_mcp.journal import BUSY_TIMEOUT_SECONDS, load_postgres
    from sora_mcp.journal_sqlite import read_size_file

    days = settings.journal_retention_days
    kept = "finished tasks are kept forever" if days == 0 else f"finished tasks are kept {days} days"
    kept += " (SORA_JOURNAL_RETENTION_DAYS)"
    try:
        if settings.database_url is not None:
            url = settings.database_url.get_secret_value()
            size = await anyio.to_thread.run_sync(load_postgres().inspect_size, url)
        else:
            path = journal_path(settings.state_dir)
            size = await anyio.to_thread.run_sync(lambda: read_size_file(path, busy_timeout=BUSY_TIMEOUT_SECONDS))
    except (sqlite3.Error, JournalError, DriverMissingError) as exc:
        return Check("WARN", "journal", f"cannot read its size ({exc}); {kept}")
    if size is None:
        return Check("OK", "journal", f"empty: the server creates it at start-up; {kept}")
    room = "" if size.size_bytes is None else f", {size.size_bytes / 1e6:.1f} MB"
    return Check("OK", "journal", f"{size.rows:,} rows{room}; {kept}")


async def check_database(settings: Settings) -> Check | None:
    """With ``SORA_DATABASE_URL``: whether PostgreSQL answers and holds a journal this sora-mcp can use."""
    if settings.database_url is None:
        return None
    from sora_mcp.config import mask_database_url
    from sora_mcp.journal import load_postgres
    from sora_mcp.journal_schema import SCHEMA_VERSION

    url = settings.database_url.get_secret_value()
    where = mask_database_url(url)
    try:
        inspect = load_postgres().inspect
        version, _ = await anyio.to_thread.run_sync(lambda: inspect(url, gateway="", now=time.time()))
    except (DriverMissingError, JournalError) as exc:
        return Check("FAIL", "SORA_DATABASE_URL", str(exc))
    if version > SCHEMA_VERSION:
        detail = f"{where} holds a journal of a newer sora-mcp (schema {version}; this one knows {SCHEMA_VERSION})"
        return Check("FAIL", "SORA_DATABASE_URL", f"{detail}: upgrade sora-mcp")
    state = f"journal schema {version}" if version else "no journal yet; the server creates it at start-up"
    return Check("OK", "SORA_DATABASE_URL", f"PostgreSQL at {where} answers: {state} (shared by every replica)")


async def check_server(settings: Settings) -> Check:
    """Build the MCP server as ``sora-mcp`` would and list what it offers (catches broken installs)."""
    try:
        from sora_mcp.server import build_server

        server = build_server(settings)
        tools = await server.list_tools()
        prompts = await server.list_prompts()
    except Exception as exc:  # a diagnostic reports any failure to build the server instead of crashing
        return Check("FAIL", "server", f"could not build the MCP server ({type(exc).__name__}: {exc}); reinstall")
    return Check(
        "OK",
        "server",
        f"MCP SDK {metadata.version('mcp')}: tools {', '.join(t.name for t in tools)}; "
        f"prompts {', '.join(p.name for p in prompts) or 'none'}",
    )


def render(checks: Sequence[Check]) -> str:
    """The report: a heading, one ``STATUS  subject  detail`` line per check, and a summary line."""
    width = max((len(check.subject) for check in checks), default=0)
    lines = [f"sora-mcp {__version__} doctor (Python {platform.python_version()})"]
    lines += [f"{check.status:<4}  {check.subject:<{width}}  {check.detail}" for check in checks]
    failures = sum(check.status == "FAIL" for check in checks)
    warnings = sum(check.status == "WARN" for check in checks)
    if failures:
        lines.append(f"{_count(failures, 'problem')} found: fix the FAIL lines above, then run sora-mcp doctor again.")
    elif warnings:
        lines.append(f"No problem found ({_count(warnings, 'warning')}).")
    else:
        lines.append("All checks passed.")
    return "\n".join(lines) + "\n"


def run(*, sandbox: bool = False, out: TextIO = sys.stdout) -> int:
    """Entry point of ``sora-mcp doctor``: check, print the report to ``out``, return the exit status."""
    loaded = load_settings(sandbox=sandbox)
    checks = loaded if isinstance(loaded, list) else anyio.run(diagnose, loaded)
    out.write(render(checks))
    out.flush()
    return 1 if any(check.status == "FAIL" for check in checks) else 0


def _find_in_chain(exc: BaseException, kind: type[ErrorT]) -> ErrorT | None:
    """The first exception of type ``kind`` in the cause/context chain of ``exc`` (itself included)."""
    for link in _chain(exc):
        if isinstance(link, kind):
            return link
    return None


def _ssl_text(error: ssl.SSLError) -> str:
    """``[SSL: CODE] reason`` without the ``(_ssl.c:1006)`` source location."""
    return re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(error))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _display_url(url: str) -> str:
    """The URL without any ``user:password@`` part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
