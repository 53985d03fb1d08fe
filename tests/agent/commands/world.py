"""One collector TUF server, one lab camera and one agent executor, all on loopback."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from joserfc.jwk import OKPKey

from agent.commands.executor import Executor
from agent.config import (
    AgentConfig,
    CameraConfig,
    FirmwareConfig,
    NetworkConfig,
    RotationConfig,
)
from agent.messaging.issuer import Issuer
from agent.messaging.outbox import Outbox
from agent.state import StateStore
from agent.vendors.versions import canonical_vendor
from lab.camera import RequestRecord
from lab.fleet import CameraNode
from protocol import (
    Camera,
    Command,
    CommandResult,
    decode_agent_message,
    generate_private_key,
    verify,
)
from protocol.commands import FIRMWARE_APPLY, FirmwareParams
from server.firmware.commands import new_command, signed
from server.firmware.tuf_repo import TufRepository
from tests.support.credentials import FileCredentials

AGENT, SITE = "agent-1", "site-1"
KNOWN = ("hikvision", "dahua", "axis")
PASSWORD = "Adm1n!pass"
MODEL = "DS-2CD2143G2-I"
TARGET = "hikvision/V5.7.3/fw.bin"


def lab_config(
    *,
    persona: str = "hikvision",
    camera_id: str = "hik",
    model: str = MODEL,
    firmware: str = "V5.5.0",
    **upgrade: object,
) -> str:
    """One lab camera of ``persona`` with the agent's admin account and the upgrade faults."""
    fields = ", ".join(f"{k} = {json.dumps(v)}" for k, v in (upgrade or {"reboot_s": 1.0}).items())
    return f"""
[[camera]]
id = "{camera_id}"
persona = "{persona}"
model = "{model}"
firmware = "{firmware}"
firmware_upgrade = {{{fields}}}
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]
"""


LAB = lab_config()


@dataclass
class World:
    state: Path
    tuf_state: Path
    base_url: str
    node: CameraNode
    command_key: OKPKey
    agent_key: OKPKey
    config: AgentConfig
    credentials: FileCredentials

    @classmethod
    def make(
        cls,
        tmp: Path,
        tuf_state: Path,
        base_url: str,
        node: CameraNode,
        *,
        rotation: RotationConfig | None = None,
        others: Sequence[CameraNode] = (),
        network: NetworkConfig | None = None,
    ) -> World:
        """The agent's config lists ``node`` and ``others``, all with the same credential."""
        state = tmp / "agent"
        state.mkdir(mode=0o700)
        command_key = generate_private_key()
        root = TufRepository.under(tuf_state).trusted_root()
        assert root is not None
        (state / "enrollment.json").write_text(
            json.dumps(
                {
                    "agent_id": AGENT,
                    "site": SITE,
                    "status": "approved",
                    "collector_jwk": command_key.as_dict(private=False),
                    "tuf_root": json.loads(root),
                }
            )
        )
        cameras = tuple(
            CameraConfig(
                id=n.id,
                address=n.host,
                http_port=n.ports["http"],
                vendor=vendor if (vendor := canonical_vendor(n.vendor)) in KNOWN else "onvif",
                credentials_ref=n.id,
            )
            for n in (node, *others)
        )
        config = AgentConfig(
            agent_id=AGENT,
            site=SITE,
            state_dir=str(state),
            collector_url=base_url,
            cameras=cameras,
            firmware=FirmwareConfig(
                poll_interval_s=0.2, reboot_timeout_s=20.0, camera_timeout_s=5.0
            ),
            rotation=rotation or RotationConfig(),
            network=network or NetworkConfig(),
        )
        credentials = FileCredentials(tmp / "vault.json")
        for camera in cameras:
            credentials.set(camera.id, "admin", PASSWORD)
        return cls(
            state, tuf_state, base_url, node, command_key, generate_private_key(), config,
            credentials,
        )  # fmt: skip

    def executor(self, reaudited: Callable[[Camera], Awaitable[None]] | None = None) -> Executor:
        outbox = Outbox(self.state / "outbox", 64 * 1024 * 1024, 20_000)
        issuer = Issuer(AGENT, SITE, self.agent_key, StateStore(self.state), outbox)
        return Executor(
            self.config, issuer, self.command_key, self.credentials, reaudited=reaudited
        )

    def command(
        self,
        action: str = FIRMWARE_APPLY,
        *,
        params: dict[str, object] | None = None,
        camera_id: str | None = None,
        agent_id: str = AGENT,
        ttl: timedelta = timedelta(minutes=10),
        now: datetime | None = None,
    ) -> Command:
        return new_command(
            action,
            agent_id=agent_id,
            site=SITE,
            camera_id=camera_id or self.node.id,
            params=params if params is not None else self.firmware(),  # type: ignore[arg-type]
            now=now or datetime.now(UTC),
            ttl=ttl,
        )

    def firmware(
        self, target: str = TARGET, version: str = "V5.7.3", approved: str | None = None
    ) -> dict[str, object]:
        return dict(
            FirmwareParams(
                target=target,
                version=version,
                sha256="0" * 64,
                length=1,
                rollout_id=1,
                downgrade_approved_by=approved,
            ).to_params()
        )

    def sign(self, command: Command, key: OKPKey | None = None) -> bytes:
        return signed(command, key or self.command_key)

    def results(self) -> list[CommandResult]:
        outbox = Outbox(self.state / "outbox", 64 * 1024 * 1024, 20_000)
        out = []
        for entry in outbox.entries():
            token = outbox.read(entry)
            assert token is not None
            message = decode_agent_message(verify(token, lambda _kid: self.agent_key).payload)
            assert isinstance(message, CommandResult)
            out.append(message)
        return out

    def trail(self, command_id: str) -> list[str]:
        return [
            r.step or r.status
            if r.status == "in_progress"
            else r.status + (f":{r.reason}" if r.reason else "")
            for r in self.results()
            if r.command_id == command_id
        ]

    @property
    def log(self) -> list[RequestRecord]:
        return list(self.node.camera.log)


def writes(log: list[RequestRecord]) -> list[RequestRecord]:
    """Requests that change a camera: anything but reads of identity/settings."""
    reads = {"GetDeviceInformation", "GetSystemDateAndTime", "GetNetworkInterfaces",
             "GetNetworkProtocols", "GetProfiles", "GetStreamUri", "GetCapabilities",
             "GetUsers", "GetServices"}  # fmt: skip
    return [r for r in log if r.method != "GET" and r.target not in reads]
