"""Release check: the tag, the package, server.json and the built files name one version.

    python .github/check_release_version.py v0.1.0 dist

Exits 1 with a line per mismatch. The release workflow runs it before publishing; tests/test_release.py runs it
on a fresh build. The MCP Registry verifies a PyPI package by the ``mcp-name:`` line of its description (the
README), so that is checked against server.json's name too.
"""

import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def problems(tag: str, dist: Path) -> list[str]:
    found: list[str] = []
    match = re.search(r'^__version__ = "([^"]+)"', (ROOT / "sora_mcp" / "__init__.py").read_text(), re.MULTILINE)
    version = match.group(1) if match else "?"
    if tag.removeprefix("v") != version:
        found.append(f"the tag {tag} does not name the package's version {version} (sora_mcp/__init__.py)")
    server = json.loads((ROOT / "server.json").read_text())
    if server["version"] != version:
        found.append(f"server.json's version {server['version']} is not {version}")
    found.extend(
        f"server.json's {package.get('identifier')} package has version {package.get('version')}, not {version}"
        for package in server.get("packages", [])
        if package.get("version") != version
    )
    readme = (ROOT / "README.md").read_text()
    if f"mcp-name: {server['name']}" not in readme:
        found.append(f"README.md lacks the line 'mcp-name: {server['name']}' the MCP Registry looks for on PyPI")
    wheels = sorted(dist.glob("sora_mcp-*.whl"))
    sdists = sorted(dist.glob("sora_mcp-*.tar.gz"))
    if [w.name for w in wheels] != [f"sora_mcp-{version}-py3-none-any.whl"]:
        found.append(f"{dist} should hold exactly sora_mcp-{version}-py3-none-any.whl, not {[w.name for w in wheels]}")
    if [s.name for s in sdists] != [f"sora_mcp-{version}.tar.gz"]:
        found.append(f"{dist} should hold exactly sora_mcp-{version}.tar.gz, not {[s.name for s in sdists]}")
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            metadata = archive.read(f"sora_mcp-{version}.dist-info/METADATA").decode()
            entry_points = archive.read(f"sora_mcp-{version}.dist-info/entry_points.txt").decode()
        if f"mcp-name: {server['name']}" not in metadata:
            found.append(f"{wheel.name}'s description lacks 'mcp-name: {server['name']}'")
        if "sora-mcp = sora_mcp.__main__:main" not in entry_points:
            found.append(f"{wheel.name} does not install the sora-mcp command")
    for sdist in sdists:
        with tarfile.open(sdist) as archive:
            names = {name.split("/", 1)[-1] for name in archive.getnames()}
        missing = {"LICENSE", "README.md", "server.json", "sora_mcp/__init__.py", "pyproject.toml"} - names
        if missing:
            found.append(f"{sdist.name} lacks {sorted(missing)}")
    return found


def main() -> None:
    tag, dist = sys.argv[1], Path(sys.argv[2])
    found = problems(tag, dist)
    for problem in found:
        print(f"release check: {problem}", file=sys.stderr)
    if found:
        raise SystemExit(1)
    print(f"release check: {tag} matches the package, server.json and {dist}")


if __name__ == "__main__":
    main()
