"""A provider's survey at the collector on a real database: prefixes declared under tenancy,
shards queued as commands for two agents with no gap and no overlap, a silent agent's shards
given again, results merged and attributed to the subscriber who held each address then,
notices tracked and re-checked by the next survey, every change in the audit log."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from protocol.survey import SURVEY
from server.domain.notices import Notices
from server.domain.register_import import InvalidFile
from server.domain.scope import CLI, Forbidden, NotVisible
from server.domain.survey import SurveyInvalid, Surveys
from server.storage import Repository, read_then_write
from server.storage.firmware_models import CommandRecord
from server.storage.models import Agent
from server.storage.org_models import AuditEntry
from tests.survey.conftest import Providers, as_user, host, part, scoped

MAP = (
    "prefix,subscriber_id,name,contact,province,district,valid_from,valid_to\r\n"
    # 198.51.100.0/28 moved from subscriber A to subscriber B on 1 December
    "198.51.100.0/28,SUB-A,Nguyễn Văn A,a@example.vn,Bắc Ninh,Từ Sơn,2026-01-01,2026-12-01\r\n"
    "198.51.100.0/28,SUB-B,Trần Thị B,b@example.vn,Bắc Ninh,Tiên Du,2026-12-01,\r\n"
    # a business line inside the residential pool: the most specific line wins
    "198.51.100.64/26,SUB-C,Công ty C,c@example.vn,Bắc Ninh,Yên Phong,2026-01-01,\r\n"
    "198.51.100.66/32,SUB-D,Cửa hàng D,d@example.vn,Bắc Ninh,Yên Phong,"
    "2026-06-01T00:00:00+07:00,\r\n"
).encode()


def commands_of(repo: Repository) -> list[Any]:
    with repo.engine.connect() as conn:
        return list(
            conn.execute(
                select(CommandRecord.__table__)
                .where(CommandRecord.action == SURVEY)
                .order_by(CommandRecord.issued_at, CommandRecord.command_id)
            )
        )


def addresses(prefixes: str) -> set[int]:
    return {int(a) for p in prefixes.split(",") for a in ipaddress.ip_network(p)}


def test_prefixes_are_checked_and_kept_apart_between_providers(
    repo: Repository, providers: Providers
) -> None:
    x = Surveys(as_user(repo, "admin-x"))
    x.declare_prefix(providers.isp_x, "198.51.100.0/24")
    with pytest.raises(SurveyInvalid) as own:
        x.declare_prefix(providers.isp_x, "198.51.100.128/25")
    assert (own.value.code, own.value.params) == (
        "prefix_overlap_own",
        {"value": "198.51.100.0/24"},
    )
    with pytest.raises(SurveyInvalid) as loop:
        x.declare_prefix(providers.isp_x, "127.0.0.0/8")
    assert loop.value.code == "prefix_loopback"
    y = Surveys(as_user(repo, "admin-y"))
    with pytest.raises(SurveyInvalid) as other:
        y.declare_prefix(providers.isp_y, "198.51.0.0/16")
    # another tenant's prefix is not named
    assert (other.value.code, other.value.params) == (
        "prefix_overlap_other", {"value": "198.51.0.0/16"}
    )  # fmt: skip
    with pytest.raises(NotVisible):
        y.declare_prefix(providers.isp_x, "203.0.113.0/24")
    with pytest.raises(Forbidden):
        Surveys(as_user(repo, "viewer-x")).declare_prefix(providers.isp_x, "203.0.113.0/24")
    assert [p.prefix for p in y.prefixes()] == []
    assert [p.prefix for p in x.prefixes()] == ["198.51.100.0/24"]
    with repo.engine.connect() as conn:
        outcomes = [
            (r.action, r.outcome)
            for r in conn.execute(
                select(AuditEntry.__table__)
                .where(AuditEntry.action.like("survey.%"))
                .order_by(AuditEntry.id)
            )
        ]
    add = "survey.prefix.add"
    assert outcomes == [(add, "ok"), *[(add, "failed")] * 3, (add, "denied"), (add, "denied")]


def test_the_subscriber_map_names_bad_lines_and_previews_before_applying(
    repo: Repository, providers: Providers
) -> None:
    Surveys(as_user(repo, "admin-x")).declare_prefix(providers.isp_x, "198.51.100.0/24")
    notices = Notices(as_user(repo, "admin-x"))
    bad = (
        b"prefix,subscriber_id,valid_from,valid_to\n"
        b"198.51.100.1/24,S1,2026-01-01,\n"  # line 2: host bits
        b"203.0.113.0/28,S2,2026-01-01,\n"  # line 3: not the provider's
        b"198.51.100.16/28,S3,2026-02-01,2026-01-01\n"  # line 4: ends before it starts
        b"198.51.100.32/28,S4,2026-01-01,2026-03-01\n"
        b"198.51.100.32/28,S5,2026-02-01,\n"  # line 6: overlaps line 5's period
        b"198.51.100.48/28,S6,2026-01-01T08:00:00,\n"  # line 7: a time without its offset
    )
    preview = notices.preview_map(providers.isp_x, bad)
    assert [(e.line, e.code) for e in preview.errors] == [
        (2, "prefix"), (3, "outside"), (4, "period"), (6, "period_overlap"), (7, "date"),
    ]  # fmt: skip
    with pytest.raises(InvalidFile):
        notices.apply_map(providers.isp_x, bad)
    good = notices.preview_map(providers.isp_x, MAP)
    assert (good.errors, good.added, good.replaced, good.unchanged) == ([], 4, 0, 0)
    notices.apply_map(providers.isp_x, MAP)
    again = notices.preview_map(providers.isp_x, MAP.replace(b"Tr\xe1\xba\xa7n", b"Ho\xc3\xa0ng"))
    assert (again.added, again.replaced, again.unchanged) == (0, 1, 3)
    with pytest.raises(NotVisible):
        Notices(as_user(repo, "admin-y")).preview_map(providers.isp_x, MAP)


def test_two_agents_share_a_survey_a_silent_one_is_replaced_and_notices_follow(
    repo: Repository, providers: Providers
) -> None:
    Surveys(as_user(repo, "admin-x")).declare_prefix(providers.isp_x, "198.51.100.0/24")
    Surveys(as_user(repo, "admin-x")).declare_prefix(providers.isp_x, "203.0.113.0/25")
    Notices(as_user(repo, "admin-x")).apply_map(providers.isp_x, MAP)
    with pytest.raises(SurveyInvalid) as foreign:
        Surveys(as_user(repo, "operator-x")).start(providers.isp_x, ["survey-y1"])
    assert foreign.value.code == "agent_not_surveying"
    start = datetime(2026, 12, 7, 9, tzinfo=UTC)
    survey_id = Surveys(as_user(repo, "operator-x", start)).start(providers.isp_x, shard_max=100)

    cmds = commands_of(repo)
    assert {c.agent_id for c in cmds} == {"survey-x1", "survey-x2"}
    by_agent: dict[str, set[int]] = {}
    for c in cmds:
        assert c.params["survey_id"] == str(survey_id)
        assert c.status == "queued"
        got = addresses(c.params["prefixes"])
        assert not got & by_agent.get(c.agent_id, set())
        by_agent.setdefault(c.agent_id, set()).update(got)
    one, two = by_agent["survey-x1"], by_agent["survey-x2"]
    assert not one & two  # no overlap
    assert one | two == addresses("198.51.100.0/24,203.0.113.0/25")  # no gap
    view = Surveys(as_user(repo, "viewer-x")).survey(survey_id)
    assert (view.addresses, view.done, view.eta) == (384, 0, None)
    with pytest.raises(NotVisible):
        Surveys(as_user(repo, "admin-y")).survey(survey_id)

    # survey-x2 goes silent: its shards go to survey-x1 (survey-x1 is heard from after that)
    later = datetime.now(UTC) + timedelta(hours=1)
    with read_then_write(repo.engine) as conn:
        conn.execute(update(Agent).where(Agent.agent_id == "survey-x1").values(last_seen=later))
    collector = Surveys(scoped(repo, CLI, later))
    assert collector.reissue(timedelta(minutes=15)) == 2
    progress = {a.agent_id: a for a in collector.survey(survey_id).agents}
    assert progress["survey-x1"].shards == 4
    assert "survey-x2" not in progress
    x2_commands = [c for c in commands_of(repo) if c.agent_id == "survey-x2"]
    late = part("survey-x2", x2_commands[0], [], at=later)
    assert not collector.record("survey-x2", late)  # a re-issued shard takes no more results

    open_shards = [c for c in commands_of(repo) if c.agent_id == "survey-x1"]
    found = {
        "198.51.100.5": host("198.51.100.5", ("survey.stream_no_auth", 554), vendor="Hikvision"),
        "198.51.100.66": host("198.51.100.66", ("survey.telnet_open", 23), vendor="Dahua"),
        "198.51.100.70": host("198.51.100.70", ("survey.kev_firmware", 80)),
        "203.0.113.9": host("203.0.113.9", ("survey.dvrip_port_open", 37777), vendor="Dahua"),
        "192.0.2.1": host("192.0.2.1", ("survey.telnet_open", 23)),  # not in any shard
    }
    for i, c in enumerate(open_shards):
        mine = [
            h for a, h in found.items()
            if int(ipaddress.ip_address(a)) in addresses(c.params["prefixes"])
        ]  # fmt: skip
        if i == 0:
            mine.append(found["192.0.2.1"])
        last = part("survey-x1", c, mine, at=later, number=2, of=2)
        assert collector.record("survey-x1", last)  # the last part first: not done yet
        assert not collector.record("survey-x1", last)  # read again: nothing changes
        if i == 0:
            view = collector.survey(survey_id)
            assert (view.state, view.done, view.eta) == ("running", 0, None)
        assert collector.record("survey-x1", part("survey-x1", c, [], at=later, of=None))
        if i == 0:
            view = collector.survey(survey_id)
            assert (view.state, view.done) == ("running", 96)
            assert view.eta is not None
    view = Surveys(as_user(repo, "viewer-x")).survey(survey_id)
    assert (view.state, view.done, view.percent, view.exposures) == ("done", 384, 100, 4)

    notices = Notices(as_user(repo, "operator-x"))
    listed = {n.subscriber_id: n for n in notices.notices(survey_id)}
    # .5 is SUB-B's since 1 December; .66 SUB-D's (the most specific line); .70 SUB-C's;
    # 203.0.113.9 is in no line of the map: unattributed
    assert sorted(listed) == ["SUB-B", "SUB-C", "SUB-D"]
    assert [(e.address, e.code) for e in listed["SUB-D"].exposures] == [
        ("198.51.100.66", "survey.telnet_open")
    ]
    assert listed["SUB-B"].contact == "b@example.vn"
    assert {n.state for n in listed.values()} == {"open"}
    assert notices.move_notice(listed["SUB-B"].id, "sent").state == "sent"
    assert notices.move_notice(listed["SUB-B"].id, "acknowledged").state == "acknowledged"
    with pytest.raises(SurveyInvalid.__mro__[1]):  # Invalid: no going back
        notices.move_notice(listed["SUB-B"].id, "sent")
    with pytest.raises(Forbidden):
        Notices(as_user(repo, "viewer-x")).move_notice(listed["SUB-C"].id, "sent")
    with pytest.raises(NotVisible):
        Notices(as_user(repo, "admin-y")).move_notice(listed["SUB-C"].id, "sent")

    # the next survey: SUB-B's camera is gone, SUB-D's telnet is still there
    after = later + timedelta(days=7)
    with read_then_write(repo.engine) as conn:
        conn.execute(update(Agent).values(last_seen=after))
    second = Surveys(as_user(repo, "operator-x", after)).start(providers.isp_x, ["survey-x2"])
    collector = Surveys(scoped(repo, CLI, after))
    (first_try,) = [c for c in commands_of(repo) if c.params["survey_id"] == str(second)]
    cut_short = part("survey-x2", first_try, [], at=after, complete=False)  # deadline reached
    assert collector.record("survey-x2", cut_short)
    assert collector.survey(second).state == "running"  # what was not probed is not surveyed
    assert collector.reissue(timedelta(minutes=15)) == 1
    (again,) = [
        c for c in commands_of(repo)
        if c.params["survey_id"] == str(second) and c.command_id != first_try.command_id
    ]  # fmt: skip
    result = part(again.agent_id, again, [found["198.51.100.66"]], at=after)
    assert collector.record(again.agent_id, result)
    assert collector.survey(second).state == "done"
    states = {n.subscriber_id: (n.state, n.fixed_by_survey) for n in notices.notices(survey_id)}
    assert states == {"SUB-B": ("fixed", second), "SUB-C": ("fixed", second),
                      "SUB-D": ("open", None)}  # fmt: skip
    assert [n.subscriber_id for n in notices.notices(second)] == ["SUB-D"]
    with repo.engine.connect() as conn:
        trail = [
            (r.username, r.detail.get("to"), r.outcome)
            for r in conn.execute(
                select(AuditEntry.__table__)
                .where(AuditEntry.action == "survey.notice")
                .order_by(AuditEntry.id)
            )
        ]
    assert trail == [
        ("operator-x", "sent", "ok"), ("operator-x", "acknowledged", "ok"),
        ("operator-x", "sent", "failed"), ("viewer-x", "sent", "denied"),
        ("admin-y", None, "denied"), ("collector", "fixed", "ok"), ("collector", "fixed", "ok"),
    ]  # fmt: skip
