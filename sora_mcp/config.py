"""Settings read from the environment (prefix ``SORA_``), validated once at start-up.

Every field is documented in the README's configuration table and in ``server.json``; a test keeps the three
in step. Invalid values stop the server before it serves anything, with a message naming the variable
(:func:`describe_settings_error`).
"""

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AnyHttpUrl, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from sora_mcp.spending import DEFAULT_PRICES, check_prices

ENV_PREFIX = "SORA_"
DEFAULT_BASE_URL = "https://dashlyai.cc"
DEFAULT_MEDIA_ORIGINS = ("https://files.dashlyai.cc", "https://files.toapis.com", "https://upload.toapis.com")
"""Where the gateway's result videos, thumbnails and character avatars are served from (upstream-api notes)."""
SECRET_FIELDS = frozenset({"api_key", "mcp_auth_token", "mcp_state_key", "database_url"})
"""Fields whose values never appear in messages."""

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
"""The loopback host names and addresses (IPv6 without brackets); :func:`is_loopback` knows the whole ranges."""

_HOST_PATTERN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:([0-9]{1,5}|\*))?")
_ORIGIN_PATTERN = re.compile(r"https?://" + _HOST_PATTERN.pattern)
_SCOPE_PATTERN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
"""An OAuth scope token (RFC 6749 section 3.3): printable ASCII without spaces, quotes or backslashes."""
_OAUTH_DETAILS = ("mcp_oauth_audience", "mcp_oauth_scopes", "mcp_oauth_jwks_url")


class Settings(BaseSettings):
    """Runtime configuration of the server and of the gateway client."""

    # url_preserve_empty_path: an issuer URL is compared with its tokens' ``iss`` as written, so
    # https://accounts.google.com must not become https://accounts.google.com/.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True, url_preserve_empty_path=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments and the environment only: no ``.env`` file or secrets directory is read (none is configured,
        and skipping those sources saves their per-field work at every start-up)."""
        return init_settings, env_settings

    api_key: SecretStr | None = None
    """Gateway key, sent as ``Authorization: Bearer``. Without it the server starts, but tool calls fail."""

    base_url: str = DEFAULT_BASE_URL
    """Gateway base URL (``http`` or ``https``), without the ``/v1`` path."""

    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    """Seconds allowed for one gateway request."""

    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    """Retries of a request that is safe to retry (reads; creates only when surely not received)."""

    poll_interval: Annotated[float, Field(gt=0, le=60)] = 5.0
    """Longest pause, in seconds, between two gateway polls inside ``get_task(wait_seconds=...)``."""

    retry_backoff: Annotated[float, Field(ge=0, le=30)] = 0.5
    """Base of the exponential back-off between retries, in seconds (doubled each attempt, capped at 8 s)."""

    sandbox: bool = False
    """Serve the tools against the built-in simulated gateway: no key, no network, no cost."""

    sandbox_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 8.0
    """How long a sandbox video takes to render, in seconds (a character takes half as long)."""

    state_dir: Path | None = None
    """Directory of the task journal (``journal.sqlite3``); unset means the platform's user state directory."""

    database_url: SecretStr | None = None
    """``postgresql://user:password@host:5432/dbname``: keep the task journal (tasks, quotes, estimates) in this
    PostgreSQL database, shared by every replica on every machine, instead of ``journal.sqlite3`` in the state
    directory. Needs the ``postgres`` extra (``pip install 'sora-mcp[postgres]'``)."""

    database_pool_size: Annotated[int, Field(ge=1, le=100)] = 10
    """With ``database_url``: connections this process keeps to PostgreSQL at most."""

    journal_retention_days: Annotated[int, Field(ge=0, le=36_500)] = 90
    """Days finished tasks stay in the task journal (and in ``list_tasks``); 0 keeps them forever. Tasks whose
    outcome is unknown or that are unfinished stay until resolved, and so does the current calendar month."""

    duplicate_window: Annotated[float, Field(ge=0, le=86_400)] = 600.0
    """Seconds during which a create with the same arguments returns the earlier task instead; 0 turns it off."""

    output_dir: Path | None = None
    """Folder where ``download_video`` saves files; by default a ``sora-mcp`` folder in the user's Videos (or
    Downloads) folder. Created on demand. Must be absolute (``~`` is expanded): a relative path would depend on
    the working directory the MCP client happens to start the server in."""

    max_download_mb: Annotated[int, Field(gt=0, le=100_000)] = 500
    """Largest file ``download_video`` saves, in megabytes (MiB); a larger one is refused, nothing is kept."""

    max_image_mb: Annotated[float, Field(gt=0, le=100)] = 10
    """Largest reference image a create sends (a ``data:`` URI or a local file in ``images``), in megabytes (MiB),
    decoded."""

    file_roots: Annotated[tuple[Path, ...] | None, NoDecode] = None
    """Folders whose files ``create_video`` may read as reference images (``images`` entries that are local paths
    or ``file://`` URIs), after symbolic links are followed: absolute paths (``~`` expanded), separated by commas
    or the platform's path separator (``:``, ``;`` on Windows). Unset: the user's home folder on stdio, none over
    HTTP; set but empty: none on every transport."""

    _over_http: bool = PrivateAttr(default=False)
    """Set by :meth:`served_over_http` (the HTTP app factory): what ``file_roots`` means when unset."""

    prices: Annotated[dict[str, float], NoDecode] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    """USD per second of video by model, and per character task under ``character``, for cost estimates: a JSON
    object such as ``{"sora-2": 0.12, "character": 0.05}``, merged over the defaults (sora-2 0.10, sora-2-pro
    0.30, list prices). A model without a price gets no estimate."""

    confirm_above_usd: Annotated[float | None, Field(ge=0)] = None
    """A paid call estimated at this or more waits for the user's yes (MCP elicitation, or a quote to confirm);
    0 asks every time; unset never asks."""

    budget_daily_usd: Annotated[float | None, Field(ge=0)] = None
    """Estimated spend allowed per local calendar day, across every process sharing the journal; unset: no cap."""

    budget_monthly_usd: Annotated[float | None, Field(ge=0)] = None
    """Estimated spend allowed per local calendar month; unset: no cap."""

    media_origins: Annotated[tuple[str, ...], NoDecode] = DEFAULT_MEDIA_ORIGINS
    """Origins the in-chat player may load videos and thumbnails from (its Content-Security-Policy), e.g.
    ``https://files.dashlyai.cc``; comma-separated. The sandbox adds its own loopback origin."""

    inline_thumbnails: bool = True
    """Show a completed video's thumbnail (when the gateway has one) as an image next to get_task's result."""

    # The HTTP transports (``--transport sse|streamable-http`` and the ASGI factory ``sora_mcp.http:create_app``).

    mcp_auth_token: SecretStr | None = None
    """Bearer token every MCP request over HTTP must carry (``Authorization: Bearer <token>``)."""

    mcp_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    """``Host`` values accepted besides loopback (DNS-rebinding protection), e.g. ``mcp.example.com``; comma-separated
    in the environment. ``name`` also accepts ``name:<any port>``; ``name:*`` is the same, ``name:8443`` only that."""

    mcp_allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Browser ``Origin`` values accepted besides loopback ones, e.g. ``https://app.example.com``; comma-separated."""

    mcp_stateless: bool = False
    """Streamable HTTP keeps no session between requests, so replicas need no sticky sessions."""

    mcp_allow_unauthenticated: bool = False
    """Serve HTTP on a non-loopback address without ``mcp_auth_token`` (only behind something that authenticates)."""

    mcp_state_key: SecretStr | None = None
    """A secret shared by every replica (32 characters or more), sealing the state that a 2026-07-28 client sends
    back when it answers a question (the user's yes to a cost), so that any replica can resume the call. Unset: a
    key per process, which is enough for a single server."""

    mcp_session_idle_seconds: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    """Streamable HTTP: a session (2025-11-25 clients) with no request for this long is closed and its memory
    freed; the client then starts a new one. The SDK's default, 30 minutes, let abandoned sessions pile up."""

    mcp_max_sessions: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Streamable HTTP: open sessions at most; a new one beyond it is refused (503) until idle ones expire."""

    mcp_header_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    """A connection must send a request's complete headers within this time of opening (or of its previous
    answer); a slower one gets 408 and is closed, so a client trickling bytes cannot hold a connection."""

    mcp_body_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """A request's whole body (at most 4 MiB) must arrive within this time of its headers, or the connection
    is closed."""

    mcp_max_connections: Annotated[int | None, Field(ge=8, le=1_000_000)] = None
    """Open HTTP connections at most; a connection beyond the cap replaces the oldest one with no request in
    progress. Unset: 1000, or less under a low file-descriptor limit (160 at ``ulimit -n 256``), so the gateway
    client and the journal always have descriptors left."""

    # OAuth 2.1 resource server (sora_mcp/oauth.py): access tokens from an existing authorization server.

    mcp_public_url: AnyHttpUrl | None = None
    """The URL clients use for the MCP endpoint, as they see it (``https://mcp.example.com/mcp``, behind any
    proxy): the OAuth resource this server is, named in its protected-resource metadata and, by default, the
    audience its access tokens must carry. Required with ``mcp_oauth_issuer``; ``https`` unless loopback."""

    mcp_oauth_issuer: AnyHttpUrl | None = None
    """Issuer URL of the OAuth 2.1 / OpenID Connect authorization server whose access tokens are accepted, exactly
    as it names itself (its tokens' ``iss``), e.g. ``https://tenant.auth0.com/``. Turns the resource server on:
    protected-resource metadata, ``401`` challenges, JWT verification against the issuer's keys. ``https``
    unless loopback."""

    mcp_oauth_audience: str | None = None
    """The audience (``aud``) an access token must name; unset: ``mcp_public_url``."""

    mcp_oauth_scopes: Annotated[tuple[str, ...], NoDecode] = ()
    """Scopes every access token must carry (``scope`` or ``scp`` claim), comma-separated; published as
    ``scopes_supported``. A token without one of them gets ``403 insufficient_scope``."""

    mcp_oauth_jwks_url: AnyHttpUrl | None = None
    """Where the issuer publishes its signing keys (a JWK Set); unset: the ``jwks_uri`` of the issuer's discovery
    document (``/.well-known/openid-configuration``, else ``/.well-known/oauth-authorization-server``)."""

    @field_validator("prices", mode="before")
    @classmethod
    def _parse_prices(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError:
                raise ValueError(
                    'must be JSON, an object such as {"sora-2": 0.12, "sora-2-pro": 0.35, "character": 0.05}'
                ) from None
        return check_prices(value)

    @field_validator("mcp_state_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (a random secret, the same on every replica)")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value().strip() if value is not None else ""
        if not url:
            return None
        scheme, sep, _ = url.partition("://")
        if not sep or scheme.lower() not in ("postgresql", "postgres") or any(c.isspace() for c in url):
            raise ValueError("must be a URL such as postgresql://user:password@host:5432/dbname")
        return SecretStr(url)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
            raise ValueError("must be an http(s) URL such as https://dashlyai.cc")
        if any(c.isspace() for c in value):
            raise ValueError("must not contain spaces")
        return value

    @field_validator("state_dir", "output_dir", mode="before")
    @classmethod
    def _absolute_directory(cls, value: Any) -> Any:
        """Blank means unset; ``~`` is expanded; relative paths are refused: an MCP client starts servers in an
        unpredictable working directory."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        path = Path(str(value).strip()).expanduser()
        if not path.is_absolute():
            raise ValueError("must be an absolute path such as ~/Videos/sora-mcp (relative paths are ambiguous)")
        return path

    @field_validator("file_roots", mode="before")
    @classmethod
    def _parse_roots(cls, value: Any) -> Any:
        """Unset stays None (the transport's default); blank means no folder; each item absolute after ``~``."""
        if value is None:
            return None
        items = re.split(f"[,{re.escape(os.pathsep)}]", value) if isinstance(value, str) else list(value)
        roots = []
        for item in (str(item).strip() for item in items):
            if not item:
                continue
            path = Path(item).expanduser()
            if not path.is_absolute():
                raise ValueError(
                    f"{item!r} is not an absolute path: give folders such as ~/Pictures or /srv/images "
                    "(relative paths are ambiguous)"
                )
            roots.append(path)
        return tuple(roots)

    def served_over_http(self) -> Self:
        """These settings as the HTTP app uses them: unset ``file_roots`` then means no local files at all (a
        remote client must not read the server's home folder by default)."""
        copy = self.model_copy()
        copy._over_http = True
        return copy

    @property
    def over_http(self) -> bool:
        """Whether the server these settings configure serves MCP over HTTP (:meth:`served_over_http`)."""
        return self._over_http

    @property
    def image_roots(self) -> tuple[Path, ...]:
        """The folders local reference images may come from (not yet resolved): ``file_roots`` when set, else the
        user's home folder on stdio and none over HTTP."""
        if self.file_roots is not None:
            return self.file_roots
        return () if self._over_http else (Path.home(),)

    @property
    def maskable_key(self) -> str | None:
        """The API key to mask in any text we show or log, when it is long enough to mask safely (masking a
        one-letter test key would mangle ordinary words; real keys are tens of characters)."""
        key = self.api_key.get_secret_value() if self.api_key else ""
        return key if len(key) >= 8 else None

    @property
    def max_download_bytes(self) -> int:
        return self.max_download_mb * 1024 * 1024

    @property
    def max_image_bytes(self) -> int:
        return int(self.max_image_mb * 1024 * 1024)

    @field_validator("mcp_allowed_hosts", "mcp_allowed_origins", "mcp_oauth_scopes", "media_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item for item in re.split(r"[,\s]+", value) if item)
        return value

    @field_validator("mcp_allowed_hosts")
    @classmethod
    def _check_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not _HOST_PATTERN.fullmatch(host):
                raise ValueError(f"{host!r} is not a host name, host:port or host:* (no scheme, path or wildcard)")
        return value

    @field_validator("mcp_allowed_origins", "media_origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not _ORIGIN_PATTERN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://app.example.com (no path)")
        return value

    @field_validator("mcp_oauth_scopes")
    @classmethod
    def _check_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for scope in value:
            if not _SCOPE_PATTERN.fullmatch(scope):
                raise ValueError(f"{scope!r} is not an OAuth scope (printable ASCII, no quotes or backslashes)")
        return value

    @field_validator("mcp_public_url", "mcp_oauth_issuer", "mcp_oauth_jwks_url", "mcp_oauth_audience", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("mcp_public_url", "mcp_oauth_issuer", "mcp_oauth_jwks_url")
    @classmethod
    def _https_unless_loopback(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        """Tokens and keys over plain HTTP could be read or replaced on the way; loopback is for tests and
        for an issuer on the same machine."""
        if value is None:
            return None
        if value.scheme != "https" and not is_loopback(value.host or ""):
            raise ValueError("must be an https URL (http only with a loopback host such as 127.0.0.1)")
        if value.query is not None or value.fragment is not None:
            raise ValueError("must have no query or fragment")
        return value

    @model_validator(mode="after")
    def _oauth_complete(self) -> Self:
        if self.mcp_oauth_issuer is None:
            stray = [ENV_PREFIX + name.upper() for name in _OAUTH_DETAILS if getattr(self, name)]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} set without SORA_MCP_OAUTH_ISSUER: set the issuer whose access tokens "
                    "this server accepts, or unset them"
                )
        elif self.mcp_public_url is None:
            raise ValueError(
                "SORA_MCP_OAUTH_ISSUER needs SORA_MCP_PUBLIC_URL: the URL clients use for this server's MCP "
                "endpoint (e.g. https://mcp.example.com/mcp), the resource its access tokens are issued for"
            )
        return self

    @field_validator("api_key", "mcp_auth_token")
    @classmethod
    def _blank_key_is_no_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, IPv6 with or without brackets) is a loopback address."""
    import ipaddress  # on first use: stdio start-up never needs it

    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def mask_database_url(url: str) -> str:
    """``url`` as messages show it: ``postgresql://user:***@host:5432/db``, any ``password=`` parameter masked."""
    return database_url_secrets(url)[0]


def database_url_secrets(url: str) -> tuple[str, tuple[str, ...]]:
    """``url`` masked, and every spelling of its password to mask in other text (as written and decoded).

    Read the way libpq reads it: the user and password end at the last ``@`` before the first ``/``, so a
    password may hold ``#`` or ``?`` (``urlsplit`` would stop there and mask nothing)."""
    import re
    from urllib.parse import unquote

    scheme, separator, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    secrets: list[str] = []
    if "@" in authority:
        credentials, _, hosts = authority.rpartition("@")
        user, has_password, password = credentials.partition(":")
        if has_password:
            secrets += [password, unquote(password)]
            authority = f"{user}:***@{hosts}"
    query = re.compile(r"([?&]password=)([^&]*)", re.IGNORECASE)
    remainder = authority + slash + tail
    for _, value in query.findall(remainder):
        secrets += [value, unquote(value)]
    masked = scheme + separator + query.sub(r"\1***", remainder)
    return masked, tuple(sorted({secret for secret in secrets if len(secret) >= 4}, key=len, reverse=True))


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (``Settings.maskable_key``) masked as ``***``: the one masking rule."""
    return text.replace(secret, "***") if secret else text


def describe_settings_error(error: ValidationError) -> str:
    """Turn a settings ``ValidationError`` into lines that name the environment variable, never a secret."""
    return "invalid configuration:\n  " + "\n  ".join(settings_error_lines(error))


def settings_error_lines(error: ValidationError) -> list[str]:
    """One ``SORA_<FIELD>: <problem> (got <value>)`` line per invalid variable; secrets' values are never shown."""
    lines = []
    for item in error.errors():
        if not item["loc"]:  # a rule across variables: its message names them
            lines.append(str(item["msg"]).removeprefix("Value error, "))
            continue
        field = str(item["loc"][0])
        variable = ENV_PREFIX + field.upper()
        shown: Any = item.get("input")
        got = "" if field in SECRET_FIELDS or shown is None or isinstance(shown, dict) else f" (got {shown!r})"
        lines.append(f"{variable}: {item['msg']}{got}")
    return lines
