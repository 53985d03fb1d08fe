"""The anonymous enrollment endpoints under a flood, over HTTP against the real app: limited per
source address, unknown agent ids refused before they take a challenge slot, and a real agent
from another address still served."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from protocol.keys import generate_private_key
from server.api import create_app
from server.config import HttpConfig
from server.storage import Repository
from tests.server.conftest import make_config, serve
from tests.web.conftest import World

pytestmark = pytest.mark.integration

PER_MINUTE = 5
REAL = "agent-a1"  # enrolled and approved by the world fixture


@pytest.fixture
def collector(repo: Repository, db_url: str, world: World) -> Iterator[httpx.Client]:
    config = msgspec.structs.replace(
        make_config(db_url),
        state_dir=str(world.firmware.state_dir),
        http=HttpConfig(anonymous_per_minute=PER_MINUTE, trusted_proxies=["127.0.0.1"]),
    )
    with serve(create_app(config, repo, command_key=generate_private_key())) as client:
        yield client


def from_address(client: httpx.Client, address: str) -> httpx.Client:
    """A client whose connections leave from another loopback address."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=client.base_url, transport=transport, timeout=60)


def challenge(client: httpx.Client, agent_id: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(f"/api/v1/agents/{agent_id}/challenge", headers=headers).status_code


def test_one_address_is_limited(collector: httpx.Client) -> None:
    answers = [challenge(collector, REAL) for _ in range(PER_MINUTE + 3)]
    assert answers[:PER_MINUTE] == [200] * PER_MINUTE
    assert set(answers[PER_MINUTE:]) == {429}
    refused = collector.post("/api/v1/enroll", json={})  # the same budget, before validation
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60 / PER_MINUTE + 1
    other = from_address(collector, "127.0.0.2")
    try:
        assert challenge(other, REAL) == 200  # another address has its own budget
    finally:
        other.close()


def test_unknown_and_revoked_agents_get_no_challenge(
    collector: httpx.Client, repo: Repository
) -> None:
    assert challenge(collector, "no-such-agent") == 404
    assert challenge(collector, "agent-a2") == 200  # pending: it may fetch once approved
    assert repo.set_status("agent-b1", "revoked", datetime.now(UTC))
    assert challenge(collector, "agent-b1") == 404


def test_a_flood_from_many_addresses_leaves_a_real_agent_served(collector: httpx.Client) -> None:
    """Through a trusted proxy, 600 requests from 200 addresses: made-up ids are refused before
    they take a slot, the real id holds a few open challenges at most; the agent is served."""
    answers: Counter[int] = Counter()
    for n in range(200):
        forwarded = f"198.51.100.{n % 250}" if n < 100 else f"203.0.113.{n % 250}"
        for agent_id in (f"ghost-{n}", f"ghost-{n}-b", REAL):
            answers[challenge(collector, agent_id, forwarded)] += 1
    assert answers == {404: 400, 200: 200}
    assert challenge(collector, REAL, "192.0.2.1") == 200
