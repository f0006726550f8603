"""The README's examples run as written."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def block_after(marker: str, document: Path = README) -> str:
    text = document.read_text(encoding="utf-8")
    match = re.search(re.escape(marker) + r"\s*```bash\n(.*?)```", text, re.S)
    assert match, f"no bash block after {marker!r} in {document.name}"
    return match.group(1)


def _environment() -> dict[str, str]:
    bin_dir = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOLEDGER_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return env


def test_readme_walk_through_runs(tmp_path):
    script = block_after("A walk-through that runs as written:")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=_environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 accepted, 0 duplicate, 0 rejected" in result.stdout
    assert "verify: OK" in result.stdout


def test_readme_test_command_is_marked_for_ci():
    command = block_after("<!-- test-command -->").strip()
    assert command.endswith("pytest") and "'.[test]'" in command


def test_api_walk_through_runs(tmp_path):
    """docs/api.md's curl examples, against a real `ecoledger serve` on a free port."""
    script = block_after("<!-- api-walk-through -->", ROOT / "docs" / "api.md")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**_environment(), "PORT": str(port)}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr + (tmp_path / "serve.log").read_text()
    assert result.returncode == 0, output
    assert '"accepted":1' in result.stdout  # the batch was posted
    assert "\n404\n" in result.stdout  # the partner cannot see the operator's books
    assert '"ok":true' in result.stdout  # verify ran on the embedded worker


def test_ecosystem_walk_through_runs(tmp_path):
    script = block_after("<!-- ecosystem-walk-through -->", ROOT / "docs" / "ecosystem.md")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=_environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "partners: 3 created" in result.stdout and "partners: 0 created, 0 updated, 3 unchanged" in result.stdout
    assert "4 accepted, 0 duplicate, 0 rejected; 3 entries posted" in result.stdout
    assert "77.42" in result.stdout  # 150 x 16/31, the prorated upgrade
    assert "verify: OK" in result.stdout


def test_usage_walk_through_runs(tmp_path):
    script = block_after("<!-- usage-walk-through -->", ROOT / "docs" / "usage.md")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=_environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "4 lines read: 3 posted (0 late), 0 duplicate, 1 rejected" in out
    assert "4 lines read: 0 posted (0 late), 3 duplicate, 1 rejected" in out
    assert "1 line read: 1 posted (0 late), 0 duplicate, 0 rejected" in out
    assert "299.25" in out  # 1.5 h x 95.00 x 1.4 specialist x 1.5 night
    assert "142.50" in out  # 1 h x 95.00 x 1.5 on a Saturday
    assert "1,C-17,,SD-C-17,FIELD,field-service (SD-C-17 FIELD): 5.5 hour,5.5,hour,726.75,EUR,4" in out  # 190 + 299.25 + 142.50 + 95
    assert "verify: OK" in out
