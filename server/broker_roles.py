"""Each approved agent's rights on the broker, kept in Mosquitto's dynamic-security plugin.

Mosquitto 2.0's ``acl_file`` grants every SUBSCRIBE and checks only each delivery, so an agent
could join the collectors' shared subscription and take its turn of their messages, which the
broker then dropped. The packaged broker (``packaging/mosquitto``) uses the dynamic-security
plugin instead: it checks SUBSCRIBE too, and what no role grants is denied. Its file ships the
collector's roles; this module gives each agent, when it is approved, a role
``camwarden-agent-<agent_id>`` (publish its own status channels, subscribe to and receive its
own ``cmd``) and a client of that name holding it, and removes both when the agent is revoked
(the plugin then also disconnects the agent at once). An agent the plugin does not know may do
nothing at all.

The collector talks to the plugin as an MQTT client with the ``camwarden-broker-admin`` role,
over ``$CONTROL/dynamic-security/v1``. Approval and revocation happen in the CLI, the operator
API and the dashboard (``Repository.status_listeners``: ``on_status``); if the broker cannot be
reached then, the collector's ``sync`` (at start and every ``SYNC_INTERVAL_S``) brings the
plugin in line with the agents' status, so a missed approval only delays the agent.

Errors::

    BrokerRolesError      the broker could not be reached, did not answer, or refused a command
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final

from protocol.topics import AGENT_CHANNELS, topic
from server.config import MqttConfig
from server.ingest.subscriber import control_request

log = logging.getLogger(__name__)

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = f"{CONTROL_TOPIC}/response"
ROLE_PREFIX: Final = "camwarden-agent-"
SYNC_INTERVAL_S: Final = 60.0
TIMEOUT_S: Final = 10.0
# commands per request: one broker answer stays far below the packaged max_packet_size
_CHUNK: Final = 200
# what a repeated create or delete answers: the state is already the wanted one
_ALREADY: Final = frozenset(
    {"Role already exists", "Client already exists", "Role not found", "Client not found"}
)

Command = dict[str, Any]
# one request: commands out, the plugin's responses (one per command, in order) back
Transport = Callable[[list[Command]], list[Command]]


class BrokerRolesError(Exception):
    """The broker could not be reached, did not answer, or refused a command."""


def role_name(agent_id: str) -> str:
    return ROLE_PREFIX + agent_id


def _acl(acltype: str, name: str) -> Command:
    return {"acltype": acltype, "topic": name, "priority": 0, "allow": True}


def grant(agent_id: str) -> list[Command]:
    """The role and client that let ``agent_id`` publish its status and read its commands."""
    # topic() refuses an id that is not one topic level: no "+", "#" or "/" reaches an ACL
    own = [topic("site", agent_id, ch).replace("/site/", "/+/", 1) for ch in AGENT_CHANNELS]
    commands = topic("site", agent_id, "cmd").replace("/site/", "/+/", 1)
    acls = [_acl("publishClientSend", name) for name in own]
    acls += [_acl("subscribePattern", commands), _acl("publishClientReceive", commands)]
    role = role_name(agent_id)
    return [
        {"command": "createRole", "rolename": role, "acls": acls},
        {
            "command": "createClient",
            "username": agent_id,
            "textname": "camwarden agent",
            "roles": [{"rolename": role}],
        },
    ]


def withdraw(agent_id: str) -> list[Command]:
    """Remove the agent's client (the plugin disconnects it) and its role."""
    return [
        {"command": "deleteClient", "username": agent_id},
        {"command": "deleteRole", "rolename": role_name(agent_id)},
    ]


def plan(approved: Collection[str], roles: Iterable[str], clients: Iterable[str]) -> list[Command]:
    """The commands that make the plugin hold exactly the approved agents' roles and clients,
    given the role and client names it lists (other roles and clients are left alone)."""
    ours = {name.removeprefix(ROLE_PREFIX) for name in roles if name.startswith(ROLE_PREFIX)}
    present = set(clients)
    commands: list[Command] = []
    for agent_id in sorted(approved):
        role, client = grant(agent_id)
        commands += [role] if agent_id not in ours else []
        commands += [client] if agent_id not in present else []
    for agent_id in sorted(ours - set(approved)):
        commands += withdraw(agent_id)
    return commands


class BrokerRoles:
    """Applies agents' status changes to the broker through ``transport``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def on_status(self, agent_id: str, status: str) -> None:
        """``Repository.status_listeners``: never raises; a miss is repaired by ``sync``."""
        if status not in ("approved", "revoked"):
            return
        try:
            self.apply(grant(agent_id) if status == "approved" else withdraw(agent_id))
        except BrokerRolesError as exc:
            log.warning(
                "the broker did not take the %s of agent %s (%s); the collector retries "
                "within %.0f s",
                status,
                agent_id,
                exc,
                SYNC_INTERVAL_S,
            )
        else:
            log.info("broker rights of agent %s: %s", agent_id, status)

    def sync(self, approved: Callable[[], Collection[str]]) -> int:
        """Bring the plugin in line with the ``approved`` agents; returns how many commands
        it took. The plugin is listed first and the agents read after, so an approval or a
        revocation applied in between is repeated (harmless), never undone."""
        listed = self.apply([{"command": "listRoles"}, {"command": "listClients"}])
        roles, clients = (
            _names(r, key) for r, key in zip(listed, ("roles", "clients"), strict=True)
        )
        commands = plan(approved(), roles, clients)
        self.apply(commands)
        if commands:
            log.info("broker rights synchronised: %d command(s)", len(commands))
        return len(commands)

    def apply(self, commands: list[Command]) -> list[Command]:
        """Send ``commands`` in order; the responses, or BrokerRolesError on any refusal."""
        responses: list[Command] = []
        for start in range(0, len(commands), _CHUNK):
            chunk = commands[start : start + _CHUNK]
            answered = self._transport(chunk)
            if len(answered) != len(chunk):
                raise BrokerRolesError(f"{len(answered)} responses to {len(chunk)} commands")
            for command, response in zip(chunk, answered, strict=True):
                error = response.get("error")
                if error is not None and error not in _ALREADY:
                    raise BrokerRolesError(f"{command['command']}: {error}")
            responses += answered
        return responses


def _names(response: Command, key: str) -> list[str]:
    names = response.get("data", {}).get(key)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BrokerRolesError(f"the broker's {key} list is malformed")
    return names


def mqtt_transport(config: MqttConfig, timeout_s: float = TIMEOUT_S) -> Transport:
    """The plugin's control topic on the broker of ``config``, as the collector."""

    def send(commands: list[Command]) -> list[Command]:
        token = secrets.token_hex(8)
        payload = json.dumps(
            {"commands": [{**c, "correlationData": token} for c in commands]}
        ).encode()

        def ours(answer: bytes) -> bool:
            return _responses(answer, token) is not None

        try:
            answer = control_request(
                config, (CONTROL_TOPIC, payload), RESPONSE_TOPIC, ours, timeout_s
            )
        except OSError as exc:  # unreachable, TLS refused, no answer (TimeoutError)
            raise BrokerRolesError(str(exc)) from exc
        responses = _responses(answer, token)
        if responses is None:  # ``ours`` accepted it
            raise BrokerRolesError("the broker's answer changed")
        return responses

    return send


def _responses(answer: bytes, token: str) -> list[Command] | None:
    """The plugin's responses if ``answer`` answers the request tagged ``token``."""
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    responses = parsed.get("responses") if isinstance(parsed, dict) else None
    if not isinstance(responses, list) or not responses:
        return None
    if not all(isinstance(r, dict) and r.get("correlationData") == token for r in responses):
        return None
    return responses


def from_config(config: MqttConfig) -> BrokerRoles | None:
    """The broker's agent roles, if ``[mqtt] dynamic_security`` is on."""
    return BrokerRoles(mqtt_transport(config)) if config.dynamic_security else None


def listeners(config: MqttConfig) -> list[Callable[[str, str], None]]:
    """For ``Repository.status_listeners``: the broker roles' ``on_status``, if configured."""
    roles = from_config(config)
    return [roles.on_status] if roles is not None else []


__all__ = [
    "BrokerRoles",
    "BrokerRolesError",
    "Command",
    "from_config",
    "grant",
    "listeners",
    "plan",
    "withdraw",
]
