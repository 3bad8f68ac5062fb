"""JWT access tokens for the OAuth resource server (``oauth.py``): the issuer's keys, found through its
discovery document, fetched with bounds and cached, and the checks every token must pass (asymmetric signature,
``iss``, ``aud``, ``exp``, ``nbf``, ``iat``, scopes). Tokens are never logged."""

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.server.auth.provider import AccessToken

from sora_mcp import __version__
from sora_mcp.config import is_loopback

if TYPE_CHECKING:
    from sora_mcp.oauth import ResourceServer

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Signature algorithms accepted: asymmetric only. Never ``none``, never ``HS*`` (whose secret would be the
issuer's public key in a key-confusion attack)."""
ALGORITHMS_BY_KEY: dict[tuple[object, object], tuple[str, ...]] = {
    ("RSA", None): ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    ("EC", "P-256"): ("ES256",),
    ("EC", "P-384"): ("ES384",),
    ("EC", "P-521"): ("ES512",),
    ("OKP", "Ed25519"): ("EdDSA",),
}
"""What a published key without an ``alg`` may verify, by its ``kty`` and ``crv``."""
LEEWAY_SECONDS = 30
"""Clock skew allowed between the issuer and this server for ``exp``, ``nbf`` and ``iat``."""
KEYS_TTL_SECONDS = 600.0
KEYS_TTL_BOUNDS = (60.0, 86_400.0)
"""The JWK Set is kept for its ``Cache-Control: max-age`` within these bounds, else ``KEYS_TTL_SECONDS``."""
REFETCH_SECONDS = 10.0
"""At most one fetch of the issuer's keys per this interval, whatever asks for it (an unknown ``kid``, expired
keys, the issuer being down): a flood of tokens naming bogus keys cannot hammer the issuer."""
FETCH_TIMEOUT = httpx2.Timeout(5.0, connect=3.0)
FETCH_DEADLINE_SECONDS = 8.0
"""Discovery and the JWK Set together, however slowly the issuer answers."""
MAX_DOCUMENT_BYTES = 256 * 1024
"""A discovery document or JWK Set larger than this is refused (a hostile issuer cannot exhaust memory)."""
MAX_KEYS = 50


class TokenRejected(Exception):
    """A request's credentials are refused: ``description`` says why (never quoting the token), ``error`` is the
    RFC 6750 code (``None`` for a request without credentials)."""

    def __init__(self, description: str, *, status: int = 401, error: str | None = "invalid_token") -> None:
        super().__init__(description)
        self.description = description
        self.status = status
        self.error = error


class FetchError(Exception):
    """The issuer's discovery document or keys could not be had; the message says which URL and why."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SigningKey:
    """One usable key of the issuer's JWK Set."""

    kid: str | None
    algorithms: tuple[str, ...]
    key: Any
    """The ``cryptography`` public key."""


class JwtVerifier:
    """Verifies JWT access tokens against the issuer's keys; the SDK's ``TokenVerifier`` protocol too.

    Enter it (the app's lifespan does) to open its one HTTP client. Keys are fetched on the first token, kept for
    their ``max-age`` (bounded), refetched when a token names an unknown ``kid`` (key rotation) or they expire,
    and kept when a refetch fails. ``clock`` is monotonic seconds, for the cache and the refetch rate.
    """

    def __init__(
        self,
        server: "ResourceServer",
        *,
        clock: Callable[[], float] = time.monotonic,
        timeout: httpx2.Timeout = FETCH_TIMEOUT,
        deadline_seconds: float = FETCH_DEADLINE_SECONDS,
        refetch_seconds: float = REFETCH_SECONDS,
    ) -> None:
        self._server = server
        self._clock = clock
        self._timeout = timeout
        self._deadline = deadline_seconds
        self._refetch_seconds = refetch_seconds
        self._jwks_url = server.jwks_url
        self._keys: tuple[SigningKey, ...] = ()
        self._keys_expire = -math.inf
        self._last_attempt = -math.inf
        self._attempts = 0
        self._problem: str | None = None
        self._lock = anyio.Lock()
        self._http: httpx2.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._http = httpx2.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": f"sora-mcp/{__version__}"},
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def verify_token(self, token: str) -> AccessToken | None:
        """The SDK's ``TokenVerifier``: the token's ``AccessToken``, or ``None`` when it is refused."""
        try:
            return await self.verify(token)
        except TokenRejected:
            return None

    async def verify(self, token: str) -> AccessToken:
        """The verified token's ``AccessToken``; raises :class:`TokenRejected` saying why not."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("the token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenRejected(f"the token's signing algorithm is not accepted (only {', '.join(ALGORITHMS)})")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("the token's kid is not a string")
        key = await self._key_for(kid, algorithm)
        claims = self._decode(token, key, algorithm)
        granted = token_scopes(claims)
        missing = [scope for scope in self._server.scopes if scope not in granted]
        if missing:
            raise TokenRejected(
                f"the token lacks the scope {' '.join(missing)}", status=403, error="insufficient_scope"
            )
        client_id = next((str(claims[name]) for name in ("client_id", "azp", "appid", "cid") if name in claims), None)
        subject = claims.get("sub")
        return AccessToken(
            token=token,
            client_id=client_id or str(subject or "unknown"),
            scopes=sorted(granted),
            expires_at=int(claims["exp"]),
            subject=None if subject is None else str(subject),
            claims=claims,
        )

    def _decode(self, token: str, key: SigningKey, algorithm: str) -> dict[str, Any]:
        import jwt

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=list(self._server.audiences),
                issuer=self._server.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"the token has no {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            reasons: dict[type[Exception], str] = {
                jwt.InvalidSignatureError: "the token's signature does not verify with the issuer's key",
                jwt.ExpiredSignatureError: "the token has expired",
                jwt.ImmatureSignatureError: "the token is not valid yet (nbf or iat in the future)",
                jwt.InvalidAudienceError: f"the token is not for this server (aud must be {self._server.audiences[0]})",
                jwt.InvalidIssuerError: f"the token was not issued by {self._server.issuer}",
            }
            raise TokenRejected(reasons.get(type(exc), "the token is malformed")) from None
        return claims

    async def _key_for(self, kid: str | None, algorithm: str) -> SigningKey:
        key = self._find(kid, algorithm)
        if key is None or self._clock() >= self._keys_expire:
            await self._refresh()
            key = self._find(kid, algorithm)
        if key is not None:
            return key
        if not self._keys:
            raise TokenRejected(f"cannot verify tokens now: {self._problem or 'the issuer published no usable key'}")
        if kid is None:
            raise TokenRejected("the token names no key (kid) and the issuer publishes several")
        raise TokenRejected("the token's key (kid) is not among the issuer's keys")

    def _find(self, kid: str | None, algorithm: str) -> SigningKey | None:
        if kid is None:
            usable = [key for key in self._keys if algorithm in key.algorithms]
            return usable[0] if len(usable) == 1 else None
        return next((key for key in self._keys if key.kid == kid and algorithm in key.algorithms), None)

    async def _refresh(self) -> None:
        """Fetch the keys, unless another request did while this one waited, or one was tried too recently."""
        attempts = self._attempts
        async with self._lock:
            if self._attempts != attempts or self._clock() - self._last_attempt < self._refetch_seconds:
                return
            self._attempts += 1
            self._last_attempt = self._clock()
            try:
                with anyio.fail_after(self._deadline):
                    keys, max_age = await self._fetch_keys()
            except (FetchError, TimeoutError) as exc:
                problem = str(exc) if isinstance(exc, FetchError) else f"{self._server.issuer} did not answer in time"
                self._problem = f"the authorization server's keys could not be fetched: {problem}"
                logger.warning("OAuth: %s%s", self._problem, "; keeping the keys fetched before" if self._keys else "")
                return
            self._keys, self._problem = keys, None
            low, high = KEYS_TTL_BOUNDS
            self._keys_expire = self._clock() + (KEYS_TTL_SECONDS if max_age is None else min(max(max_age, low), high))
            logger.info("OAuth: fetched %d signing key(s) of %s", len(keys), self._server.issuer)

    async def _fetch_keys(self) -> tuple[tuple[SigningKey, ...], float | None]:
        if self._jwks_url is None:
            self._jwks_url = await self._discover()
        document, max_age = await self._get_json(self._jwks_url)
        keys = parse_jwks(document)
        if not keys:
            raise FetchError(f"{self._jwks_url} has no usable signing key ({', '.join(ALGORITHMS)})")
        return keys, max_age

    async def _discover(self) -> str:
        """The issuer's ``jwks_uri``, from its OpenID Connect discovery document or its RFC 8414 metadata."""
        issuer = self._server.issuer
        for url in discovery_urls(issuer):
            try:
                document, _ = await self._get_json(url)
            except FetchError as exc:
                if exc.status == 404:
                    continue
                raise
            if document.get("issuer") != issuer:
                raise FetchError(
                    f"{url} names the issuer {str(document.get('issuer'))[:200]!r}, not {issuer!r}: set "
                    "SORA_MCP_OAUTH_ISSUER to exactly the issuer the authorization server names"
                )
            jwks_uri = document.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not _safe_url(jwks_uri):
                raise FetchError(f"{url} gives no https jwks_uri: set SORA_MCP_OAUTH_JWKS_URL")
            return jwks_uri
        raise FetchError(f"{issuer} publishes no discovery document: set SORA_MCP_OAUTH_JWKS_URL")

    async def _get_json(self, url: str) -> tuple[dict[str, Any], float | None]:
        """A JSON object from ``url`` (at most ``MAX_DOCUMENT_BYTES``) and its ``Cache-Control: max-age``."""
        if self._http is None:
            raise RuntimeError("JwtVerifier is not open: enter it (the app's lifespan does)")
        body = bytearray()
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise FetchError(f"{url} answered {response.status_code}", status=response.status_code)
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise FetchError(f"{url} sent more than {MAX_DOCUMENT_BYTES // 1024} KiB")
                cache_control = response.headers.get("cache-control", "")
        except httpx2.HTTPError as exc:
            raise FetchError(f"{url} could not be reached ({type(exc).__name__})") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise FetchError(f"{url} did not answer JSON") from None
        if not isinstance(document, dict):
            raise FetchError(f"{url} did not answer a JSON object")
        match = re.search(r"(?:^|[,\s])max-age=(\d+)", cache_control)
        return document, float(match.group(1)) if match else None


def parse_jwks(document: dict[str, Any]) -> tuple[SigningKey, ...]:
    """The signing keys of a JWK Set that an accepted algorithm can use; others (encryption keys, symmetric
    keys, unknown types) are skipped."""
    from jwt import PyJWK, PyJWTError

    keys = document.get("keys")
    if not isinstance(keys, list):
        return ()
    usable: list[SigningKey] = []
    for entry in keys[:MAX_KEYS]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue
        try:
            jwk = PyJWK(entry)
        except (PyJWTError, ValueError, TypeError, KeyError):
            continue
        algorithms = _key_algorithms(entry)
        if algorithms:
            kid = entry.get("kid")
            usable.append(SigningKey(kid if isinstance(kid, str) else None, algorithms, jwk.key))
    return tuple(usable)


def _key_algorithms(entry: dict[str, Any]) -> tuple[str, ...]:
    kty, crv, alg = entry.get("kty"), entry.get("crv"), entry.get("alg")
    allowed = ALGORITHMS_BY_KEY.get((kty, None if kty == "RSA" else crv), ())
    if alg is None:
        return allowed
    return (alg,) if alg in allowed else ()


def discovery_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be: OpenID Connect discovery (appended to the issuer), RFC 8414 (inserted
    before the issuer's path), and OpenID Connect inserted too, as the MCP authorization spec lists them."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    urls = [
        f"{origin}{path}/.well-known/openid-configuration",
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
    ]
    return list(dict.fromkeys(urls))


def token_scopes(claims: dict[str, Any]) -> set[str]:
    """The scopes a token grants: ``scope`` (RFC 9068, space-separated) and ``scp`` (a list, or a string)."""
    scopes: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(item for item in value if isinstance(item, str))
    return scopes


def _safe_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))
