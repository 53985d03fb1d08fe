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

On a NATS cluster (``[broker] kind = "nats"``, docs/adr/0032) the same two calls keep
``NatsUsers``: every approved agent is a user of the shared authorization file the nodes
include, named after its certificate (``CN=<agent_id>``, the nodes' ``verify_and_map``), that
may publish its own status subjects and subscribe to its own ``cmd`` only; the collector's
certificate gets every right. A change rewrites the file and runs each node's reload command:
a user no longer listed is disconnected by every node that reloads, and a node that was down
reads the file when it starts.

Errors::

    BrokerRolesError      the broker could not be reached, did not answer, or refused a command
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from protocol.topics import AGENT_CHANNELS, topic
from server.config import MqttConfig, ServerConfig
from server.ingest.subscriber import control_request
from server.pki import COLLECTOR_IDENTITY
from server.storage import Repository
from service.files import atomic_write

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


def _take_status(
    agent_id: str, status: str, change: Callable[[], object], *, broker: str, rights: str
) -> None:
    """An approval or a revocation (other statuses are no business of the broker) passed on by
    ``change``; a ``BrokerRolesError`` is logged for the operator, never raised, and the next
    ``sync`` repairs it."""
    if status not in ("approved", "revoked"):
        return
    try:
        change()
    except BrokerRolesError as exc:
        log.warning(
            "%s did not take the %s of agent %s (%s); the collector retries within %.0f s",
            broker,
            status,
            agent_id,
            exc,
            SYNC_INTERVAL_S,
        )
    else:
        log.info("%s of agent %s: %s", rights, agent_id, status)


class BrokerRoles:
    """Applies agents' status changes to the broker through ``transport``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def on_status(self, agent_id: str, status: str) -> None:
        """``Repository.status_listeners``: never raises; a miss is repaired by ``sync``."""
        _take_status(
            agent_id,
            status,
            lambda: self.apply(grant(agent_id) if status == "approved" else withdraw(agent_id)),
            broker="the broker",
            rights="broker rights",
        )

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


# -- a NATS cluster ----------------------------------------------------------------------------

RELOAD_TIMEOUT_S: Final = 10.0
# what the MQTT listener itself subscribes for a QoS 1 subscription (the delivery subject of its
# JetStream consumer); MQTT clients cannot name it: the listener refuses topics under $MQTT
_MQTT_DELIVERY: Final = "$MQTT.sub.>"


def _subject_of(name: str) -> str:
    return name.replace("/", ".")


def nats_user(agent_id: str) -> dict[str, Any]:
    """The agent's user: its certificate's subject, its own subjects only."""
    own = [
        _subject_of(topic("site", agent_id, ch)).replace(".site.", ".*.", 1)
        for ch in AGENT_CHANNELS
    ]
    commands = _subject_of(topic("site", agent_id, "cmd")).replace(".site.", ".*.", 1)
    return {
        "user": f"CN={agent_id}",
        "permissions": {
            "publish": {"allow": own},
            "subscribe": {"allow": [commands, _MQTT_DELIVERY]},
        },
    }


def nats_authorization(approved: Iterable[str]) -> str:
    """The authorization file of a NATS cluster: the collector and each approved agent. An
    agent id with a ``.`` cannot be one subject token, so it gets no user (logged)."""
    users: list[dict[str, Any]] = [{"user": f"CN={COLLECTOR_IDENTITY}"}]
    for agent_id in sorted(set(approved)):
        if "." in agent_id:
            log.warning("agent %s gets no user on the NATS cluster: its id has a '.'", agent_id)
            continue
        users.append(nats_user(agent_id))
    # NATS config accepts JSON values; one user per line keeps the file easy to read and diff
    lines = ",\n    ".join(json.dumps(u, sort_keys=True) for u in users)
    return (
        "# written by camwarden-server (server/broker_roles.py): the collector and every\n"
        "# approved agent; rewritten at each approval and revocation, do not edit\n"
        f"authorization {{\n  users: [\n    {lines}\n  ]\n}}\n"
    )


class NatsUsers:
    """The agents' users on a NATS cluster, in ``auth_file``, reloaded by ``reload_commands``
    (one per node). ``approved`` reads the approved agents (``on_status`` rewrites the whole
    file, the status already committed)."""

    def __init__(
        self,
        auth_file: Path,
        reload_commands: Sequence[Sequence[str]],
        approved: Callable[[], Collection[str]],
    ) -> None:
        self._file = auth_file
        self._commands = reload_commands
        self._approved = approved
        self._reloaded: str | None = None  # the text every node took, when all reloads worked

    def on_status(self, agent_id: str, status: str) -> None:
        """``Repository.status_listeners``: never raises; a miss is repaired by ``sync``."""
        _take_status(
            agent_id,
            status,
            lambda: self.sync(self._approved),
            broker="the NATS cluster",
            rights="NATS user",
        )

    def sync(self, approved: Callable[[], Collection[str]]) -> int:
        """Write the file if it changed and reload every node unless all took this text
        already; returns how many nodes were reloaded. BrokerRolesError if one failed (the
        others kept the new file; the next sync tries again)."""
        text = nats_authorization(approved())
        if text == self._reloaded:
            return 0
        try:
            current = self._file.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            atomic_write(self._file, text.encode(), 0o640)
        failed = [" ".join(c) for c in self._commands if not _run(c)]
        if failed:
            self._reloaded = None
            raise BrokerRolesError(f"reload failed: {'; '.join(failed)}")
        self._reloaded = text
        log.info("NATS users synchronised: %d node(s) reloaded", len(self._commands))
        return len(self._commands)


def _run(command: Sequence[str]) -> bool:
    try:
        done = subprocess.run(  # noqa: S603  # the operator's configured command, no shell
            list(command), capture_output=True, timeout=RELOAD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("reload command %s: %s", command[0], exc)
        return False
    if done.returncode != 0:
        log.warning(
            "reload command %s exited %d: %s",
            command[0],
            done.returncode,
            done.stderr[-500:].decode(errors="replace").strip(),
        )
    return done.returncode == 0


def approved_agents(repo: Repository) -> Callable[[], list[str]]:
    """What ``sync`` and ``NatsUsers`` read: the ids of the approved agents, now."""
    return lambda: [a.agent_id for a in repo.agents() if a.status == "approved"]


class AgentRights(Protocol):
    """What the collector keeps on the broker for each agent, whichever broker it is."""

    def on_status(self, agent_id: str, status: str) -> None: ...

    def sync(self, approved: Callable[[], Collection[str]]) -> int: ...


def from_config(
    config: ServerConfig, approved: Callable[[], Collection[str]]
) -> AgentRights | None:
    """The agents' rights on the configured broker: Mosquitto's roles if ``[mqtt]
    dynamic_security``, a NATS cluster's users if ``[broker] auth_file``; else None."""
    if config.broker.kind == "nats":
        if not config.broker.auth_file:
            return None
        return NatsUsers(Path(config.broker.auth_file), config.broker.reload_commands, approved)
    return BrokerRoles(mqtt_transport(config.mqtt)) if config.mqtt.dynamic_security else None


def listeners(
    config: ServerConfig, approved: Callable[[], Collection[str]]
) -> list[Callable[[str, str], None]]:
    """For ``Repository.status_listeners``: the broker rights' ``on_status``, if configured."""
    rights = from_config(config, approved)
    return [rights.on_status] if rights is not None else []


__all__ = [
    "AgentRights",
    "BrokerRoles",
    "BrokerRolesError",
    "Command",
    "NatsUsers",
    "approved_agents",
    "from_config",
    "grant",
    "listeners",
    "nats_authorization",
    "nats_user",
    "plan",
    "withdraw",
]
