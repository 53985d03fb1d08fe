"""The survey in namespace mode: the agent in its own namespace, the range behind a veth pair,
so that every packet the agent sends passes the range's nftables counter. A /24 here (the /22
runs in ``bench/survey.py``): every seeded exposure found, not one packet outside the prefix,
dropping hosts silent."""

from __future__ import annotations

import ipaddress
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab import netns
from lab.survey import SEEDED, SurveyLab, read_events

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not netns.available() or shutil.which("nft") is None,
        reason="ip netns and nft are needed (root; scripts/install-system-deps.sh test)",
    ),
]
AGENT = Path(sys.executable).parent / "camwarden-agent"


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[SurveyLab]:
    started = await SurveyLab.start("10.77.4.0/24", tmp_path / "lab.jsonl", mode="netns")
    try:
        yield started
    finally:
        await started.stop()


async def test_a_range_surveyed_from_its_own_namespace(lab: SurveyLab, tmp_path: Path) -> None:
    out = tmp_path / "survey.json"
    done = await netns.arun_in(
        lab.agent_namespace,
        [str(AGENT), "survey", "--prefix", str(lab.network), "--rate-cps", "2000",
         "--rate-pps", "10000", "--out", str(out)],
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert lab.outside_packets() == 0
    document = json.loads(out.read_bytes())
    found = {
        h["address"]: {(e["code"], e["port"]) for e in h["exposures"]} for h in document["hosts"]
    }
    for host in lab.hosts:
        if host.kind == "dropping":
            assert host.address not in found
        elif SEEDED[host.kind]:
            assert found[host.address] == SEEDED[host.kind], host
    events = list(read_events(lab.log_path))
    assert not any(e.get("credential") for e in events)
    assert {ipaddress.ip_address(e["address"]) in lab.network for e in events} == {True}
    # the counter is live: one datagram to an address outside the prefix is counted
    await netns.arun_in(
        lab.agent_namespace,
        [sys.executable, "-c", "import socket; socket.socket(socket.AF_INET, "
         "socket.SOCK_DGRAM).sendto(b'x', ('10.77.5.1', 9))"],
    )  # fmt: skip
    assert lab.outside_packets() == 1
