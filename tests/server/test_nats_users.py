"""Each approved agent's user on a NATS cluster (server.broker_roles.NatsUsers, docs/adr/0032):
its certificate lets it publish its own status and read its own commands on any node, nothing
of another agent's; revoking it rewrites the authorization and reloads every node, which cut it
off at once and refuse it on every node."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cluster import NatsCluster
from server.broker_roles import NatsUsers, nats_authorization, nats_user
from tests.support.nats import Peer, peer, reload_commands, settle, tls_cluster

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("nats-server") is None, reason="nats-server not installed"),
]

REPORT_A = "camwarden/v1/s1/agent-a/report"
REPORT_B = "camwarden/v1/s1/agent-b/report"
CMD_A = "camwarden/v1/s1/agent-a/cmd"
CMD_B = "camwarden/v1/s1/agent-b/cmd"


def test_an_agents_user_names_its_own_subjects_only() -> None:
    user = nats_user("agent-a")
    assert user["user"] == "CN=agent-a"
    assert user["permissions"]["publish"]["allow"] == [
        "camwarden.v1.*.agent-a.report",
        "camwarden.v1.*.agent-a.heartbeat",
        "camwarden.v1.*.agent-a.cmd-result",
    ]
    assert user["permissions"]["subscribe"]["allow"] == [
        "camwarden.v1.*.agent-a.cmd",
        "$MQTT.sub.>",
    ]
    text = nats_authorization(["agent-b", "agent-a", "dotted.agent"])
    assert text.index('"CN=agent-a"') < text.index('"CN=agent-b"')
    assert '"CN=camwarden-collector"' in text
    assert "dotted.agent" not in text  # one subject token only: no user


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = tls_cluster(tmp_path, ["agent-a", "agent-b"], approved=["agent-a", "agent-b"])
    with nodes:
        yield nodes


def _refused(p: Peer) -> bool:
    return bool(p.connects) and p.connects[-1].is_failure


def test_agents_are_confined_and_a_revoked_agent_is_cut_off_on_every_node(
    cluster: NatsCluster,
) -> None:
    approved = {"agent-a", "agent-b"}
    users = NatsUsers(cluster.auth_file, reload_commands(cluster), lambda: approved)
    collector = peer(cluster, "collector", 2)
    a, b = peer(cluster, "agent-a", 0), peer(cluster, "agent-b", 1)
    peers = [collector, a, b]
    try:
        assert not any(_refused(p) for p in peers)
        assert [r.value for r in collector.subscribe("camwarden/v1/+/+/report")] == [1]
        assert [r.value for r in a.subscribe(CMD_A)] == [1]
        assert [r.value for r in b.subscribe(CMD_B)] == [1]
        # another agent's commands, everything, the listener's own delivery subjects: refused
        for name in (CMD_B, "camwarden/v1/#", "#", "$MQTT/sub/#"):
            assert [r.value for r in a.subscribe(name)] == [0x80], name

        a.publish(REPORT_A, b"own")
        a.publish(REPORT_B, b"forged")  # 3.1.1 PUBACKs it; the node drops it
        collector.wait(lambda: collector.received or None)
        collector.publish(CMD_B, b"for b")
        b.wait(lambda: [m for m in b.received if m[0] == CMD_B] or None)
        settle()
        assert collector.received == [(REPORT_A, b"own")]
        assert a.received == []

        approved.discard("agent-a")
        users.on_status("agent-a", "revoked")
        a.wait(lambda: _refused(a) or None)  # dropped by its node, refused when it came back
        for node in range(len(cluster.nodes)):
            again = peer(cluster, "agent-a", node)
            peers.append(again)
            assert _refused(again), node
        b.publish(REPORT_B, b"still here")  # the others carry on
        collector.wait(lambda: len(collector.received) == 2 or None)
        assert collector.received[1] == (REPORT_B, b"still here")
        assert users.sync(lambda: approved) == 0  # nothing changed since: no reload
    finally:
        for p in peers:
            p.close()
