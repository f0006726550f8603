"""The README's examples run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def block_after(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(re.escape(marker) + r"\s*```bash\n(.*?)```", text, re.S)
    assert match, f"no bash block after {marker!r} in README.md"
    return match.group(1)


def test_readme_walk_through_runs(tmp_path):
    script = block_after("A walk-through that runs as written:")
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("ECOLEDGER_DATABASE_URL", None)
    env.pop("ECOLEDGER_SETTINGS", None)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 accepted, 0 duplicate, 0 rejected" in result.stdout
    assert "verify: OK" in result.stdout


def test_readme_test_command_is_marked_for_ci():
    command = block_after("<!-- test-command -->").strip()
    assert command.endswith("pytest") and "'.[test]'" in command
