"""A provider's exclusion list and its subscribers' opt-out list on a real database: entries
checked (an address or CIDR inside the provider's prefixes, each once, the provider's admins
only, other tenants' lists unseen), audit-logged, carried in the ``exclude``/``opt_out`` params
of every ``survey.sweep`` command whose shard they touch (re-issued ones too), and a host they
name is never stored even if an agent reported it."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from protocol.keys import generate_private_key
from server.api import create_app
from server.cli import main
from server.domain.scope import CLI, Forbidden, NotVisible
from server.domain.survey import SurveyInvalid, Surveys
from server.storage import Repository, read_then_write
from server.storage.models import Agent
from server.storage.org_models import AuditEntry
from server.web.i18n import LANGS, Catalogue
from tests.server.conftest import make_config, serve
from tests.survey.conftest import Providers, as_user, host, part, scoped
from tests.survey.test_survey_flow import commands_of
from tests.web.test_rbac import login


def test_entries_are_checked_kept_per_provider_and_audited(
    repo: Repository, providers: Providers
) -> None:
    x = Surveys(as_user(repo, "admin-x"))
    x.declare_prefix(providers.isp_x, "198.51.100.0/24")
    assert x.add_to_list(providers.isp_x, "exclude", "198.51.100.0/29").prefix == "198.51.100.0/29"
    assert x.add_to_list(providers.isp_x, "opt_out", " 198.51.100.77 ").prefix == "198.51.100.77/32"
    refused = []
    for kind, text in (
        ("opt_out", "198.51.100.77"),  # once
        ("opt_out", "198.51.100.1/24"),  # host bits
        ("opt_out", "203.0.113.5"),  # not the provider's
        ("exclude", "nonsense"),
    ):
        with pytest.raises(SurveyInvalid) as why:
            x.add_to_list(providers.isp_x, kind, text)
        refused.append(why.value.code)
    assert refused == ["listed_already", "prefix", "outside", "prefix"]
    with pytest.raises(Forbidden):
        Surveys(as_user(repo, "operator-x")).add_to_list(providers.isp_x, "opt_out", "198.51.100.9")
    with pytest.raises(NotVisible):
        Surveys(as_user(repo, "admin-y")).add_to_list(providers.isp_x, "opt_out", "198.51.100.9")
    assert Surveys(as_user(repo, "admin-y")).list_entries() == []
    entries = x.list_entries(providers.isp_x)
    assert [(e.kind, e.prefix, e.created_by) for e in entries] == [
        ("exclude", "198.51.100.0/29", "admin-x"), ("opt_out", "198.51.100.77/32", "admin-x"),
    ]  # fmt: skip
    with pytest.raises(NotVisible):
        Surveys(as_user(repo, "admin-y")).remove_from_list(entries[0].id)
    x.remove_from_list(entries[0].id)
    assert [e.prefix for e in x.list_entries()] == ["198.51.100.77/32"]
    with repo.engine.connect() as conn:
        trail = [
            (r.action, r.outcome, r.detail)
            for r in conn.execute(
                select(AuditEntry.__table__)
                .where(AuditEntry.action.like("survey.list.%"))
                .order_by(AuditEntry.id)
            )
        ]
    add, drop = "survey.list.add", "survey.list.remove"
    assert [(a, o) for a, o, _ in trail] == [
        (add, "ok"), (add, "ok"), *[(add, "failed")] * 4, (add, "denied"), (add, "denied"),
        (drop, "denied"), (drop, "ok"),
    ]  # fmt: skip
    assert trail[-1][2] == {"list": "exclude", "prefix": "198.51.100.0/29"}


def test_the_lists_travel_in_the_commands_and_what_they_name_is_never_stored(
    repo: Repository, providers: Providers
) -> None:
    x = Surveys(as_user(repo, "admin-x"))
    x.declare_prefix(providers.isp_x, "198.51.100.0/24")
    x.add_to_list(providers.isp_x, "exclude", "198.51.100.0/30")
    x.add_to_list(providers.isp_x, "opt_out", "198.51.100.77")
    x.add_to_list(providers.isp_x, "opt_out", "198.51.100.200")
    survey_id = Surveys(as_user(repo, "operator-x")).start(providers.isp_x, shard_max=128)
    sent = {
        c.params["prefixes"]: (c.params["exclude"], c.params["opt_out"]) for c in commands_of(repo)
    }
    # each shard gets what touches it, nothing else
    assert sent == {
        "198.51.100.0/25": ("198.51.100.0/30", "198.51.100.77/32"),
        "198.51.100.128/25": ("", "198.51.100.200/32"),
    }
    # re-issued to the other agent: the lists go along
    later = datetime.now(UTC) + timedelta(hours=1)
    commands = commands_of(repo)
    silent = commands[0].agent_id
    with read_then_write(repo.engine) as conn:
        conn.execute(update(Agent).where(Agent.agent_id != silent).values(last_seen=later))
    collector = Surveys(scoped(repo, CLI, later))
    assert collector.reissue(timedelta(minutes=15)) == 1
    again = commands_of(repo)[-1]
    assert again.agent_id != silent
    assert (again.params["exclude"], again.params["opt_out"]) == sent[again.params["prefixes"]]

    # an agent that reports an opted-out or excluded host anyway: it is not stored
    reported = [
        host("198.51.100.77", ("survey.stream_no_auth", 554)),
        host("198.51.100.2", ("survey.telnet_open", 23)),
        host("198.51.100.78", ("survey.telnet_open", 23)),
        host("198.51.100.200", ("survey.upnp_exposed", 1900)),
        host("198.51.100.201", ("survey.upnp_exposed", 1900)),
    ]
    for c in commands_of(repo):
        if c.command_id == commands[0].command_id:
            continue  # re-issued: its old agent's answers are not taken
        mine = [
            h
            for h in reported
            if ipaddress.ip_address(h.address) in ipaddress.ip_network(c.params["prefixes"])
        ]
        assert collector.record(c.agent_id, part(c.agent_id, c, mine, at=later))
    view = collector.survey(survey_id)
    assert (view.state, view.exposures) == ("done", 2)


def test_the_command_line_keeps_the_lists(
    repo: Repository, providers: Providers, db_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    base = ["--set", f"database.url={db_url}", "--set", f"state_dir={tmp_path}", "survey"]
    assert main([*base, "prefix", "add", "--org", "ISP X", "198.51.100.0/24"]) == 0
    assert main([*base, "opt-out", "add", "--org", "ISP X", "198.51.100.9"]) == 0
    assert main([*base, "exclude", "add", "--org", "ISP X", "198.51.100.0/29"]) == 0
    assert main([*base, "opt-out", "add", "--org", "ISP X", "203.0.113.9"]) == 1
    capsys.readouterr()
    assert main([*base, "opt-out", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[2] for line in listed] == ["198.51.100.9/32"]
    entry_id = listed[0].split("\t")[0]
    assert main([*base, "opt-out", "remove", entry_id]) == 0
    assert [e.kind for e in Surveys(scoped(repo, CLI)).list_entries()] == ["exclude"]


def test_the_page_keeps_the_lists_inside_the_provider(
    repo: Repository, providers: Providers, db_url: str
) -> None:
    Surveys(scoped(repo, CLI)).declare_prefix(providers.isp_x, "198.51.100.0/24")
    app = create_app(make_config(db_url), repo, command_key=generate_private_key())
    with serve(app) as server:
        csrf = login(server, "admin-x")
        form = {"csrf": csrf, "org": providers.isp_x, "kind": "opt_out", "prefix": "198.51.100.9"}
        assert server.post("/surveys/lists", data=form).status_code == 303
        refused = server.post("/surveys/lists", data=form | {"prefix": "203.0.113.9"})
        assert refused.status_code in (400, 422)
        page = server.get("/surveys").text
        assert "<td>198.51.100.9/32</td>" in page
        assert "Từ chối (theo yêu cầu của thuê bao)" in page
        bad_map = server.post(  # a subscriber file with an error links back to the surveys
            "/surveys/subscribers",
            data={"csrf": csrf, "org": providers.isp_x},
            files={"file": ("map.csv", b"nonsense\n", "text/csv")},
        ).text
        assert '<a href="/surveys">Quay lại trang khảo sát</a>' in bad_map
    with serve(app) as server:
        csrf = login(server, "operator-x")
        form = {"csrf": csrf, "org": providers.isp_x, "kind": "exclude", "prefix": "198.51.100.1"}
        assert server.post("/surveys/lists", data=form).status_code == 403
    with serve(app) as server:
        csrf = login(server, "admin-y")
        assert "198.51.100.9/32" not in server.get("/surveys").text
        entry = Surveys(scoped(repo, CLI)).list_entries()[0].id
        assert server.post(f"/surveys/lists/{entry}/delete", data={"csrf": csrf}).status_code == 404
    assert [e.prefix for e in Surveys(scoped(repo, CLI)).list_entries()] == ["198.51.100.9/32"]


@pytest.mark.parametrize("lang", LANGS)
def test_the_new_texts_render(lang: str) -> None:
    catalogue = Catalogue.load()
    for key, values in (
        ("survey.e.listed_already", {"value": "198.51.100.9/32"}),
        ("survey.e.list_full", {"limit": 512}),
        ("action.survey.list.add", {}),
        ("action.survey.list.remove", {}),
        ("survey.lists", {}),
        ("survey.lists_intro", {}),
        ("survey.list", {}),
        ("survey.list.exclude", {}),
        ("survey.list.opt_out", {}),
        ("survey.list_add", {}),
    ):
        text = catalogue.t(lang, key, **values)
        assert text not in ("", key)
        assert "{" not in text
