"""``make demo``: prints the commands a user types and removes its temporary directory."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_prints_user_commands_and_cleans_up() -> None:
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--summary-every", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 600  # a loaded machine starts four services slowly
        while time.monotonic() < deadline and demo.stdout is not None:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(lines)
        assert "Ctrl-C stops everything" in text, text
        work = Path(re.search(r"work directory (\S+)", text).group(1))  # type: ignore[union-attr]
        assert work.is_dir()
        commands = [line.strip() for line in lines if line.startswith("  camwarden-")]
        assert [c.split()[0] for c in commands] == ["camwarden-server"] * 2 + ["camwarden-agent"]
        assert "-m server" not in text
        assert "-m agent" not in text
        assert sys.executable not in text
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
    assert demo.returncode == 0, rest
    assert f"removed {work}" in rest
    assert not work.exists()
