"""Simulated agents answering signed commands over a real broker (tests and bench/rollout.py).

No agent update executor exists yet: these agents verify each command's signature with the
collector's public key and its addressing, then answer with the ``CommandResult`` steps of the
contract in ``server.firmware.commands`` (accepted, preflight ... verifying, succeeded/failed),
signed with their own keys, so the collector's ingest stores them like any agent message.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from joserfc.jwk import OKPKey
from paho.mqtt.enums import CallbackAPIVersion

from protocol import (
    Command,
    CommandResult,
    decode_collector_message,
    encode,
    read_header,
    sign,
    topic,
    verify,
)
from protocol.messages import EvidenceValue
from server.firmware.commands import CMD_TYP, STEPS
from tests.support.agents import SimAgent


class SimFleet:
    """One MQTT client for many simulated agents; ``fail`` names cameras whose flash fails."""

    def __init__(
        self,
        port: int,
        agents: list[SimAgent],
        collector_key: OKPKey,
        *,
        step_delay_s: float = 0.01,
        fail: Callable[[str, str], bool] = lambda _a, _c: False,
    ) -> None:
        self.agents = {a.agent_id: a for a in agents}
        self._key = collector_key
        self._delay = step_delay_s
        self._fail = fail
        self._locks = {a.agent_id: threading.Lock() for a in agents}
        self.commands: list[Command] = []
        self.timeline: list[tuple[float, str, str, str]] = []  # (t, command, status, step)
        self.rejected = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fleet-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("camwarden/v1/+/+/cmd", qos=1)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, name: str, payload: bytes) -> None:
        self.client.publish(name, payload, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        token = bytes(msg.payload)
        if read_header(token).get("typ") != CMD_TYP:
            return  # end-to-end acks
        verified = verify(token, lambda _kid: self._key)
        command = decode_collector_message(verified.payload)
        assert isinstance(command, Command)
        agent = self.agents.get(command.agent_id)
        now = datetime.now(UTC)
        if (
            agent is None
            or agent.site != command.site
            or not (command.issued_at <= now < command.expires_at)
        ):
            self.rejected += 1
            return
        self.commands.append(command)
        threading.Thread(target=self._carry_out, args=(agent, command), daemon=True).start()

    def _result(
        self,
        agent: SimAgent,
        command: Command,
        status: str,
        *,
        step: str | None = None,
        reason: str | None = None,
        details: dict[str, EvidenceValue] | None = None,
    ) -> None:
        with self._locks[agent.agent_id]:
            agent.seq += 1
            message = CommandResult(
                agent_id=agent.agent_id,
                site=agent.site,
                seq=agent.seq,
                issued_at=datetime.now(UTC),
                prev=agent.prev,
                prev_seq=agent.prev_seq,
                command_id=command.command_id,
                status=status,  # type: ignore[arg-type]  # one of CommandStatus
                step=step,
                reason=reason,
                details=details or {},
            )
            token = sign(encode(message), agent.key).encode()
            self.timeline.append((time.monotonic(), command.command_id, status, step or ""))
            self.publish(topic(agent.site, agent.agent_id, "cmd-result"), token)

    def _carry_out(self, agent: SimAgent, command: Command) -> None:
        self._result(agent, command, "accepted")
        for step in STEPS[command.action]:
            time.sleep(self._delay)
            self._result(agent, command, "in_progress", step=step)
            if step == "uploading" and self._fail(agent.agent_id, command.camera_id or ""):
                self._result(agent, command, "failed", step=step, reason="camera_refused")
                return
        version = command.params.get("version")
        self._result(agent, command, "succeeded", step="verifying", details={"version": version})
