"""Heavy libraries stay out until used (zxcvbn ~14 MB, zeep ~27 MB, pyasn1 ~6 MB RSS on the
agent box)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import agent.checks, agent.advisories.feed, agent.credentials.planner, agent.vendors
heavy = ("zxcvbn", "zeep", "aiohttp", "httpx", "lxml", "onvif", "pyasn1")
print(",".join(sorted(m for m in heavy if m in sys.modules)))
"""


def test_audit_core_imports_no_heavy_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
