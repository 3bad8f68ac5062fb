"""OAuth 2.1 resource server: the HTTP transports accept access tokens that an existing authorization server
(Auth0, Keycloak, Entra ID, Google, any OpenID Connect issuer) issued for this server.

With ``SORA_MCP_OAUTH_ISSUER`` and ``SORA_MCP_PUBLIC_URL`` set, :func:`sora_mcp.http.create_app` uses
:class:`ResourceServer` to

- publish RFC 9728 protected-resource metadata, open to anyone, at ``/.well-known/oauth-protected-resource`` and
  its path-suffixed forms (:meth:`ResourceServer.metadata_routes`); the rest of OAuth discovery answers 404 here,
  since clients find the authorization server through that document;
- put :class:`OAuthBearerAuth` in front of the MCP endpoint: no token, or a refused one, gets ``401`` with the
  challenge the MCP authorization spec requires (``WWW-Authenticate: Bearer ..., resource_metadata="..."``), a
  token without the required scopes ``403 insufficient_scope``; ``SORA_MCP_AUTH_TOKEN``, if set, still works;
- verify JWT access tokens with :class:`JwtVerifier`: signature (asymmetric algorithms only) against the issuer's
  JWK Set, found through its discovery document, cached and refetched on key rotation at a bounded rate; then
  ``iss``, ``aud``, ``exp`` (``nbf``, ``iat``) and scopes.

Tokens are never logged. ``jwt`` (PyJWT, with ``cryptography``) is imported on first use, so only a server with
OAuth on pays for it.
"""

import hmac
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.types import INVALID_REQUEST
from pydantic import SecretStr
from starlette.authentication import AuthCredentials
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sora_mcp.config import Settings
from sora_mcp.oauth_tokens import REFETCH_SECONDS, JwtVerifier, TokenRejected, parse_jwks

__all__ = [
    "REFETCH_SECONDS",
    "JwtVerifier",
    "OAuthBearerAuth",
    "ResourceServer",
    "TokenRejected",
    "bearer_credentials",
    "parse_jwks",
]

logger = logging.getLogger(__name__)

WELL_KNOWN_RESOURCE = "/.well-known/oauth-protected-resource"
REALM = "sora-mcp"


@dataclass(frozen=True)
class ResourceServer:
    """What the resource server is: its issuer, its public URL, what tokens must carry, where metadata is."""

    issuer: str
    resource: str
    """The public URL of the MCP endpoint (``SORA_MCP_PUBLIC_URL``)."""
    audiences: tuple[str, ...]
    scopes: tuple[str, ...]
    jwks_url: str | None
    endpoint_path: str
    """Where this app serves MCP (``/mcp``, ``/sse``): metadata is served suffixed with it too."""

    @classmethod
    def from_settings(cls, settings: Settings, endpoint_path: str) -> "ResourceServer | None":
        """The resource server ``settings`` configure (validated by :class:`Settings`), or ``None`` without OAuth."""
        if settings.mcp_oauth_issuer is None or settings.mcp_public_url is None:
            return None
        resource = str(settings.mcp_public_url)
        if settings.mcp_oauth_audience is not None:
            audiences: tuple[str, ...] = (settings.mcp_oauth_audience,)
        else:  # the URL as configured, and spelled with or without a trailing slash
            audiences = tuple(dict.fromkeys((resource, resource.rstrip("/") or resource, resource.rstrip("/") + "/")))
        jwks = settings.mcp_oauth_jwks_url
        return cls(
            issuer=str(settings.mcp_oauth_issuer),
            resource=resource,
            audiences=audiences,
            scopes=settings.mcp_oauth_scopes,
            jwks_url=None if jwks is None else str(jwks),
            endpoint_path=endpoint_path,
        )

    @property
    def metadata_url(self) -> str:
        """The RFC 9728 metadata URL of the resource: the well-known path inserted before the resource's path."""
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN_RESOURCE}{parts.path.rstrip('/')}"

    def metadata(self) -> dict[str, Any]:
        """The RFC 9728 protected-resource metadata document."""
        document: dict[str, Any] = {"resource": self.resource, "authorization_servers": [self.issuer]}
        if self.scopes:
            document["scopes_supported"] = list(self.scopes)
        document["bearer_methods_supported"] = ["header"]
        return document

    def metadata_routes(self) -> list[Route]:
        """``GET`` (and ``HEAD``) of the metadata at the root well-known path and suffixed with the MCP endpoint's
        path and with the public URL's path (which differ behind a proxy that rewrites paths); no authentication."""
        document = self.metadata()

        async def metadata(_: Request) -> Response:
            headers = {"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"}
            return JSONResponse(document, headers=headers)

        suffixes = ("", self.endpoint_path.rstrip("/"), urlsplit(self.resource).path.rstrip("/"))
        return [Route(WELL_KNOWN_RESOURCE + suffix, metadata, methods=["GET"]) for suffix in dict.fromkeys(suffixes)]

    def challenge(self, refusal: TokenRejected) -> str:
        """The ``WWW-Authenticate`` value for ``refusal`` (RFC 6750 section 3, RFC 9728 section 5.1)."""
        parts = [f'realm="{REALM}"']
        if refusal.error is not None:
            parts.append(f'error="{refusal.error}"')
            parts.append(f'error_description="{_quotable(refusal.description)}"')
        if self.scopes and refusal.error in (None, "insufficient_scope"):
            parts.append(f'scope="{" ".join(self.scopes)}"')
        parts.append(f'resource_metadata="{self.metadata_url}"')
        return "Bearer " + ", ".join(parts)

    @property
    def not_here(self) -> str:
        """What the authorization server's paths answer on this server (404)."""
        return (
            f"Not found: this server is an OAuth resource server; its authorization server is {self.issuer} "
            f"(see {self.metadata_url})."
        )


class OAuthBearerAuth:
    """ASGI middleware in front of the MCP endpoint: the static token (if any) or a verified access token.

    A verified token's ``AccessToken`` becomes the request's user (the SDK binds each session to the principal
    that opened it) and ``mcp.server.auth.middleware.auth_context.get_access_token()`` inside tools.
    """

    def __init__(
        self, app: ASGIApp, server: ResourceServer, verifier: JwtVerifier, static_token: SecretStr | None
    ) -> None:
        self._app = app
        self._server = server
        self._verifier = verifier
        self._static = None if static_token is None else static_token.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        credentials = bearer_credentials(scope)
        if credentials is not None and self._static is not None and hmac.compare_digest(credentials, self._static):
            await self._app(scope, receive, send)
            return
        try:
            if not credentials:  # no header, another scheme, or nothing after "Bearer"
                raise TokenRejected("no bearer token", error=None)
            access = await self._verifier.verify(credentials.decode("ascii"))
        except UnicodeDecodeError:
            await self._refuse(scope, receive, send, TokenRejected("the token is not a JWT"))
            return
        except TokenRejected as refusal:
            await self._refuse(scope, receive, send, refusal)
            return
        user = AuthenticatedUser(access)
        scope["user"], scope["auth"] = user, AuthCredentials(access.scopes)
        reset = auth_context_var.set(user)
        try:
            await self._app(scope, receive, send)
        finally:
            auth_context_var.reset(reset)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refusal: TokenRejected) -> None:
        client = scope.get("client")
        logger.warning("Refused an MCP request from %s: %s", client[0] if client else "?", refusal.description)
        what = "Forbidden" if refusal.status == 403 else "Unauthorized"
        message = (
            f"{what} ({refusal.description}): send an access token from {self._server.issuer} for "
            f"{self._server.resource} as Authorization: Bearer <token> (see {self._server.metadata_url})"
        )
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}
        headers = {"WWW-Authenticate": self._server.challenge(refusal)}
        await JSONResponse(body, status_code=refusal.status, headers=headers)(scope, receive, send)


def bearer_credentials(scope: Scope) -> bytes | None:
    """The credentials of the request's ``Authorization: Bearer`` header; ``b""`` for another scheme, ``None``
    without the header."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else b""
    return None


def _quotable(text: str) -> str:
    """``text`` fit for a quoted-string in a header: printable ASCII, without quotes or backslashes."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "'" if c == '"' else "?" for c in text)[:300]
