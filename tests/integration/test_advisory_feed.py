"""The advisory feed from the collector to the agent: published with ``camwarden-server
advisories publish``, served by ``camwarden-server run`` at ``/advisories/feed``, fetched and
installed by the agent's refresh (what ``camwarden-agent run`` does every ``[advisories]
refresh_s``), then used by the audits. The collector is trusted with delivery only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from joserfc.jwk import OKPKey

from agent.advisories.build import build_feed, sign_feed
from agent.advisories.feed import FeedSignatureError, newest_feed, pinned_feed_keys
from agent.advisories.refresh import FeedUnavailable, Refreshed, fetch_feed, refresh
from agent.config import AdvisoriesConfig, AgentConfig
from protocol.keys import generate_private_key, public_jwk
from tests.agent.audit.conftest import MINI_KEV, NOW, RULES
from tests.agent.support import make_home, start_agent, stop, wait_for
from tests.support import stack
from tests.support.mosquitto import Mosquitto

VERSION = 40  # above the shipped feed's


def _feed(key: OKPKey, version: int = VERSION) -> bytes:
    payload = msgspec.structs.replace(
        build_feed(MINI_KEV, RULES.read_text(encoding="utf-8")), version=version
    )
    return sign_feed(payload, key).encode("ascii")


@pytest.fixture
def org_key() -> OKPKey:
    return generate_private_key()


@pytest.fixture
def keys_file(tmp_path: Path, org_key: OKPKey) -> Path:
    path = tmp_path / "feed-keys.json"
    path.write_text(json.dumps({"keys": [public_jwk(org_key)]}), encoding="utf-8")
    return path


@pytest.fixture
def collector(tmp_path: Path, mosquitto: Mosquitto, keys_file: Path) -> Iterator[stack.Collector]:
    col = stack.Collector(
        tmp_path / "collector",
        mosquitto.port,
        settings=f'[advisories]\nfeed_keys_file = "{keys_file}"',
    )
    yield col
    col.stop()


def _agent(tmp_path: Path, collector: stack.Collector, keys_file: Path) -> AgentConfig:
    state = tmp_path / "agent"
    state.mkdir(mode=0o700, exist_ok=True)
    return AgentConfig(
        agent_id="edge-1",
        site="hq",
        state_dir=str(state),
        collector_url=collector.url,
        advisories=AdvisoriesConfig(feed_keys_file=str(keys_file)),
    )


def test_published_feed_reaches_the_agents_audits(
    tmp_path: Path, collector: stack.Collector, keys_file: Path, org_key: OKPKey
) -> None:
    feed_file = tmp_path / "feed.jws"
    feed_file.write_bytes(_feed(org_key) + b"\n")
    out = collector.cli("advisories", "publish", str(feed_file))
    assert f"advisory feed {VERSION} (signature checked" in out
    collector.start()
    agent = _agent(tmp_path, collector, keys_file)

    served = httpx.get(f"{collector.url}/advisories/feed")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/jose"
    assert served.content == _feed(org_key)

    assert refresh(agent, NOW) == Refreshed(VERSION, installed=True)
    assert refresh(agent, NOW) == Refreshed(VERSION, installed=False)  # nothing new
    trusted = pinned_feed_keys(keys_file)
    audited = newest_feed(agent.state_path, trusted, now=NOW)
    assert (audited.version, audited.kid) == (VERSION, org_key.thumbprint())

    newer = tmp_path / "newer.jws"
    newer.write_bytes(_feed(org_key, VERSION + 1))
    collector.cli("advisories", "publish", str(newer))
    assert refresh(agent, NOW) == Refreshed(VERSION + 1, installed=True)
    assert "advisory feed 41 (signature checked" in collector.cli("advisories", "status")


def test_collector_refuses_to_publish_a_feed_its_keys_did_not_sign(
    tmp_path: Path, collector: stack.Collector, org_key: OKPKey
) -> None:
    good, forged = tmp_path / "good.jws", tmp_path / "forged.jws"
    good.write_bytes(_feed(org_key))
    forged.write_bytes(_feed(generate_private_key(), VERSION + 1))
    collector.cli("advisories", "publish", str(good))
    refused = collector.run("advisories", "publish", str(forged))
    assert refused.returncode == 1
    assert "feed refused: unknown_key" in refused.stderr
    report = tmp_path / "report.jws"
    report.write_text("eyJhbGciOiJFZERTQSJ9.e30." + "A" * 86)
    refused = collector.run("advisories", "publish", str(report))
    assert refused.returncode == 1
    assert "feed refused" in refused.stderr
    assert (collector.home / "advisories.jws").read_bytes() == good.read_bytes()


def test_agent_refuses_what_a_compromised_collector_serves(
    tmp_path: Path, mosquitto: Mosquitto, keys_file: Path, org_key: OKPKey
) -> None:
    """A collector without pinned feed keys publishes anything well-formed; the agents check."""
    col = stack.Collector(tmp_path / "loose", mosquitto.port)
    try:
        agent = _agent(tmp_path, col, keys_file)
        col.start()
        assert refresh(agent, NOW) == Refreshed(None, installed=False)  # nothing published
        forged = tmp_path / "forged.jws"
        forged.write_bytes(_feed(generate_private_key()))
        assert "signature NOT checked" in col.cli("advisories", "publish", str(forged))
        with pytest.raises(FeedSignatureError, match="not pinned"):
            refresh(agent, NOW)
        assert not (agent.state_path / "advisories.jws").exists()
        assert newest_feed(agent.state_path, pinned_feed_keys(keys_file), now=NOW).version == 1
    finally:
        col.stop()


def test_the_daemon_refreshes_the_feed_on_its_schedule(
    tmp_path: Path,
    collector: stack.Collector,
    mosquitto: Mosquitto,
    keys_file: Path,
    org_key: OKPKey,
) -> None:
    """``camwarden-agent run`` installs the published feed at start and a newer one on its next
    refresh; audits are off, so only the refresh timer touches the feed."""
    feed_file = tmp_path / "feed.jws"
    feed_file.write_bytes(_feed(org_key))
    collector.cli("advisories", "publish", str(feed_file))
    collector.start()
    config = make_home(
        tmp_path / "edge",
        mosquitto.port,
        extra=(
            f'[advisories]\nfeed_url = "{collector.url}/advisories/feed"\n'
            f'feed_keys_file = "{keys_file}"\nrefresh_s = 0.5\n[audit]\nenabled = false'
        ),
    )
    installed = config.parent / "state" / "advisories.jws"
    proc = start_agent(config)
    try:
        wait_for(lambda: installed.exists() and installed.read_bytes() == _feed(org_key))
        feed_file.write_bytes(_feed(org_key, VERSION + 1))
        collector.cli("advisories", "publish", str(feed_file))
        wait_for(lambda: installed.read_bytes() == _feed(org_key, VERSION + 1))
    finally:
        stop(proc)
    log = (config.parent / "agent.log").read_text()
    assert f"advisory feed {VERSION} installed from {collector.url}/advisories/feed" in log
    assert f"advisory feed {VERSION + 1} installed" in log


def test_refresh_reports_what_it_cannot_fetch(tmp_path: Path, keys_file: Path) -> None:
    with pytest.raises(FeedUnavailable, match="only http and https"):
        fetch_feed("file:///etc/passwd")
    closed = AgentConfig(
        agent_id="edge-1", site="hq", state_dir=str(tmp_path), collector_url="http://127.0.0.1:9"
    )
    with pytest.raises(FeedUnavailable, match=r"127\.0\.0\.1:9"):
        refresh(closed, NOW)
