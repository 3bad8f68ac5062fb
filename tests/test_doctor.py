"""``sora-mcp doctor``: each gateway outcome told apart, configuration problems named, the key never printed."""

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpx2
import pytest
from conftest import API_KEY, make_settings
from fake_gateway import FakeGateway, refused_url, serve_in_thread
from journal_rows import fill

from sora_mcp.doctor import (
    PROBE_TASK_ID,
    Check,
    check_directory,
    check_gateway,
    describe_connection_error,
    diagnose,
    mask_key,
    render,
)
from sora_mcp.errors import APIConnectionError
from sora_mcp.journal import journal_path
from sora_mcp.journal_sqlite import SqliteStore
from sora_mcp.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # real subprocesses


def run_doctor(*options: str, **env: str) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Run ``python -m sora_mcp [options] doctor`` with exactly ``env``; return the exit code, the checks by
    subject and the summary line."""
    completed = subprocess.run(
        [sys.executable, "-m", "sora_mcp", *options, "doctor"],
        env={"PATH": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert API_KEY not in completed.stdout + completed.stderr
    assert completed.stderr == ""
    heading, *lines, summary = completed.stdout.splitlines()
    assert heading.startswith("sora-mcp 0.1.0 doctor (Python ")
    checks = {}
    for line in lines:
        status, subject, detail = line.split(maxsplit=2)
        checks[subject] = (status, detail)
    return completed.returncode, checks, summary


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeGateway, str]]:
    """A fake gateway on a real loopback port, requiring API_KEY."""
    fake = FakeGateway(api_key=API_KEY)
    with serve_in_thread(fake.build_app()) as url:
        yield fake, url


async def test_doctor_passes_when_the_gateway_accepts_the_key(served: tuple[FakeGateway, str], tmp_path: Path) -> None:
    """A 404 for the impossible probe task means the key was accepted: every check OK, exit code 0."""
    fake, url = served
    state, videos = tmp_path / "state", tmp_path / "videos"
    videos.mkdir()
    code, checks, summary = run_doctor(
        SORA_API_KEY=API_KEY, SORA_BASE_URL=url, SORA_STATE_DIR=str(state), SORA_OUTPUT_DIR=str(videos)
    )
    assert code == 0
    assert summary == "All checks passed."
    assert checks["configuration"] == ("OK", "the SORA_* settings are valid")
    assert checks["SORA_API_KEY"] == ("OK", "set: sk-...cdef")
    assert checks["SORA_BASE_URL"] == ("OK", url)
    status, detail = checks["gateway"]
    assert status == "OK"
    assert detail.startswith(f"reached {url} in ")
    assert detail.endswith("ms; the key was accepted (HTTP 404 for a task that cannot exist)")
    assert checks["SORA_STATE_DIR"] == ("OK", f"{state} does not exist yet; the server will create it")
    assert checks["SORA_OUTPUT_DIR"] == ("OK", f"{videos} is writable")
    assert checks["SORA_PRICES"] == ("OK", "estimates from sora-2 $0.10/s, sora-2-pro $0.30/s, character: no price")
    assert checks["spending"] == (
        "OK",
        "spent $0.00 today and $0.00 this month (estimates); budgets: daily none, monthly none; never asks",
    )
    assert checks["journal"] == (
        "OK",
        "empty: the server creates it at start-up; finished tasks are kept 90 days (SORA_JOURNAL_RETENTION_DAYS)",
    )
    assert not state.exists()  # the doctor reads the journal read-only: it neither creates nor upgrades it
    tools = ", ".join(tool.name for tool in await build_server(make_settings()).list_tools())
    assert checks["server"] == ("OK", f"MCP SDK {metadata.version('mcp')}: tools {tools}; prompts make_video")
    probes = [(request.method, request.path, request.headers["authorization"]) for request in fake.requests[-2:]]
    assert probes == [
        ("GET", f"/v1/videos/generations/{PROBE_TASK_ID}", f"Bearer {API_KEY}"),
        ("GET", f"/v1/characters_tasks/{PROBE_TASK_ID}", f"Bearer {API_KEY}"),
    ]


def test_doctor_reports_the_journal_size(served: tuple[FakeGateway, str], tmp_path: Path) -> None:
    """Rows and megabytes of the journal file (with its log), and the retention setting."""
    _, url = served
    state = tmp_path / "state"
    store = SqliteStore(journal_path(state), busy_timeout=5)
    store.run(lambda connection: None)
    store.close()
    fill(journal_path(state), 12_345, gateway=url, now=1.7e9)
    _, checks, _ = run_doctor(
        SORA_API_KEY=API_KEY, SORA_BASE_URL=url, SORA_STATE_DIR=str(state), SORA_JOURNAL_RETENTION_DAYS="0"
    )
    size = journal_path(state).stat().st_size / 1e6
    assert checks["journal"] == (
        "OK",
        f"12,345 rows, {size:.1f} MB; finished tasks are kept forever (SORA_JOURNAL_RETENTION_DAYS)",
    )


def test_doctor_fails_on_a_rejected_key(served: tuple[FakeGateway, str]) -> None:
    """A 401 is reported as a rejected key (the wrong key is not printed either), exit code 1."""
    _, url = served
    code, checks, summary = run_doctor(SORA_API_KEY="sk-wrong-key-000000000042", SORA_BASE_URL=url)
    assert code == 1
    assert checks["SORA_API_KEY"] == ("OK", "set: sk-...0042")
    assert checks["gateway"] == (
        "FAIL",
        "reached, but the key was rejected (HTTP 401: Authentication failed, please check your API key): copy "
        "SORA_API_KEY again from the gateway's console; a key of another service does not work here",
    )
    assert summary == "1 problem found: fix the FAIL lines above, then run sora-mcp doctor again."


def test_doctor_fails_on_an_empty_balance(served: tuple[FakeGateway, str]) -> None:
    """A 402 is reported as a balance to top up, exit code 1."""
    fake, url = served
    fake.fault("GET", "/v1/videos/generations/", status=402)
    code, checks, _ = run_doctor(SORA_API_KEY=API_KEY, SORA_BASE_URL=url)
    assert code == 1
    assert checks["gateway"] == (
        "FAIL",
        "reached, the key is known, but the balance is too low (HTTP 402: Insufficient account balance, please "
        "top up and try again): top up the account",
    )


def test_doctor_fails_when_the_gateway_is_unreachable() -> None:
    """A refused connection is reported as unreachable, naming the address, exit code 1."""
    url = refused_url()
    code, checks, _ = run_doctor(SORA_API_KEY=API_KEY, SORA_BASE_URL=url)
    assert code == 1
    status, detail = checks["gateway"]
    assert status == "FAIL"
    assert detail.startswith(f"unreachable: could not connect to the gateway at {url} (ConnectError")
    assert detail.endswith("Check the network (and any firewall or proxy) and SORA_BASE_URL")


def test_doctor_fails_without_a_key_and_does_not_probe(served: tuple[FakeGateway, str]) -> None:
    """No key: the key check says where to set it and the gateway is not asked anything."""
    fake, url = served
    sent_before = len(fake.requests)
    code, checks, summary = run_doctor(SORA_BASE_URL=url)
    assert code == 1
    status, detail = checks["SORA_API_KEY"]
    assert status == "FAIL"
    assert detail.startswith("not set: add SORA_API_KEY=<your dashlyai key> to the 'env' block")
    assert checks["gateway"] == ("FAIL", "not probed: there is no key to try")
    assert summary.startswith("2 problems found")
    assert len(fake.requests) == sent_before


def test_doctor_names_an_invalid_base_url() -> None:
    """An invalid SORA_BASE_URL is one FAIL line naming the variable and the value; nothing else runs."""
    code, checks, summary = run_doctor(SORA_API_KEY=API_KEY, SORA_BASE_URL="dashlyai.cc")
    assert code == 1
    assert checks == {
        "configuration": (
            "FAIL",
            "SORA_BASE_URL: Value error, must be an http(s) URL such as https://dashlyai.cc (got 'dashlyai.cc')",
        )
    }
    assert summary.startswith("1 problem found")


def test_sandbox_mode_without_a_key_only_warns(tmp_path: Path) -> None:
    """With --sandbox the missing key and the unprobed gateway are warnings, and the exit code is 0."""
    code, checks, summary = run_doctor("--sandbox", SORA_OUTPUT_DIR=str(tmp_path))
    assert code == 0
    assert checks["SORA_SANDBOX"][0] == "WARN"
    assert checks["SORA_API_KEY"] == ("WARN", "not set (the sandbox needs none; the real gateway does)")
    assert checks["gateway"] == ("WARN", "not probed: there is no key to try")
    assert summary == "No problem found (3 warnings)."


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, "FAIL reached, but this key may not use the video API (HTTP 403: Permission denied)"),
        (429, "WARN reached, but it is rate limiting this key (HTTP 429: Too many requests"),
        (503, "FAIL reached, but it answered HTTP 503 (Service Unavailable): if SORA_BASE_URL is right"),
    ],
    ids=["403", "429", "503"],
)
async def test_other_gateway_answers_are_classified(
    fake: FakeGateway, http_client: httpx2.AsyncClient, status: int, expected: str
) -> None:
    """403 and 5xx fail with their meaning; 429 only warns (the key is probably fine); no retries."""
    fake.fault("GET", "/v1/videos/generations/", status=status)
    check = await check_gateway(make_settings(max_retries=3), http_client=http_client)
    assert f"{check.status} {check.detail}".startswith(expected)
    assert len(fake.requests) == 1


async def test_an_html_not_found_page_means_the_base_url_is_wrong(
    fake: FakeGateway, http_client: httpx2.AsyncClient
) -> None:
    """A site answering 404 web pages is not the gateway: the doctor says to check SORA_BASE_URL, not OK."""
    page = "<html><body>Not Found</body></html>"
    fake.fault("GET", "/v1/", status=404, text=page, content_type="text/html", times=2)
    check = await check_gateway(make_settings(), http_client=http_client)
    assert check == Check(
        "FAIL",
        "gateway",
        "http://gateway.test answered with an HTML 'not found' page, not the gateway API: check SORA_BASE_URL "
        "(the gateway's address, without /v1)",
    )


async def test_a_plain_http_port_behind_https_is_a_tls_problem() -> None:
    """https:// pointed at a plain-HTTP port fails the TLS handshake, and the doctor says TLS, not unreachable."""
    fake = FakeGateway(api_key=API_KEY)
    with serve_in_thread(fake.build_app()) as url:
        https_url = url.replace("http://", "https://")
        check = await check_gateway(make_settings(base_url=https_url))
    assert check.status == "FAIL"
    assert check.detail.startswith(f"TLS problem: the TLS handshake with {https_url} failed ([SSL: ")
    assert "(_ssl.c:" not in check.detail


def connection_error_from(cause: BaseException) -> APIConnectionError:
    """An APIConnectionError raised the way SoraClient raises it: inside the handler of the transport error."""
    try:
        try:
            raise cause
        except OSError:
            raise APIConnectionError("could not connect to the gateway", request_sent=False) from None
    except APIConnectionError as exc:
        return exc


def test_an_untrusted_certificate_is_named_as_such() -> None:
    """A certificate verification failure says the certificate is not trusted and how to fix a TLS proxy."""
    cause = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)"
    )
    check = describe_connection_error(connection_error_from(cause), "https://dashlyai.cc")
    assert check.detail == (
        "TLS problem: the certificate of https://dashlyai.cc is not trusted ([SSL: CERTIFICATE_VERIFY_FAILED] "
        "certificate verify failed: self-signed certificate). If a proxy or antivirus inspects TLS, add its CA "
        "certificate to the system trust store; check the system clock"
    )


def test_a_name_that_does_not_resolve_is_named_as_dns() -> None:
    """A DNS failure names the host instead of a generic connection error."""
    cause = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    check = describe_connection_error(connection_error_from(cause), "https://dashlyai.example")
    assert check == Check(
        "FAIL",
        "gateway",
        "unreachable: the name dashlyai.example does not resolve (DNS). Check SORA_BASE_URL and the network",
    )


async def test_a_key_echoed_by_the_gateway_is_redacted(fake: FakeGateway, http_client: httpx2.AsyncClient) -> None:
    """Even a gateway message that repeats the key does not bring it into the report."""
    fake.fault("GET", "/v1/", status=401, json={"error": {"message": f"bad key {API_KEY}", "code": 401}})
    report = render(await diagnose(make_settings(), http_client=http_client))
    assert API_KEY not in report
    assert "(HTTP 401: bad key ***)" in report


async def test_plain_http_to_a_remote_host_warns() -> None:
    """A non-loopback http:// base URL is a warning: the key would travel unencrypted."""
    checks = await diagnose(make_settings(api_key=None, base_url="http://gateway.example"))
    assert (
        Check("WARN", "SORA_BASE_URL", "http://gateway.example is plain http: the key travels unencrypted; use https")
        in checks
    )


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("sk-test-0123456789abcdef", "sk-...cdef"),
        ("0123456789abcdefXYZW", "...XYZW"),
        ("sk-short", "********"),
        ("", "********"),
    ],
)
def test_keys_are_masked_to_prefix_and_last_four(key: str, masked: str) -> None:
    """Long keys show only ``sk-`` and the last 4 characters; keys under 12 characters are fully masked."""
    assert mask_key(key) == masked


def test_a_writable_directory_passes_and_a_missing_one_is_not_created(tmp_path: Path) -> None:
    """An existing directory is written to (the probe file is removed); a missing one is reported, not created."""
    assert check_directory("SORA_STATE_DIR", tmp_path) == Check("OK", "SORA_STATE_DIR", f"{tmp_path} is writable")
    assert list(tmp_path.iterdir()) == []
    missing = tmp_path / "state" / "nested"
    assert check_directory("SORA_STATE_DIR", missing) == Check(
        "OK", "SORA_STATE_DIR", f"{missing} does not exist yet; the server will create it"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_path_that_cannot_be_a_directory_fails(tmp_path: Path) -> None:
    """A regular file, or a path under one, cannot hold the server's files: FAIL naming the variable to change."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert check_directory("SORA_OUTPUT_DIR", blocker) == Check(
        "FAIL", "SORA_OUTPUT_DIR", f"{blocker} exists but is not a directory: choose another SORA_OUTPUT_DIR"
    )
    assert check_directory("SORA_OUTPUT_DIR", blocker / "videos") == Check(
        "FAIL",
        "SORA_OUTPUT_DIR",
        f"{blocker / 'videos'} cannot be created: {blocker} is a file, not a directory: choose another SORA_OUTPUT_DIR",
    )
