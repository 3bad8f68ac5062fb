"""The pinned npm clients of the interop and player tests (``tests/interop``): the MCP Inspector CLI, the official
TypeScript SDK and playwright-core (which drives Debian's Chromium). The ``node_clients`` fixture installs them with
``npm ci`` into ``tests/interop/node_modules`` (git-ignored) the first time, and again only when the lock changes.
"""

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

INTEROP_DIR = Path(__file__).parent / "interop"


@dataclass(frozen=True)
class NodeClients:
    """Paths of the installed clients, and the environment to run them in."""

    node: str
    inspector: Path
    sdk_script: Path
    home: Path
    """A private HOME: the Inspector writes its catalog and settings under ``~/.mcp-inspector/``."""

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "NO_COLOR": "1", **extra}


@pytest.fixture(scope="session")
def node_clients(tmp_path_factory: pytest.TempPathFactory) -> NodeClients:
    """The pinned npm clients, installed on demand with ``npm ci`` (kept while the lock file is unchanged)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed: the interop tests need them (CI machines have them)")
    lock = (INTEROP_DIR / "package.json").read_bytes() + (INTEROP_DIR / "package-lock.json").read_bytes()
    wanted = hashlib.sha256(lock).hexdigest()
    stamp = INTEROP_DIR / "node_modules" / ".sora-mcp-installed"
    if not (stamp.is_file() and stamp.read_text() == wanted):
        install = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=INTEROP_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if install.returncode != 0:
            pytest.fail(f"npm ci in tests/interop failed (exit {install.returncode}):\n{install.stderr[-4000:]}")
        stamp.write_text(wanted)
    home = tmp_path_factory.mktemp("node-home")
    return NodeClients(
        node=node,
        inspector=INTEROP_DIR / "node_modules" / ".bin" / "mcp-inspector",
        sdk_script=INTEROP_DIR / "sdk_client.mjs",
        home=home,
    )
