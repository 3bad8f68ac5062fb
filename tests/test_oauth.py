"""OAuth 2.1 resource server: a local issuer (keys made here, discovery and JWKS served on loopback by uvicorn),
tokens minted with PyJWT, sora-mcp's HTTP app on real uvicorn, the official client.

The verifier's cache and refetch rules are tested on :class:`JwtVerifier` itself with an injected clock, against
the same issuer over real HTTP; its request log counts what reached the issuer.
"""

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from conftest import INITIALIZE, STREAMABLE_ACCEPT, make_settings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fake_gateway import FakeGateway
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from mcp import Client
from mcp.client.auth.utils import extract_resource_metadata_from_www_auth
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sora_mcp.config import Settings, describe_settings_error
from sora_mcp.embedded import serve_app
from sora_mcp.http import HttpConfigError, check_exposure, create_app
from sora_mcp.oauth import REFETCH_SECONDS, JwtVerifier, ResourceServer, TokenRejected, parse_jwks

pytestmark = pytest.mark.anyio

PUBLIC_URL = "https://mcp.example.com/mcp"
METADATA_URL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
STATIC_TOKEN = "static-token-canary-7d1e5b"


# --------------------------------------------------------------------------------------------- the local issuer


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any
    public_jwk: dict[str, Any]


def rsa_key(kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, "RS256", private, {**jwk, "kid": kid, "use": "sig", "alg": "RS256"})


def ec_key(kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(kid, "ES256", private, {**ECAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid})


def ed_key(kid: str) -> SigningKey:
    private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid, "EdDSA", private, {**OKPAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid})


RSA = rsa_key("rsa-1")
RSA_NEXT = rsa_key("rsa-2")
ATTACKER = rsa_key("rsa-1")  # same kid as the issuer's key, another key
EC = ec_key("ec-1")
ED = ed_key("ed-1")


class FakeIssuer:
    """An authorization server's public side: discovery (OpenID Connect, or RFC 8414 path-inserted) and a JWKS.
    ``hits`` counts requests by path; ``hang`` holds JWKS requests until ``release`` is set."""

    def __init__(self, keys: list[SigningKey], *, path: str = "", discovery: str = "openid") -> None:
        self.keys = keys
        self.path = path
        self.discovery = discovery
        self.base = ""
        self.hits: Counter[str] = Counter()
        self.named_issuer: str | None = None
        self.cache_control: str | None = None
        self.jwks_padding = 0
        self.hang = False
        self.release = anyio.Event()

    @property
    def url(self) -> str:
        return self.base + self.path

    def app(self) -> Starlette:
        async def metadata(request: Request) -> Response:
            self.hits[request.url.path] += 1
            return JSONResponse({"issuer": self.named_issuer or self.url, "jwks_uri": f"{self.url}/jwks"})

        async def jwks(request: Request) -> Response:
            self.hits[request.url.path] += 1
            if self.hang:
                await self.release.wait()
            document: dict[str, Any] = {"keys": [key.public_jwk for key in self.keys]}
            if self.jwks_padding:
                document["padding"] = "x" * self.jwks_padding
            headers = {"Cache-Control": self.cache_control} if self.cache_control else None
            return JSONResponse(document, headers=headers)

        if self.discovery == "openid":
            where = f"{self.path}/.well-known/openid-configuration"
        else:
            where = f"/.well-known/oauth-authorization-server{self.path}"
        return Starlette(routes=[Route(where, metadata), Route(f"{self.path}/jwks", jwks)])

    def mint(self, key: SigningKey = RSA, **claims: Any) -> str:
        """A token signed by ``key``: for PUBLIC_URL, from this issuer, valid 5 minutes, scope ``video``;
        ``claims`` override (``None`` removes a claim)."""
        now = int(time.time())
        payload = {"iss": self.url, "aud": PUBLIC_URL, "sub": "alice", "client_id": "claude", "iat": now}
        payload |= {"exp": now + 300, "scope": "video"}
        payload |= claims
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})


@asynccontextmanager
async def issuing(issuer: FakeIssuer) -> AsyncIterator[FakeIssuer]:
    async with serve_app(issuer.app()) as url:
        issuer.base = url
        try:
            yield issuer
        finally:
            issuer.release.set()


@pytest.fixture
async def issuer() -> AsyncIterator[FakeIssuer]:
    async with issuing(FakeIssuer([RSA, EC, ED])) as running:
        yield running


@pytest.fixture
async def gateway_url(fake: FakeGateway) -> AsyncIterator[str]:
    async with serve_app(fake.build_app()) as url:
        yield url


def oauth_settings(issuer_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"mcp_oauth_issuer": issuer_url, "mcp_public_url": PUBLIC_URL}
    return make_settings(**(values | overrides))


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    async with serve_app(create_app(settings), lifespan=True) as url:
        yield url


def unsigned(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A JWT assembled by hand: ``sign(signing_input) -> bytes``, or no signature (``alg: none``)."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    signature = part(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def claims_of(token: str) -> dict[str, Any]:
    value: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return value


async def initialize(url: str, authorization: str | None) -> httpx2.Response:
    headers = {**STREAMABLE_ACCEPT, **({"Authorization": authorization} if authorization else {})}
    async with httpx2.AsyncClient(base_url=url) as http:
        return await http.post("/mcp", json=INITIALIZE, headers=headers)


# --------------------------------------------------------------------------------------------- accepted tokens


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=["RS256", "ES256", "EdDSA"])
async def test_the_official_client_with_an_access_token_lists_and_calls_the_tools(
    issuer: FakeIssuer, gateway_url: str, key: SigningKey
) -> None:
    """A token from the issuer, signed with any of its keys, lets the official client over Streamable HTTP list
    the tools and create a video."""
    token = issuer.mint(key)
    async with (
        serving(oauth_settings(issuer.url, base_url=gateway_url, mcp_oauth_scopes="video")) as url,
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        tools = await client.list_tools()
        created = await client.call_tool("create_video", {"prompt": "a cat on a skateboard"})
    assert "create_video" in {tool.name for tool in tools.tools}
    assert not created.is_error and created.structured_content is not None
    assert created.structured_content["status"] == "queued"
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


async def test_audience_list_scp_claim_and_an_explicit_audience_are_understood(issuer: FakeIssuer) -> None:
    """``aud`` may be a list, scopes may come as ``scp`` (a list, or Entra's string); SORA_MCP_OAUTH_AUDIENCE
    replaces the public URL as the audience."""
    async with serving(oauth_settings(issuer.url, mcp_oauth_scopes="video,upload")) as url:
        listed = issuer.mint(aud=["https://other.example.com", PUBLIC_URL], scope=None, scp=["video", "upload"])
        entra = issuer.mint(scope=None, scp="upload video")
        answers = [await initialize(url, f"Bearer {token}") for token in (listed, entra)]
    assert [answer.status_code for answer in answers] == [200, 200]
    async with serving(oauth_settings(issuer.url, mcp_oauth_audience="api://sora")) as url:
        custom = await initialize(url, f"Bearer {issuer.mint(aud='api://sora')}")
        default = await initialize(url, f"Bearer {issuer.mint()}")
    assert (custom.status_code, default.status_code) == (200, 401)


async def test_the_static_token_still_works_alongside_oauth(issuer: FakeIssuer) -> None:
    """With SORA_MCP_AUTH_TOKEN too, the static token is accepted as is; anything else is verified as a JWT."""
    async with serving(oauth_settings(issuer.url, mcp_auth_token=STATIC_TOKEN)) as url:
        static = await initialize(url, f"Bearer {STATIC_TOKEN}")
        access = await initialize(url, f"Bearer {issuer.mint()}")
        wrong = await initialize(url, f"Bearer {STATIC_TOKEN}x")
    assert (static.status_code, access.status_code, wrong.status_code) == (200, 200, 401)
    assert 'error_description="the token is not a JWT"' in wrong.headers["www-authenticate"]
    assert issuer.hits["/jwks"] == 1  # the static token needed no key


async def test_a_session_stays_with_the_principal_that_opened_it(issuer: FakeIssuer) -> None:
    """The verified token is the request's user, so the SDK binds a 2025-11-25 session to its principal: another
    user's valid token cannot use it (404, as for an unknown session)."""
    alice, bob = issuer.mint(sub="alice"), issuer.mint(sub="bob")
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    async with serving(oauth_settings(issuer.url)) as url, httpx2.AsyncClient(base_url=url) as http:
        opened = await http.post(
            "/mcp", json=INITIALIZE, headers={**STREAMABLE_ACCEPT, "Authorization": f"Bearer {alice}"}
        )
        session = {
            **STREAMABLE_ACCEPT,
            "Mcp-Session-Id": opened.headers["mcp-session-id"],
            "Mcp-Protocol-Version": "2025-11-25",
        }
        as_bob = await http.post("/mcp", json=listing, headers={**session, "Authorization": f"Bearer {bob}"})
        as_alice = await http.post("/mcp", json=listing, headers={**session, "Authorization": f"Bearer {alice}"})
    assert (opened.status_code, as_bob.status_code, as_alice.status_code) == (200, 404, 200)


# --------------------------------------------------------------------------------------------- refused tokens


def refused_tokens(issuer: FakeIssuer) -> dict[str, tuple[str | None, str]]:
    """Case -> (Authorization header, the error_description expected)."""
    now = int(time.time())
    good = claims_of(issuer.mint())
    public_pem = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = unsigned(
        {"alg": "HS256", "typ": "JWT", "kid": RSA.kid}, good, lambda data: hmac.digest(public_pem, data, hashlib.sha256)
    )
    signed_none = unsigned({"alg": "none", "typ": "JWT", "kid": RSA.kid}, good)
    return {
        "expired": (issuer.mint(exp=now - 3600, iat=now - 7200), "the token has expired"),
        "not-yet-valid": (issuer.mint(nbf=now + 3600), "the token is not valid yet (nbf or iat in the future)"),
        "wrong-audience": (
            issuer.mint(aud="https://other.example.com/mcp"),
            f"the token is not for this server (aud must be {PUBLIC_URL})",
        ),
        "no-audience": (issuer.mint(aud=None), "the token has no aud claim"),
        "wrong-issuer": (issuer.mint(iss="https://evil.example.com"), f"the token was not issued by {issuer.url}"),
        "bad-signature": (issuer.mint(ATTACKER), "the token's signature does not verify with the issuer's key"),
        "alg-none": (signed_none, "the token's signing algorithm is not accepted (only RS256, RS384, RS512, PS256, "
                     "PS384, PS512, ES256, ES384, ES512, EdDSA)"),
        "hs256-with-the-public-key": (confused, "the token's signing algorithm is not accepted (only RS256, RS384, "
                                      "RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)"),
        "unknown-kid": (issuer.mint(rsa_key("rsa-unknown")), "the token's key (kid) is not among the issuer's keys"),
        "garbage": ("not-a-jwt", "the token is not a JWT"),
    }  # fmt: skip


async def test_refused_tokens_get_401_with_the_challenge_naming_the_metadata(
    issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """Expired, not yet valid, wrong or missing audience, wrong issuer, another key's signature, ``alg: none``, HS256
    keyed with the public key, an unknown kid, garbage: each 401 with ``error="invalid_token"``, the reason, and
    ``resource_metadata``; the MCP client shows the JSON-RPC message. No token: the challenge without an error
    (RFC 6750 section 3.1). Tokens never reach the log."""
    cases = refused_tokens(issuer)
    async with serving(oauth_settings(issuer.url, mcp_oauth_scopes="video")) as url:
        answers = {case: await initialize(url, f"Bearer {token}") for case, (token, _) in cases.items()}
        missing = await initialize(url, None)
        basic = await initialize(url, "Basic dXNlcjpwYXNz")
    for case, (token, description) in cases.items():
        answer = answers[case]
        assert answer.status_code == 401, case
        assert answer.headers["www-authenticate"] == (
            f'Bearer realm="sora-mcp", error="invalid_token", error_description="{description}", '
            f'resource_metadata="{METADATA_URL}"'
        ), case
        assert answer.json()["error"]["message"].startswith(f"Unauthorized ({description}): send an access token")
        assert token is not None and token not in caplog.text
    for answer in (missing, basic):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == (
            f'Bearer realm="sora-mcp", scope="video", resource_metadata="{METADATA_URL}"'
        )
        assert extract_resource_metadata_from_www_auth(answer) == METADATA_URL  # as the official client reads it
    assert issuer.hits["/jwks"] == 1  # the unknown kid came within REFETCH_SECONDS of the first fetch


async def test_a_token_without_the_required_scopes_gets_403_insufficient_scope(issuer: FakeIssuer) -> None:
    """Every scope in SORA_MCP_OAUTH_SCOPES must be granted; a valid token lacking one is 403, not 401."""
    async with serving(oauth_settings(issuer.url, mcp_oauth_scopes="video,upload")) as url:
        answer = await initialize(url, f"Bearer {issuer.mint(scope='video read')}")
    assert answer.status_code == 403
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="sora-mcp", error="insufficient_scope", error_description="the token lacks the scope upload", '
        f'scope="video upload", resource_metadata="{METADATA_URL}"'
    )
    assert answer.json()["error"]["message"].startswith("Forbidden (the token lacks the scope upload)")


async def test_an_unreachable_issuer_means_a_quick_401_naming_the_problem(caplog: pytest.LogCaptureFixture) -> None:
    """An issuer nobody answers at: 401 with the reason at once, a warning in the log, no crash; the next request
    within REFETCH_SECONDS does not try again."""
    async with issuing(FakeIssuer([RSA])) as gone:
        pass
    async with serving(oauth_settings(gone.url)) as url:
        with anyio.fail_after(5):
            first = await initialize(url, f"Bearer {gone.mint()}")
            second = await initialize(url, f"Bearer {gone.mint()}")
    reason = "cannot verify tokens now: the authorization server's keys could not be fetched"
    for answer in (first, second):
        assert answer.status_code == 401
        unreachable = f"{gone.url}/.well-known/openid-configuration could not be reached"
        assert f'error_description="{reason}: {unreachable}' in answer.headers["www-authenticate"]
    assert caplog.text.count("OAuth: the authorization server's keys could not be fetched") == 1


# --------------------------------------------------------------------------------------------- metadata and discovery


async def test_the_protected_resource_metadata_is_rfc_9728_at_both_paths(issuer: FakeIssuer) -> None:
    """The metadata, open to all at the root and the path-suffixed well-known URL, names the resource, the issuer,
    the scopes and header bearer tokens; the official client's model reads it. The authorization server's paths
    answer 404 here (never 401), /healthz stays open, everything else needs a token."""
    expected = {
        "resource": PUBLIC_URL,
        "authorization_servers": [issuer.url],
        "scopes_supported": ["video"],
        "bearer_methods_supported": ["header"],
    }
    paths = ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp")
    settings = oauth_settings(issuer.url, mcp_oauth_scopes="video")
    async with serving(settings) as url, httpx2.AsyncClient(base_url=url) as http:
        documents = [await http.get(path) for path in paths]
        head = await http.head("/.well-known/oauth-protected-resource/mcp")
        posted = await http.post("/.well-known/oauth-protected-resource/mcp")
        elsewhere = [
            await http.get(path)
            for path in (
                "/.well-known/oauth-authorization-server",
                "/.well-known/oauth-authorization-server/mcp",
                "/.well-known/openid-configuration",
                "/.well-known/oauth-protected-resource/other",
                "/register",
                "/token",
            )
        ]
        health = await http.get("/healthz")
        unknown = await http.get("/anything")
    for document in documents:
        assert document.status_code == 200
        assert document.json() == expected
        assert document.headers["cache-control"] == "public, max-age=3600"
        ProtectedResourceMetadata.model_validate(document.json())
    assert (head.status_code, posted.status_code, health.status_code, unknown.status_code) == (200, 404, 200, 401)
    for answer in elsewhere:
        assert answer.status_code == 404
        assert answer.json()["error_description"] == (
            f"Not found: this server is an OAuth resource server; its authorization server is {issuer.url} "
            f"(see {METADATA_URL})."
        )
    assert issuer.hits == {}  # serving metadata never needs the issuer


async def test_over_sse_the_metadata_is_suffixed_with_the_sse_path(issuer: FakeIssuer) -> None:
    """The SSE transport's endpoint is protected the same way; its metadata is also at the /sse-suffixed path."""
    public = "https://mcp.example.com/sse"
    settings = oauth_settings(issuer.url, mcp_public_url=public)
    app = create_app(settings, transport="sse")
    async with serve_app(app, lifespan=True) as url, httpx2.AsyncClient(base_url=url) as http:
        document = await http.get("/.well-known/oauth-protected-resource/sse")
        refused = await http.get("/sse")
    assert document.json()["resource"] == public
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].endswith(
        'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/sse"'
    )


@asynccontextmanager
async def verifier_for(issuer: FakeIssuer, clock: list[float], **options: Any) -> AsyncIterator[JwtVerifier]:
    server = ResourceServer.from_settings(oauth_settings(issuer.url), "/mcp")
    assert server is not None
    async with JwtVerifier(server, clock=lambda: clock[0], **options) as verifier:
        yield verifier


async def test_an_issuer_with_a_path_is_found_through_rfc_8414_metadata() -> None:
    """An issuer at ``/tenant`` without OpenID discovery: its RFC 8414 document at the path-inserted URL is used
    after the OpenID one answers 404."""
    tenant_issuer = FakeIssuer([RSA], path="/tenant", discovery="rfc8414")
    async with issuing(tenant_issuer) as tenant, verifier_for(tenant, [0.0]) as verifier:
        access = await verifier.verify(tenant.mint())
    assert (access.client_id, access.subject, access.scopes) == ("claude", "alice", ["video"])
    assert access.claims is not None and access.claims["iss"] == tenant.url
    assert tenant.hits == {"/.well-known/oauth-authorization-server/tenant": 1, "/tenant/jwks": 1}


async def test_a_discovery_document_naming_another_issuer_is_refused(issuer: FakeIssuer) -> None:
    """The discovery document must name exactly the configured issuer (RFC 8414 section 3.3)."""
    issuer.named_issuer = "https://evil.example.com"
    async with verifier_for(issuer, [0.0]) as verifier:
        with pytest.raises(TokenRejected, match="set SORA_MCP_OAUTH_ISSUER to exactly the issuer"):
            await verifier.verify(issuer.mint())
    assert issuer.hits["/jwks"] == 0


async def test_an_oversized_jwks_is_refused(issuer: FakeIssuer) -> None:
    """A JWK Set over 256 KiB is not read to its end: tokens are refused, memory stays bounded."""
    issuer.jwks_padding = 300 * 1024
    async with verifier_for(issuer, [0.0]) as verifier:
        with pytest.raises(TokenRejected, match="jwks sent more than 256 KiB"):
            await verifier.verify(issuer.mint())


async def test_a_hanging_issuer_is_abandoned_at_the_deadline(issuer: FakeIssuer) -> None:
    """An issuer that accepts the connection and never answers: refused after the fetch deadline, not a hang."""
    issuer.hang = True
    async with verifier_for(issuer, [0.0], deadline_seconds=0.3) as verifier:
        with anyio.fail_after(3), pytest.raises(TokenRejected, match="did not answer in time"):
            await verifier.verify(issuer.mint())


def test_only_usable_signing_keys_of_a_jwks_are_kept() -> None:
    """Encryption keys, symmetric keys, malformed or unknown entries and keys whose alg does not fit their type are
    skipped, never a crash; a key without alg may verify what its type allows."""
    rsa_without_alg = {name: value for name, value in RSA.public_jwk.items() if name != "alg"}
    document = {
        "keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**RSA.public_jwk, "kid": "enc", "use": "enc"},
            {**RSA.public_jwk, "kid": "confused", "alg": "HS256"},
            {**EC.public_jwk, "kid": "wrong-curve", "alg": "ES384"},
            {"kty": "RSA", "kid": "broken", "n": 5},
            {"kty": ["EC"], "crv": {}},
            "not a key",
            rsa_without_alg,
            EC.public_jwk,
        ]
    }
    keys = parse_jwks(document)
    assert [(key.kid, key.algorithms) for key in keys] == [
        ("rsa-1", ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")),
        ("ec-1", ("ES256",)),
    ]
    assert parse_jwks({"keys": "none"}) == parse_jwks({}) == ()


# --------------------------------------------------------------------------------------------- the key cache


async def test_a_rotated_key_is_fetched_once_the_refetch_interval_has_passed(issuer: FakeIssuer) -> None:
    """The issuer starts signing with a new kid: a token naming it is refused within REFETCH_SECONDS of the last
    fetch, then accepted after one refetch; a token of the old key still works from the cache."""
    clock = [100.0]
    async with verifier_for(issuer, clock) as verifier:
        await verifier.verify(issuer.mint(RSA))
        issuer.keys = [RSA, RSA_NEXT]
        with pytest.raises(TokenRejected, match="kid"):
            await verifier.verify(issuer.mint(RSA_NEXT))
        clock[0] += REFETCH_SECONDS
        rotated = await verifier.verify(issuer.mint(RSA_NEXT))
        await verifier.verify(issuer.mint(RSA))
    assert rotated.subject == "alice"
    assert issuer.hits["/jwks"] == 2
    assert issuer.hits["/.well-known/openid-configuration"] == 1  # discovery once per process


async def test_a_flood_of_unknown_kids_fetches_the_keys_at_most_once_per_interval(issuer: FakeIssuer) -> None:
    """Fifty concurrent tokens naming bogus kids cause one JWKS fetch, and fifty more in the same interval none."""
    clock = [100.0]
    bogus = [issuer.mint(rsa_key(f"bogus-{n}")) for n in range(3)]
    async with verifier_for(issuer, clock) as verifier:
        await verifier.verify(issuer.mint())
        clock[0] += REFETCH_SECONDS

        async def try_all() -> int:
            refused = 0

            async def attempt(token: str) -> None:
                nonlocal refused
                with pytest.raises(TokenRejected):
                    await verifier.verify(token)
                refused += 1

            async with anyio.create_task_group() as tg:
                for n in range(50):
                    tg.start_soon(attempt, bogus[n % len(bogus)])
            return refused

        assert await try_all() == 50
        assert issuer.hits["/jwks"] == 2
        clock[0] += REFETCH_SECONDS / 2
        assert await try_all() == 50
    assert issuer.hits["/jwks"] == 2


async def test_keys_are_kept_for_their_max_age_and_reused_when_a_refetch_fails(issuer: FakeIssuer) -> None:
    """``Cache-Control: max-age`` (within bounds) sets how long keys are kept; expired keys are refetched, and if
    the issuer is down then, the old keys still verify."""
    issuer.cache_control = "public, max-age=120"
    clock = [100.0]
    async with verifier_for(issuer, clock, deadline_seconds=0.3) as verifier:
        await verifier.verify(issuer.mint())
        clock[0] += 119
        await verifier.verify(issuer.mint())
        assert issuer.hits["/jwks"] == 1
        clock[0] += 2
        await verifier.verify(issuer.mint())
        assert issuer.hits["/jwks"] == 2
        issuer.hang = True
        clock[0] += 121
        access = await verifier.verify(issuer.mint())
    assert access.subject == "alice"
    assert issuer.hits["/jwks"] == 3


# --------------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"SORA_MCP_OAUTH_ISSUER": "http://auth.example.com"},
            "SORA_MCP_OAUTH_ISSUER: Value error, must be an https URL (http only with a loopback host such as "
            "127.0.0.1) (got 'http://auth.example.com')",
        ),
        (
            {"SORA_MCP_OAUTH_ISSUER": "https://auth.example.com"},
            "SORA_MCP_OAUTH_ISSUER needs SORA_MCP_PUBLIC_URL: the URL clients use for this server's MCP endpoint "
            "(e.g. https://mcp.example.com/mcp), the resource its access tokens are issued for",
        ),
        (
            {"SORA_MCP_OAUTH_ISSUER": "https://auth.example.com", "SORA_MCP_PUBLIC_URL": "http://mcp.example.com/mcp"},
            "SORA_MCP_PUBLIC_URL: Value error, must be an https URL",
        ),
        (
            {"SORA_MCP_OAUTH_AUDIENCE": "api://sora", "SORA_MCP_OAUTH_SCOPES": "video"},
            "SORA_MCP_OAUTH_AUDIENCE, SORA_MCP_OAUTH_SCOPES set without SORA_MCP_OAUTH_ISSUER",
        ),
        ({"SORA_MCP_OAUTH_ISSUER": "https://auth.example.com/?tenant=1"}, "must have no query or fragment"),
        ({"SORA_MCP_OAUTH_SCOPES": 'video,"bad"'}, "SORA_MCP_OAUTH_SCOPES: Value error, '\"bad\"' is not an OAuth"),
    ],
    ids=["http-issuer", "no-public-url", "http-public-url", "details-without-issuer", "query", "bad-scope"],
)
def test_oauth_settings_are_validated_at_start_up_naming_the_variable(
    variables: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert message in describe_settings_error(caught.value)
    with pytest.raises(HttpConfigError, match="invalid configuration"):
        create_app()


def test_valid_oauth_settings_keep_the_issuer_as_written_and_allow_a_public_bind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issuer is compared with ``iss`` as written (no slash added or removed); loopback issuers may use http;
    blank variables are unset; OAuth alone satisfies the non-loopback exposure check."""
    google = Settings(mcp_oauth_issuer="https://accounts.google.com", mcp_public_url="https://mcp.example.com/mcp")
    auth0 = Settings(mcp_oauth_issuer="https://tenant.auth0.com/", mcp_public_url="https://mcp.example.com/mcp")
    local = Settings(mcp_oauth_issuer="http://127.0.0.1:9000/realms/x", mcp_public_url="http://localhost:8000/mcp")
    assert [str(s.mcp_oauth_issuer) for s in (google, auth0, local)] == [
        "https://accounts.google.com",
        "https://tenant.auth0.com/",
        "http://127.0.0.1:9000/realms/x",
    ]
    monkeypatch.setenv("SORA_MCP_OAUTH_ISSUER", " ")
    monkeypatch.setenv("SORA_MCP_OAUTH_SCOPES", "")
    assert Settings().mcp_oauth_issuer is None
    check_exposure(make_settings(mcp_allowed_hosts="mcp.example.com", **_oauth(google)), "0.0.0.0")


def _oauth(settings: Settings) -> dict[str, object]:
    return {"mcp_oauth_issuer": str(settings.mcp_oauth_issuer), "mcp_public_url": str(settings.mcp_public_url)}


@pytest.mark.slow
def test_pyjwt_is_imported_only_when_a_token_is_verified() -> None:
    """PyJWT (and its crypto back end) loads on the first access token, not with the HTTP app: a server without
    OAuth never pays for it, one with OAuth not before it serves."""
    code = (
        "import sys\n"
        "from sora_mcp.config import Settings\n"
        "from sora_mcp.http import create_app\n"
        "create_app(Settings(mcp_auth_token='t'))\n"
        "create_app(Settings(mcp_oauth_issuer='https://auth.example.com', mcp_public_url='https://m.example.com/mcp'))\n"
        "print('jwt' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
