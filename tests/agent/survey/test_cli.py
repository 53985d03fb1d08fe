"""``camwarden-agent survey``: a one-off survey of the lab range, printed and written; bounds and
malformed prefixes refused before any packet."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.cli import main
from lab.survey import SurveyLab, read_events
from lab.testing import private_base

SHIFT = 20000


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[SurveyLab]:
    started = await SurveyLab.start(f"{private_base()}/24", tmp_path / "lab.jsonl", shift=SHIFT)
    try:
        yield started
    finally:
        await started.stop()


async def test_a_one_off_survey_prints_and_writes_what_it_found(
    lab: SurveyLab, tmp_path: Path
) -> None:
    prefix = next(lab.network.subnets(new_prefix=25))
    out = tmp_path / "survey.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "survey", "--prefix", str(prefix),
        "--port-offset", str(SHIFT), "--rate-cps", "2000", "--rate-pps", "10000",
        "--exclude", str(prefix[1]), "--out", str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        stdout, stderr = await process.communicate()
    exposed = [h for h in lab.hosts if h.address in {str(a) for a in prefix}]
    text = stdout.decode()
    assert process.returncode == 1, stderr.decode()  # the lab exposes cameras in every /25
    assert "128 addresses: 127 probed, 1 excluded, 0 opted out" in text
    document = json.loads(out.read_bytes())
    assert document["summary"]["complete"] is True
    assert document["params"]["prefixes"] == str(prefix)
    found = {h["address"] for h in document["hosts"]}
    assert found <= {h.address for h in exposed}
    assert any(h["exposures"] for h in document["hosts"])
    touched = {e["address"] for e in read_events(lab.log_path)}
    assert str(prefix[1]) not in touched
    assert touched <= {str(a) for a in prefix}


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("10.0.0.0/19", "more than 4096"),
        ("10.0.0.1/24", "is not a prefix"),
        ("camera.example", "is not a prefix"),
    ],
)
def test_a_survey_beyond_the_bounds_is_refused(
    prefix: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["survey", "--prefix", prefix]) == 2
    assert message in capsys.readouterr().err
