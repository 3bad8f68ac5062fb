"""The shipped examples work: the scripted agent runs against the sandbox, and every client configuration names a
real command, real options, real variables and the right URL.

The JSON files under ``examples/`` and the snippets in the README's "Client configuration" section are checked
against the real command-line parser and the settings the server reads.
"""

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from sora_mcp.__main__ import build_parser
from sora_mcp.config import ENV_PREFIX, Settings
from sora_mcp.http import DEFAULT_HOST, DEFAULT_MCP_PATH, DEFAULT_PORT

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # real subprocesses

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
CONFIG_FILES = sorted(EXAMPLES.glob("*.json"))
KNOWN_VARIABLES = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
HTTP_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}{DEFAULT_MCP_PATH}"
"""Where ``sora-mcp --transport streamable-http`` listens by default: http://127.0.0.1:8000/mcp."""


async def test_the_example_agent_makes_a_sandbox_video_with_progress() -> None:
    """`examples/agent.py --sandbox PROMPT` creates, waits with progress lines, ends completed with a video URL."""
    command = [sys.executable, str(EXAMPLES / "agent.py"), "--sandbox", "a corgi surfing a wave at sunset"]
    with anyio.fail_after(60):
        env = {"PATH": os.environ["PATH"], "SORA_SANDBOX_SECONDS": "2", "SORA_STATE_DIR": os.environ["SORA_STATE_DIR"]}
        done = await anyio.run_process(command, env=env, cwd=ROOT, check=False)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, stdout + stderr
    lines = stdout.splitlines()
    assert re.fullmatch(r"created task_[0-9A-Z]{26} \(queued\)", lines[0])
    progress = [line for line in lines if line.startswith("  progress ")]
    assert progress
    assert progress[-1].startswith("  progress 100.0/100  completed 100%")
    assert "status: completed" in lines
    [video] = [line for line in lines if line.startswith("video:")]
    assert re.fullmatch(r"video:  http://127\.0\.0\.1:\d+/files/task_[0-9A-Z]{26}\.mp4", video)
    assert lines[-1].startswith("hint:   [Sandbox: simulated task, nothing was billed]")


def client_configuration_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Client configuration\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert match is not None, "README has no '## Client configuration' section"
    return match.group(1)


def check_cli_options(options: list[str]) -> None:
    """The options parse with the real ``sora-mcp`` parser (which exits on an unknown option)."""
    try:
        build_parser().parse_args(options)
    except SystemExit as exc:
        pytest.fail(f"sora-mcp rejects the options {options} (exit {exc.code})")


CLONE_PLACEHOLDER = "/path/to/sora-mcp"
VENV_COMMAND = f"{CLONE_PLACEHOLDER}/.venv/bin/sora-mcp"
"""What the snippets run: the console script the Quick start installs into the clone's venv."""


def check_server_command(command: str, args: list[str]) -> None:
    """The clone's ``.venv/bin/sora-mcp [options]``, ``uvx --from <clone> sora-mcp [options]``, ``uvx sora-mcp
    [options]`` or ``sora-mcp [options]``, with options the command accepts."""
    assert all(isinstance(arg, str) for arg in args)
    if command == "uvx":
        if args[:1] == ["--from"]:
            assert args[1] == CLONE_PLACEHOLDER, f"uvx --from must name the clone, got {args}"
            args = args[2:]
        assert args[:1] == ["sora-mcp"], f"uvx must run the sora-mcp package, got {args}"
        check_cli_options(args[1:])
    else:
        assert command in (VENV_COMMAND, "sora-mcp"), f"unknown command {command!r}"
        check_cli_options(args)


def check_leads_with_the_clone(config: dict[str, Any]) -> None:
    """Until the package is published, the shipped snippets run the clone's venv script."""
    for entry in config.get("mcpServers", config.get("servers", {})).values():
        if "command" in entry:
            assert entry["command"] == VENV_COMMAND, entry


def check_variables(names: set[str]) -> None:
    assert names <= KNOWN_VARIABLES, f"{sorted(names - KNOWN_VARIABLES)} are not variables sora-mcp reads"


def check_config(config: dict[str, Any]) -> None:
    """Every server entry of a Claude/Cursor (``mcpServers``) or VS Code (``servers``) configuration."""
    servers = config.get("mcpServers", config.get("servers"))
    assert isinstance(servers, dict) and servers, "no server entries"
    inputs = {item["id"] for item in config.get("inputs", [])}
    for name, entry in servers.items():
        if "url" in entry:
            assert entry.get("type", "http") == "http", name
            assert entry["url"] == HTTP_URL, name
            assert set(entry) <= {"type", "url", "headers"}, name
            continue
        assert entry.get("type", "stdio") == "stdio", name
        assert set(entry) <= {"type", "command", "args", "env"}, name
        check_server_command(entry["command"], entry["args"])
        env = entry.get("env", {})
        assert all(isinstance(value, str) and value for value in env.values()), name
        check_variables(set(env))
        for value in env.values():
            for input_id in re.findall(r"\$\{input:([^}]+)\}", value):
                assert input_id in inputs, f"{name} uses ${{input:{input_id}}}, which 'inputs' does not declare"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[path.name for path in CONFIG_FILES])
def test_each_example_config_names_a_real_command_options_and_variables(path: Path) -> None:
    """Each examples/*.json parses and runs the clone's sora-mcp with real options and variables, or names the
    URL."""
    config = json.loads(path.read_text(encoding="utf-8"))
    check_config(config)
    check_leads_with_the_clone(config)


def test_examples_cover_each_client_for_stdio_and_http() -> None:
    """Claude Code, Cursor and VS Code have a stdio and an HTTP file; Claude Desktop (stdio only) has its own."""
    assert {path.name for path in CONFIG_FILES} == {
        "claude_desktop_config.json",
        "claude_code_mcp.json",
        "claude_code_mcp_http.json",
        "cursor_mcp.json",
        "cursor_mcp_http.json",
        "vscode_mcp.json",
        "vscode_mcp_http.json",
    }


def test_the_readme_names_every_example_config() -> None:
    """The README's client section points to every example file."""
    section = client_configuration_section()
    for path in CONFIG_FILES:
        assert f"`examples/{path.name}`" in section


def test_every_json_snippet_in_the_readme_is_a_valid_config() -> None:
    """The README's JSON snippets pass the same checks as the files, and the keys they show are placeholders."""
    snippets = re.findall(r"```json\n(.*?)```", client_configuration_section(), re.DOTALL)
    assert len(snippets) >= 6
    for snippet in snippets:
        config = json.loads(snippet)
        check_config(config)
        check_leads_with_the_clone(config)
        assert "sk-" not in snippet or "sk-your-dashlyai-key" in snippet


def test_the_claude_code_commands_in_the_readme_add_real_servers() -> None:
    """``claude mcp add`` lines: the stdio one runs the clone's sora-mcp with known variables, the HTTP one the
    URL."""
    lines = re.findall(r"^claude mcp add .*$", client_configuration_section(), re.MULTILINE)
    assert len(lines) == 2
    stdio, http = (shlex.split(line) for line in lines)

    separator = stdio.index("--")
    options, (command, *args) = stdio[3:separator], stdio[separator + 1 :]
    check_server_command(command, args)
    assert options[0] == "sora"
    variables = [options[i + 1].partition("=")[0] for i, option in enumerate(options) if option in ("--env", "-e")]
    assert variables == ["SORA_API_KEY"]
    check_variables(set(variables))

    assert http[3:] == ["--transport", "http", "sora", HTTP_URL]


def test_the_claude_desktop_config_has_a_keyed_and_a_sandbox_entry() -> None:
    """examples/claude_desktop_config.json: 'sora' with the key placeholder, 'sora-sandbox' with --sandbox."""
    servers = json.loads((EXAMPLES / "claude_desktop_config.json").read_text())["mcpServers"]
    assert servers["sora"]["env"] == {"SORA_API_KEY": "sk-your-dashlyai-key"}
    assert "--sandbox" in servers["sora-sandbox"]["args"]


def in_this_clone(command: str) -> str:
    """A snippet's command with the placeholder replaced by this clone; skips when the clone has no venv."""
    command = command.replace(CLONE_PLACEHOLDER, str(ROOT))
    if not Path(command).exists():
        pytest.skip(f"this clone has no venv at {Path(command).parents[2]} (the Quick start makes one; CI does)")
    return command


async def test_the_sandbox_snippet_runs_from_this_clone_as_written() -> None:
    """examples/claude_desktop_config.json's sandbox entry, with /path/to/sora-mcp replaced by this clone, starts
    a server an MCP client can call: what a new user pastes works before anything is published."""
    entry = json.loads((EXAMPLES / "claude_desktop_config.json").read_text())["mcpServers"]["sora-sandbox"]
    command = in_this_clone(entry["command"])
    env = {"PATH": os.environ["PATH"], "SORA_STATE_DIR": os.environ["SORA_STATE_DIR"], **entry.get("env", {})}
    params = StdioServerParameters(command=command, args=entry["args"], env=env, cwd="/")
    with anyio.fail_after(60):
        async with Client(params) as client:
            created = await client.call_tool("create_video", {"prompt": "a paper boat in a rain gutter"})
    assert not created.is_error, created.content
    assert created.structured_content is not None and created.structured_content["sandbox"] is True
