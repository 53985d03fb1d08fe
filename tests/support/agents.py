"""Simulated agents that sign real camwarden/v1 messages (tests and benchmarks)."""

from __future__ import annotations

from datetime import UTC, datetime

from joserfc.jwk import OKPKey

from protocol import (
    GENESIS,
    AgentInfo,
    Camera,
    Finding,
    Heartbeat,
    HostHealth,
    Identity,
    StatusReport,
    digest,
    encode,
    generate_private_key,
    public_jwk,
    sign,
    topic,
)


class SimAgent:
    """Keeps seq and the report chain like a real agent; every method returns (topic, JWS)."""

    def __init__(self, agent_id: str, site: str = "site-1", key: OKPKey | None = None) -> None:
        self.agent_id = agent_id
        self.site = site
        self.key = key or generate_private_key()
        self.seq = 0
        self.prev = GENESIS
        self.prev_seq = 0

    @property
    def jwk(self) -> dict[str, str]:
        return public_jwk(self.key)

    def report(
        self,
        cameras: int = 2,
        issued_at: datetime | None = None,
        key: OKPKey | None = None,
        address: str | None = None,
    ) -> tuple[str, bytes]:
        """``address``: every camera's address (signed as given, even where the schema refuses
        it), instead of one per camera."""
        self.seq += 1
        when = issued_at or datetime.now(UTC)
        cams = [
            Camera(
                camera_id=f"cam-{n}",
                address=f"10.99.0.{10 + n}" if address is None else address,
                reachable=n % 3 != 2,
                identity=Identity(vendor="Hikvision", model="DS-2CD2143G2-I", firmware="V5.5.0"),
                findings=[
                    Finding(
                        code="auth.default_credential",
                        check="default-credentials",
                        status="fail",
                        severity="critical",
                        controls=["AUTH-01", "AUTH-02"],
                        evidence={
                            "entry": "hikvision-12345",
                            "account": "admin",
                            "interface": "onvif",
                        },
                    ),
                    Finding(
                        code="tls.disabled",
                        check="transport",
                        status="pass",
                        severity="high",
                        controls=["NET-03"],
                    ),
                ],
                audited_at=when,
                # as the agent reports it: a camera that did not answer was not audited
                audit="audited" if n % 3 != 2 else "unreachable",
                audit_reason=None if n % 3 != 2 else "identification failed: no answer",
            )
            for n in range(cameras)
        ]
        message = StatusReport(
            agent_id=self.agent_id,
            site=self.site,
            seq=self.seq,
            issued_at=when,
            prev=self.prev,
            prev_seq=self.prev_seq,
            agent=AgentInfo(version="0.1.0", hostname=self.agent_id, platform="Linux-aarch64"),
            host=HostHealth(
                cpu_percent=3.5,
                memory_percent=41.0,
                disk_free_bytes=10**10,
                uptime_s=3600.0,
                load1=0.2,
            ),
            cameras=cams,
        )
        token = sign(encode(message), key or self.key).encode()
        self.prev, self.prev_seq = digest(token), self.seq
        return topic(self.site, self.agent_id, "report"), token

    def heartbeat(self, issued_at: datetime | None = None) -> tuple[str, bytes]:
        self.seq += 1
        message = Heartbeat(
            agent_id=self.agent_id,
            site=self.site,
            seq=self.seq,
            issued_at=issued_at or datetime.now(UTC),
            prev=self.prev,
            prev_seq=self.prev_seq,
            uptime_s=10.0,
            outbox_depth=0,
            cameras_known=2,
        )
        token = sign(encode(message), self.key).encode()
        return topic(self.site, self.agent_id, "heartbeat"), token
