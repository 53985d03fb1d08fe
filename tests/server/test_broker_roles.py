"""server.broker_roles without a broker: the commands and the plan (the plugin itself is tested
in tests/packaging/test_broker_acl.py, on a real Mosquitto)."""

from __future__ import annotations

import pytest

from server.broker_roles import BrokerRoles, BrokerRolesError, Command, grant, plan, withdraw


def test_an_agents_role_names_only_its_own_topics() -> None:
    role, client = grant("cam-box.1")
    assert role["rolename"] == "camwarden-agent-cam-box.1"
    assert [(a["acltype"], a["topic"]) for a in role["acls"]] == [
        ("publishClientSend", "camwarden/v1/+/cam-box.1/report"),
        ("publishClientSend", "camwarden/v1/+/cam-box.1/heartbeat"),
        ("publishClientSend", "camwarden/v1/+/cam-box.1/cmd-result"),
        ("subscribePattern", "camwarden/v1/+/cam-box.1/cmd"),
        ("publishClientReceive", "camwarden/v1/+/cam-box.1/cmd"),
    ]
    assert client == {
        "command": "createClient",
        "username": "cam-box.1",
        "textname": "camwarden agent",
        "roles": [{"rolename": "camwarden-agent-cam-box.1"}],
    }


@pytest.mark.parametrize("agent_id", ["+", "#", "a/b", "", "-a", "a b", "x" * 65])
def test_an_id_that_is_not_one_topic_level_never_reaches_an_acl(agent_id: str) -> None:
    with pytest.raises(ValueError, match="not a valid topic level"):
        grant(agent_id)


def test_plan_adds_what_is_missing_and_removes_only_our_roles() -> None:
    roles = ["camwarden-collector", "camwarden-agent-a", "camwarden-agent-gone", "operator"]
    clients = ["camwarden-collector", "a", "gone", "b-client-only", "admin"]
    commands = plan({"a", "b-client-only", "c"}, roles, clients)
    assert [(c["command"], c.get("rolename") or c.get("username")) for c in commands] == [
        ("createRole", "camwarden-agent-b-client-only"),
        ("createRole", "camwarden-agent-c"),
        ("createClient", "c"),
        ("deleteClient", "gone"),
        ("deleteRole", "camwarden-agent-gone"),
    ]
    assert plan({"a"}, ["camwarden-agent-a"], ["a"]) == []


def answering(errors: dict[str, str]) -> tuple[list[list[Command]], BrokerRoles]:
    """BrokerRoles over an in-memory plugin answering each command with ``errors[command]``."""
    sent: list[list[Command]] = []

    def transport(commands: list[Command]) -> list[Command]:
        sent.append(commands)
        return [
            {
                "command": c["command"],
                **({"error": errors[c["command"]]} if c["command"] in errors else {}),
            }
            for c in commands
        ]

    return sent, BrokerRoles(transport)


def test_a_repeated_create_or_delete_is_no_error_but_a_refusal_is() -> None:
    _, roles = answering({"createRole": "Role already exists", "deleteClient": "Client not found"})
    roles.apply(grant("a") + withdraw("a"))
    _, refusing = answering({"createClient": "Not authorized"})
    with pytest.raises(BrokerRolesError, match="createClient: Not authorized"):
        refusing.apply(grant("a"))


def test_a_large_fleet_is_sent_in_bounded_requests() -> None:
    sent, roles = answering({})
    roles.apply([c for n in range(250) for c in grant(f"a{n}")])
    assert [len(chunk) for chunk in sent] == [200, 200, 100]


def test_a_status_listener_ignores_other_statuses() -> None:
    sent, roles = answering({})
    roles.on_status("a", "pending")
    assert sent == []
    roles.on_status("a", "revoked")
    assert [c["command"] for c in sent[0]] == ["deleteClient", "deleteRole"]


def test_sync_reads_the_agents_after_listing_the_plugin() -> None:
    """An approval that lands between the listing and the reading is kept, not undone."""
    calls: list[list[str]] = []

    def transport(commands: list[Command]) -> list[Command]:
        calls.append([c["command"] for c in commands])
        listed = {
            "listRoles": {"roles": ["camwarden-agent-x", "camwarden-collector"]},
            "listClients": {"clients": ["x", "camwarden-collector"]},
        }
        return [{"command": c["command"], "data": listed.get(c["command"], {})} for c in commands]

    def approved() -> list[str]:
        calls.append(["read the agents"])
        return ["x"]

    assert BrokerRoles(transport).sync(approved) == 0
    assert calls == [["listRoles", "listClients"], ["read the agents"]]
