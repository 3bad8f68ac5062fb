"""Shared pytest fixtures: a fake gateway (in memory through ASGITransport), settings without delays, clients."""

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import httpx2
import pytest
from fake_gateway import FakeGateway
from mcp import Client
from mcp.server import MCPServer
from node_clients import node_clients  # noqa: F401  (a fixture: the pinned npm clients)
from postgres import PostgresServer, find_bindir, running_server

from sora_mcp.client import SoraClient
from sora_mcp.config import Settings
from sora_mcp.server import AppState, build_server

API_KEY = "sk-test-0123456789abcdef"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
"""A raw 2025-11-25 ``initialize`` request, for tests that speak HTTP without the client."""
STREAMABLE_ACCEPT = {"Accept": "application/json, text/event-stream"}
"""The ``Accept`` header a Streamable HTTP POST must carry."""
TOOL_NAMES = [
    "create_character",
    "create_video",
    "download_video",
    "get_spending",
    "get_task",
    "inspect_video",
    "list_tasks",
    "player_state",
    "remix_video",
]
"""Every tool the server lists, sorted: a new tool is added here, and each transport's listing test checks it."""
GATEWAY_URL = "http://gateway.test"


@pytest.fixture
def anyio_backend() -> str:
    """Run anyio tests on asyncio only."""
    return "asyncio"


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own task journal directory (SORA_STATE_DIR), never the user's real one."""
    directory = tmp_path / "state"
    monkeypatch.setenv("SORA_STATE_DIR", str(directory))
    return directory


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: a key, the fake's URL, no back-off, fast polls, short timeouts."""
    values: dict[str, object] = {
        "api_key": API_KEY,
        "base_url": GATEWAY_URL,
        "max_retries": 2,
        "retry_backoff": 0,
        "poll_interval": 0.02,
        "timeout": 5,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]  # test helper: keyword overrides of any field


@pytest.fixture
def fake() -> FakeGateway:
    """A fake gateway that requires API_KEY; tasks complete 0.3 s (video) / 0.2 s (character) after creation."""
    return FakeGateway(api_key=API_KEY, video_seconds=0.3, character_seconds=0.2)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def http_client(fake: FakeGateway) -> AsyncIterator[httpx2.AsyncClient]:
    """An httpx2 client wired to the fake gateway in memory."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.build_app())) as http:
        yield http


@pytest.fixture
async def sora(settings: Settings, http_client: httpx2.AsyncClient) -> AsyncIterator[SoraClient]:
    """The gateway client under test, talking to the in-memory fake."""
    async with SoraClient(settings, http_client=http_client) as client:
        yield client


@pytest.fixture
def server(settings: Settings, http_client: httpx2.AsyncClient) -> MCPServer[AppState]:
    """The MCP server under test, its gateway client talking to the in-memory fake."""
    return build_server(settings, http_client=http_client)


@pytest.fixture(params=["auto", "legacy"])
async def mcp_client(request: pytest.FixtureRequest, server: MCPServer[AppState]) -> AsyncIterator[Client]:
    """The official MCP client in memory, in both protocol eras (2026-07-28 and the 2025-11-25 handshake)."""
    async with Client(server, mode=request.param) as client:
        yield client


@contextlib.contextmanager
def read_only_directory(directory: Path) -> Iterator[None]:
    """Make ``directory`` read-only, for root too (``chattr +i``) when running as root."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: cannot make a directory read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


# --------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole run, started from a temporary directory on a free port. Skipped
    where PostgreSQL is not installed, except on CI (``CI`` set), where its absence is a failure."""
    with started_postgres() as server:
        yield server


def started_postgres() -> contextlib.AbstractContextManager[PostgresServer]:
    """A PostgreSQL server of the caller's own (``tests/postgres.py``), or the test skipped where none is
    installed (failed on CI)."""
    if find_bindir() is None:
        not_installed("PostgreSQL", "postgresql")
    return running_server()


def not_installed(what: str, package: str) -> NoReturn:
    """A real component a test needs is missing: skipped here, a failure on CI (``CI`` set), where ``.ci/run``
    installs Debian's ``package``."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed; .ci/run installs Debian's {package} package")
    pytest.skip(f"{what} is not installed (Debian: apt-get install {package})")


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty database on the shared server (with its password)."""
    return postgres.database()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""The journal backends a parametrized test runs on."""


@pytest.fixture(params=BACKENDS)
def journal_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once per journal backend: with ``postgres``, ``SORA_DATABASE_URL`` names a new database, so
    every server the test builds from the environment keeps its journal there."""
    if request.param == "postgres":
        monkeypatch.setenv("SORA_DATABASE_URL", request.getfixturevalue("database_url"))
    return str(request.param)
