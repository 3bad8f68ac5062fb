"""Print the README's Quick start commands, one per line, for .ci/run to run exactly as written."""

import re
import sys
from pathlib import Path

readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
match = re.search(r"^## Quick start\n.*?```bash\n(.*?)```", readme, re.MULTILINE | re.DOTALL)
if match is None:
    sys.exit("README.md has no bash block under '## Quick start'")
commands = [line for line in match.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]
if len(commands) != 2:
    sys.exit(f"the Quick start should show two commands (set up and try; test), found {len(commands)}")
print("\n".join(commands))
