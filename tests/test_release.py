"""The release workflow's checks, run offline: build the sdist and wheel, `twine check --strict` them, match
the version rule, and install the wheel on its own to see the command start.

What only GitHub and PyPI can do (the OIDC token exchange of trusted publishing, the upload) is not run; the
workflow file is checked to ask for exactly that and nothing more (no stored token).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sora_mcp import __version__

pytestmark = pytest.mark.slow  # builds and installs

ROOT = Path(__file__).parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
CHECK = ROOT / ".github" / "check_release_version.py"


def run(*command: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built as the workflow builds them (without a download: --no-isolation)."""
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ".")
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def test_the_distributions_pass_twine_check_strict(dist: Path) -> None:
    checked = run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2


def test_the_version_check_accepts_the_right_tag_and_names_a_wrong_one(dist: Path) -> None:
    good = run(sys.executable, CHECK, f"v{__version__}", dist)
    assert good.returncode == 0, good.stderr
    bad = run(sys.executable, CHECK, "v9.9.9", dist)
    assert bad.returncode == 1
    assert f"the tag v9.9.9 does not name the package's version {__version__}" in bad.stderr


def test_the_wheel_alone_installs_the_package_and_its_command(dist: Path, tmp_path: Path) -> None:
    """The wheel, installed into an empty folder, is the whole server: it imports from there and answers --help."""
    [wheel] = dist.glob("*.whl")
    target = tmp_path / "site"
    installed = run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", target, wheel)
    assert installed.returncode == 0, installed.stderr
    env = {"PYTHONPATH": str(target), "PATH": ""}
    where = run(
        sys.executable, "-c", "import sora_mcp; print(sora_mcp.__file__, sora_mcp.__version__)", cwd=tmp_path, env=env
    )
    assert where.stdout.split() == [str(target / "sora_mcp" / "__init__.py"), __version__], where.stderr
    helped = run(sys.executable, "-m", "sora_mcp", "--help", cwd=tmp_path, env=env)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: sora-mcp")
    assert (target / "bin" / "sora-mcp").exists()


def test_the_workflow_publishes_with_trusted_publishing_after_the_same_checks() -> None:
    text = WORKFLOW.read_text()
    jobs = text.split("\n  publish:\n")
    assert len(jobs) == 2, "the workflow has a build job, then a publish job"
    build, publish = jobs
    for step in ("bash .ci/run", "python -m build", "twine check --strict dist/*", ".github/check_release_version.py"):
        assert step in build, step
    assert "needs: build" in publish and "environment: pypi" in publish
    assert "id-token: write" in publish and "id-token" not in build
    assert "pypa/gh-action-pypi-publish@release/v1" in publish
    assert not re.search(r"password|api[-_]token|secrets\.", text, re.IGNORECASE), "trusted publishing needs no secret"
    assert re.search(r"tags: \[\"v\*\"\]", text)
