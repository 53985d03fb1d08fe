"""The NATS cluster launcher of lab/cluster.py: three routed nodes on loopback, one killed and
brought back, a new authorization reloaded on every running node."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from lab.cluster import NatsCluster

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("nats-server") is None, reason="nats-server not installed"),
]


def test_three_nodes_form_one_jetstream_cluster_and_survive_a_kill(tmp_path: Path) -> None:
    with NatsCluster(tmp_path / "nats", size=3) as cluster:
        assert len({n.port for n in cluster.nodes} | {n.mqtt_port for n in cluster.nodes}) == 6
        meta = cluster.nodes[0].varz("jsz")["meta_cluster"]
        assert isinstance(meta, dict)
        assert meta["cluster_size"] == 3
        assert cluster.nodes[0].varz("routez")["num_routes"] >= 2

        cluster.kill(1)
        assert cluster.nodes[1].proc is None
        cluster.start_node(1)
        assert cluster.nodes[1].running
        cluster.nodes[1].varz("healthz?js-enabled-only=true")

        cluster.authorize("authorization { users: [ {user: a, password: b} ] }\n")
        for node in cluster.nodes:  # every node took it: anonymous clients are refused now
            for _ in range(100):
                if node.varz("varz").get("auth_required"):
                    break
                time.sleep(0.1)
            assert node.varz("varz").get("auth_required") is True
    assert not any(n.running for n in cluster.nodes)
