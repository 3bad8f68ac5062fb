"""The shipped examples work: the scripted agent runs against the sandbox, and the client config is well formed."""

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from sora_mcp.config import ENV_PREFIX, Settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"


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


def test_the_claude_desktop_config_runs_the_server_with_known_variables() -> None:
    """Every server entry has a command and args, and sets only variables the server reads (SORA_<field>)."""
    config: dict[str, Any] = json.loads((EXAMPLES / "claude_desktop_config.json").read_text())
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    servers = config["mcpServers"]
    assert servers
    for name, entry in servers.items():
        assert isinstance(entry["command"], str) and entry["command"], name
        assert isinstance(entry["args"], list) and all(isinstance(arg, str) for arg in entry["args"]), name
        assert "sora-mcp" in entry["args"], name
        env = entry.get("env", {})
        assert set(env) <= known, f"{name} sets {set(env) - known}, which the server does not read"
        assert all(isinstance(value, str) for value in env.values()), name
    assert servers["sora"]["env"] == {"SORA_API_KEY": "sk-your-dashlyai-key"}
    assert "--sandbox" in servers["sora-sandbox"]["args"]
