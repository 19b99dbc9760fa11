"""Print the README's set-up commands, one per line: the ```bash blocks of its "## Set up" section, in order.

CI runs exactly these, so the README and CI cannot drift apart. Exits non-zero unless there are exactly two
(install + run on the sample; install + tests), each a single line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def setup_commands(readme: str) -> list[str]:
    match = re.search(r"^## Set up\s*$(.*?)(?=^## )", readme, flags=re.M | re.S)
    if not match:
        raise SystemExit("README.md has no '## Set up' section")
    blocks = re.findall(r"^```bash\n(.*?)^```", match.group(1), flags=re.M | re.S)
    commands = [block.strip() for block in blocks]
    if len(commands) != 2 or any("\n" in c or not c for c in commands):
        raise SystemExit(f"README.md '## Set up' must hold exactly two one-line bash commands, found {commands!r}")
    return commands


if __name__ == "__main__":
    for command in setup_commands(Path(sys.argv[1]).read_text(encoding="utf-8")):
        print(command)
