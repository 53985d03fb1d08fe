"""The survey against the provider-range lab (loopback mode, a /24): every seeded exposure found,
no credential sent, nothing outside the prefixes (nor excluded or opted-out) touched, the rate
limit held, and the result cut into parts that fit the contract."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from agent.advisories.feed import load_feed, shipped_feed, shipped_feed_keys
from agent.survey.probe import Plan
from agent.survey.rate import Rate
from agent.survey.sweep import OutsideScope, Shard, probe_in_scope, sweep
from lab.survey import SEEDED, SurveyLab, read_events
from lab.testing import private_base
from protocol.survey import DEFAULT_PORTS, Scope, parse_networks

SHIFT = 20000
pytestmark = pytest.mark.asyncio(loop_scope="module")  # the lab and its one survey, shared


@dataclass
class Surveyed:
    lab: SurveyLab
    shard: Shard
    excluded: str
    opted_out: str
    outside: str


def _plan(**changes: object) -> Plan:
    feed = load_feed(shipped_feed(), shipped_feed_keys(), now=datetime.now(UTC), last=None)
    fields: dict[str, object] = {
        "ports": DEFAULT_PORTS, "udp_ports": (1900,), "offset": SHIFT, "timeout_s": 2.0,
        "feed": feed, "udp_window_s": 0.5,
    }  # fmt: skip
    fields.update(changes)
    return Plan(**fields)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def surveyed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Surveyed]:
    base, beyond = private_base(), private_base()  # two blocks of this process: ours alone
    network = ipaddress.IPv4Network(f"{base}/24")
    outside = str(beyond + 1)
    log = tmp_path_factory.mktemp("survey") / "requests.jsonl"
    lab = await SurveyLab.start(str(network), log, shift=SHIFT, sentinels=[outside])
    try:
        excluded = next(h.address for h in lab.hosts if h.kind == "hik_kev")
        opted_out = next(h.address for h in lab.hosts if h.kind == "hik_safe")
        shard = await sweep(
            (network,),
            exclude=parse_networks(excluded),
            opt_out=parse_networks(opted_out),
            plan=_plan(),
            rate=Rate.of(10000, 2000),
            host_deadline_s=20,
            deadline_s=300,
        )
        yield Surveyed(lab, shard, excluded, opted_out, outside)
    finally:
        await lab.stop()


async def test_every_seeded_exposure_is_found(surveyed: Surveyed) -> None:
    found = {h.address: {(e.code, e.port) for e in h.exposures} for h in surveyed.shard.hosts}
    for host in surveyed.lab.hosts:
        if host.address in (surveyed.excluded, surveyed.opted_out):
            assert host.address not in found
            continue
        assert found.get(host.address, set()) == SEEDED[host.kind], host
    assert set(found) <= set(surveyed.lab.by_address())
    exposed = {k for k, v in SEEDED.items() if v}
    assert exposed == {"upnp_router", "hik_kev", "hik_safe", "dahua_open", "snapshot_cam",
                       "telnet_dvr"}  # fmt: skip


async def test_identity_comes_from_what_the_device_shows(surveyed: Surveyed) -> None:
    kinds = surveyed.lab.by_address()
    for host in surveyed.shard.hosts:
        kind = kinds[host.address].kind
        if kind == "hik_kev":
            assert host.identity.vendor == "hikvision"
            assert (host.identity.model, host.identity.firmware) == (
                "DS-2CD2042WD-I",
                "V5.4.5 build 170123",
            )
            assert "onvif without credentials" in (host.identity.source or "")
            kev = next(e for e in host.exposures if e.code == "survey.kev_firmware")
            assert kev.evidence["cve"] == "CVE-2021-36260"
        if kind == "dahua_open":
            assert host.identity.vendor == "dahua"
        if kind == "telnet_dvr":
            assert host.identity.vendor == "xiongmai"


async def test_the_summary_counts_the_shard(surveyed: Surveyed) -> None:
    shard = surveyed.shard
    assert (shard.addresses, shard.excluded, shard.opted_out, shard.probed) == (256, 1, 1, 254)
    assert shard.complete
    answered = {h.address for h in shard.hosts}
    # every host but the avoided answers on some port; one that resets may look closed
    steady = {h.address for h in surveyed.lab.hosts if h.kind != "resetting"}
    assert steady - {surveyed.excluded, surveyed.opted_out} <= answered


async def test_no_credential_was_ever_sent(surveyed: Surveyed) -> None:
    events = list(read_events(surveyed.lab.log_path))
    kinds = {e["event"] for e in events}
    assert {"connect", "http", "rtsp", "ssdp", "data"} <= kinds  # every kind of probe ran
    assert [e for e in events if e.get("credential")] == []
    methods = {e.get("method") for e in events if e["event"] == "rtsp"}
    assert methods == {"OPTIONS", "DESCRIBE"}


async def test_nothing_outside_the_scope_was_touched(surveyed: Surveyed) -> None:
    events = list(read_events(surveyed.lab.log_path))
    touched = {e["address"] for e in events}
    network = surveyed.lab.network
    assert all(ipaddress.IPv4Address(a) in network for a in touched)
    for avoided in (surveyed.excluded, surveyed.opted_out, surveyed.outside):
        assert avoided not in touched


async def test_an_address_outside_the_scope_is_refused_before_any_packet(
    surveyed: Surveyed,
) -> None:
    before = len(list(read_events(surveyed.lab.log_path)))
    scope = Scope(parse_networks(str(surveyed.lab.network)), parse_networks(surveyed.excluded))
    for address in (surveyed.outside, surveyed.excluded):
        with pytest.raises(OutsideScope):
            await probe_in_scope(address, scope, _plan(), Rate.of(100, 100), 5)
    assert len(list(read_events(surveyed.lab.log_path))) == before


async def test_the_rate_limit_holds(surveyed: Surveyed) -> None:
    """A /27 at 60 connections per second: the lab sees no more in any second, and the agent
    took at least the time its count of connections needs."""
    cps = 60
    network = next(surveyed.lab.network.subnets(new_prefix=27))
    start = time.time()
    rate = Rate.of(1000, cps)
    began = time.monotonic()
    await sweep((network,), plan=_plan(), rate=rate, host_deadline_s=20, deadline_s=120)
    elapsed = time.monotonic() - began
    assert rate.connections.sent >= 32 * len(DEFAULT_PORTS)
    assert elapsed >= (rate.connections.sent - 1) / cps
    stamps = sorted(
        e["at"]
        for e in read_events(surveyed.lab.log_path)
        if e["event"] == "connect" and e["at"] >= start
    )
    assert stamps
    # two-second windows: the lab logs a connection when its loop gets to it, which a loaded
    # machine may bunch; the pacer itself never releases a burst (test above: its timing)
    busiest = max(sum(1 for t in stamps if s <= t < s + 2.0) for s in stamps)
    assert busiest <= 2 * cps + 5
