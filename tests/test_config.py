"""Settings: defaults, environment parsing, and start-up errors that name the variable."""

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from sora_mcp.config import Settings, describe_settings_error


def test_defaults_match_the_documented_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without any SORA_* variable the documented defaults apply and there is no key."""
    for name in ("SORA_API_KEY", "SORA_BASE_URL", "SORA_TIMEOUT", "SORA_MAX_RETRIES", "SORA_POLL_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SORA_STATE_DIR", raising=False)
    monkeypatch.delenv("SORA_DUPLICATE_WINDOW", raising=False)
    settings = Settings()
    assert settings.api_key is None
    assert settings.base_url == "https://dashlyai.cc"
    assert (settings.timeout, settings.max_retries, settings.poll_interval) == (30.0, 3, 5.0)
    assert settings.sandbox is False
    assert (settings.state_dir, settings.duplicate_window) == (None, 600.0)


def test_environment_variables_are_read_and_normalized(monkeypatch: pytest.MonkeyPatch) -> None:
    """SORA_* variables fill the settings; the base URL loses its trailing slash; a blank key is no key."""
    monkeypatch.setenv("SORA_BASE_URL", "http://127.0.0.1:9/ ")
    monkeypatch.setenv("SORA_TIMEOUT", "2.5")
    monkeypatch.setenv("SORA_MAX_RETRIES", "0")
    monkeypatch.setenv("SORA_API_KEY", "   ")
    monkeypatch.setenv("SORA_STATE_DIR", "~/sora state ")
    monkeypatch.setenv("SORA_DUPLICATE_WINDOW", "0")
    settings = Settings()
    assert settings.base_url == "http://127.0.0.1:9"
    assert settings.timeout == 2.5
    assert settings.max_retries == 0
    assert settings.api_key is None
    assert settings.state_dir == Path.home() / "sora state"
    assert settings.duplicate_window == 0


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SORA_TIMEOUT", "-1", "SORA_TIMEOUT: Input should be greater than 0"),
        ("SORA_TIMEOUT", "soon", "SORA_TIMEOUT: Input should be a valid number"),
        ("SORA_MAX_RETRIES", "99", "SORA_MAX_RETRIES: Input should be less than or equal to 10"),
        ("SORA_POLL_INTERVAL", "0", "SORA_POLL_INTERVAL: Input should be greater than 0"),
        ("SORA_BASE_URL", "dashlyai.cc", "SORA_BASE_URL: Value error, must be an http(s) URL"),
        ("SORA_STATE_DIR", "state", "SORA_STATE_DIR: Value error, must be an absolute path"),
        ("SORA_DUPLICATE_WINDOW", "-5", "SORA_DUPLICATE_WINDOW: Input should be greater than or equal to 0"),
        ("SORA_OUTPUT_DIR", "videos/out", "SORA_OUTPUT_DIR: Value error, must be an absolute path"),
        ("SORA_MAX_DOWNLOAD_MB", "0", "SORA_MAX_DOWNLOAD_MB: Input should be greater than 0"),
        ("SORA_MAX_DOWNLOAD_MB", "1.5", "SORA_MAX_DOWNLOAD_MB: Input should be a valid integer"),
        ("SORA_INLINE_THUMBNAILS", "maybe", "SORA_INLINE_THUMBNAILS: Input should be a valid boolean"),
        ("SORA_MCP_ALLOWED_HOSTS", "https://x.example", "SORA_MCP_ALLOWED_HOSTS: Value error, 'https://x.example'"),
        ("SORA_MCP_ALLOWED_HOSTS", "*", "SORA_MCP_ALLOWED_HOSTS: Value error, '*' is not a host name, host:port or"),
        ("SORA_MCP_ALLOWED_HOSTS", "a.example/mcp", "SORA_MCP_ALLOWED_HOSTS: Value error, 'a.example/mcp' is not"),
        ("SORA_MCP_ALLOWED_ORIGINS", "app.example", "SORA_MCP_ALLOWED_ORIGINS: Value error, 'app.example' is not an"),
        ("SORA_MCP_ALLOWED_ORIGINS", "https://app.example/", "SORA_MCP_ALLOWED_ORIGINS: Value error, 'https://app"),
        ("SORA_MCP_STATELESS", "maybe", "SORA_MCP_STATELESS: Input should be a valid boolean"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    """Each invalid value produces a message that starts with the environment variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert expected in describe_settings_error(caught.value)


@pytest.mark.slow
def test_invalid_configuration_stops_the_command_with_exit_code_2() -> None:
    """`sora-mcp` with a bad variable exits 2 before serving, naming the variable on stderr, nothing on stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "sora_mcp"],
        env={"SORA_TIMEOUT": "-3", "SORA_API_KEY": "sk-canary-config-0001", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "SORA_TIMEOUT: Input should be greater than 0" in result.stderr
    assert "sk-canary-config-0001" not in result.stderr


@pytest.mark.slow
def test_version_flag_prints_the_package_version() -> None:
    """`sora-mcp --version` answers without starting a server."""
    from sora_mcp import __version__

    result = subprocess.run([sys.executable, "-m", "sora_mcp", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"sora-mcp {__version__}"


def test_download_settings_default_to_no_folder_500_mb_and_inline_thumbnails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without variables: the platform's default folder (decided at download time), a 500 MB cap, thumbnails on."""
    for name in ("SORA_OUTPUT_DIR", "SORA_MAX_DOWNLOAD_MB", "SORA_INLINE_THUMBNAILS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.output_dir, settings.max_download_mb, settings.inline_thumbnails) == (None, 500, True)
    assert settings.max_download_bytes == 500 * 1024 * 1024


def test_output_dir_expands_the_home_folder_and_a_blank_one_means_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`~/x` is expanded to the home folder; an empty SORA_OUTPUT_DIR is the same as none."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SORA_OUTPUT_DIR", "~/Movies/sora")
    monkeypatch.setenv("SORA_INLINE_THUMBNAILS", "0")
    settings = Settings()
    assert settings.output_dir == tmp_path / "Movies" / "sora"
    assert settings.inline_thumbnails is False
    monkeypatch.setenv("SORA_OUTPUT_DIR", " ")
    assert Settings().output_dir is None


def test_http_settings_are_read_from_sora_mcp_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """SORA_MCP_* variables configure the HTTP transports; host and origin lists are comma-separated."""
    monkeypatch.setenv("SORA_MCP_AUTH_TOKEN", " team-secret ")
    monkeypatch.setenv("SORA_MCP_ALLOWED_HOSTS", "mcp.example.com, api.example.com:8443,[::1]:*")
    monkeypatch.setenv("SORA_MCP_ALLOWED_ORIGINS", "https://app.example.com")
    monkeypatch.setenv("SORA_MCP_STATELESS", "1")
    monkeypatch.setenv("SORA_MCP_ALLOW_UNAUTHENTICATED", "true")
    settings = Settings()
    assert settings.mcp_auth_token is not None and settings.mcp_auth_token.get_secret_value() == "team-secret"
    assert settings.mcp_allowed_hosts == ("mcp.example.com", "api.example.com:8443", "[::1]:*")
    assert settings.mcp_allowed_origins == ("https://app.example.com",)
    assert settings.mcp_stateless is True and settings.mcp_allow_unauthenticated is True


def test_http_settings_default_to_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SORA_MCP_* variables: no token, no extra hosts or origins, sessions, no unauthenticated exposure."""
    for name in ("AUTH_TOKEN", "ALLOWED_HOSTS", "ALLOWED_ORIGINS", "STATELESS", "ALLOW_UNAUTHENTICATED"):
        monkeypatch.delenv(f"SORA_MCP_{name}", raising=False)
    settings = Settings()
    assert (settings.mcp_auth_token, settings.mcp_allowed_hosts, settings.mcp_allowed_origins) == (None, (), ())
    assert (settings.mcp_stateless, settings.mcp_allow_unauthenticated) == (False, False)


def test_the_auth_token_never_appears_in_configuration_errors() -> None:
    """A settings error report never echoes SORA_MCP_AUTH_TOKEN's value."""
    with pytest.raises(ValidationError) as caught:
        Settings(mcp_auth_token=12345)  # type: ignore[arg-type]  # deliberately not a string
    report = describe_settings_error(caught.value)
    assert report.startswith("invalid configuration:\n  SORA_MCP_AUTH_TOKEN:")
    assert "12345" not in report
