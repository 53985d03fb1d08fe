"""Findings about the agent's own box (psutil), with a listener this test opens on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

from agent.checks.codes import CODES
from agent.checks.host import HostSettings, _listeners, host_findings


def test_host_findings(tmp_path: Path) -> None:
    # whatever else this machine listens on is expected; only the test's own listener is not
    already = {port for _, port in _listeners(include_loopback=True)}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        strict = host_findings(
            tmp_path, HostSettings(expected_ports=frozenset(already), include_loopback=True)
        )
        services, disk, system = strict
        assert (services.code, services.controls) == ("host.unexpected_listeners", ["SVC-11"])
        assert services.evidence["unexpected"] == f"127.0.0.1:{port}"
        assert services.evidence["unexpected_count"] == 1
        assert disk.controls == ["LOG-02"]
        assert (system.code, system.status) == ("host.system", "pass")
        huge = HostSettings(min_free_bytes=2**62)
        assert host_findings(tmp_path, huge)[1].code == "host.disk_low"
    for finding in strict:
        CODES[finding.code].format(**finding.evidence)
