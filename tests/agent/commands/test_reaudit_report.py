"""A remediation's re-audit reaches the collector as an ordinary status report: the re-run
checks' findings replace those of the same checks in the daemon's last audit, the others stay."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from agent.audit.results import AuditResult
from agent.config import AgentConfig, CameraConfig
from agent.messaging.issuer import Issuer
from agent.messaging.outbox import Outbox
from agent.runner import Agent
from agent.state import StateStore
from protocol import Camera, Finding, StatusReport, decode_agent_message, generate_private_key
from protocol import verify as verify_envelope
from protocol.messages import Identity


def finding(check: str, code: str, status: str, control: str) -> Finding:
    return Finding(code=code, check=check, status=status, severity="high", controls=[control])  # type: ignore[arg-type]


def camera(camera_id: str, *findings: Finding) -> Camera:
    return Camera(
        camera_id=camera_id,
        address="127.0.0.2",
        reachable=True,
        identity=Identity(),
        findings=list(findings),
        audit="audited",
    )


async def test_reaudited_findings_replace_those_of_the_same_checks(tmp_path: Path) -> None:
    key = generate_private_key()
    config = AgentConfig(
        agent_id="agent-1",
        site="site-1",
        state_dir=str(tmp_path),
        cameras=(CameraConfig(id="cam", address="127.0.0.2"),),
    )
    agent = Agent(config, key)
    outbox = Outbox(tmp_path / "outbox", 1024 * 1024, 100)
    agent._issuer = Issuer("agent-1", "site-1", key, StateStore(tmp_path), outbox)
    # the report is read from the outbox; the MQTT publisher (woken after each) is not needed
    agent._publisher = SimpleNamespace(wake=lambda: None)  # type: ignore[assignment]
    telnet_open = finding("cleartext", "svc.telnet_open", "fail", "SVC-02")
    ssh_open = finding("ssh", "svc.ssh_open", "fail", "SVC-03")
    other = camera("other", finding("ssh", "svc.ssh_open", "fail", "SVC-03"))
    agent._audit = AuditResult(
        (camera("cam", telnet_open, ssh_open), other), (), datetime.now(UTC), 1.0
    )
    no_telnet = finding("cleartext", "svc.no_cleartext", "pass", "SVC-02")
    await agent._reaudited(camera("cam", no_telnet))
    [entry] = outbox.entries()
    token = outbox.read(entry)
    assert token is not None
    report = decode_agent_message(verify_envelope(token, lambda _kid: key).payload)
    assert isinstance(report, StatusReport)
    cameras = {c.camera_id: c for c in report.cameras}
    assert cameras["cam"].findings == [ssh_open, no_telnet]
    assert cameras["other"].findings == other.findings
