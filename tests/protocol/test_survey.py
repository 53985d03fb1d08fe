"""The survey contract: params read back as built, bounds refused, the scope check, and the
result parts' shape (protocol.survey, protocol.messages.SurveyResult)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import msgspec
import pytest

from protocol.commands import ACTIONS, CAMERALESS, PARAMS, REASONS, STEPS
from protocol.errors import BadParams, SchemaViolation
from protocol.messages import (
    GENESIS,
    Identity,
    SurveyExposure,
    SurveyHost,
    SurveyResult,
    SurveySummary,
    decode_agent_message,
    encode,
)
from protocol.survey import (
    EXPOSURES,
    MAX_ADDRESSES,
    PART_MAX_HOSTS,
    SURVEY,
    Scope,
    SurveyParams,
    parse_networks,
)
from protocol.topics import CHANNEL_OF

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PARAMS_ = SurveyParams(
    survey_id="hn-2026-12",
    shard=3,
    prefixes=parse_networks("198.51.100.0/24,203.0.113.0/25"),
    exclude=parse_networks("198.51.100.1"),
    opt_out=parse_networks("198.51.100.64/30"),
)


def test_the_survey_is_an_action_without_a_camera() -> None:
    assert SURVEY in ACTIONS
    assert PARAMS[SURVEY] is SurveyParams
    assert {SURVEY} == CAMERALESS
    assert STEPS[SURVEY] == ("preflight", "sweeping", "reporting")
    assert {"prefix_not_allowed", "deadline", "bad_params"} <= REASONS
    assert CHANNEL_OF["survey-result"] == "cmd-result"


def test_what_the_collector_builds_the_agent_reads_back() -> None:
    assert SurveyParams.parse(PARAMS_.to_params()) == PARAMS_


def test_defaults_fill_what_is_left_out() -> None:
    parsed = SurveyParams.parse({"survey_id": "s", "prefixes": "10.0.0.0/30"})
    assert parsed.ports == (23, 80, 443, 554, 8000, 8080, 8443, 37777)
    assert parsed.udp_ports == (1900,)
    assert (parsed.rate_pps, parsed.rate_cps, parsed.host_deadline_s) == (200, 50, 30)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"prefixes": ""}, "names no prefix"),
        ({"prefixes": "10.0.0.1/24"}, "is not a prefix"),  # host bits set
        ({"prefixes": "example.net"}, "is not a prefix"),
        ({"prefixes": "10.0.0.0/19"}, f"more than {MAX_ADDRESSES}"),
        ({"prefixes": "10.0.0.0/21,10.1.0.0/21,10.2.0.0/24"}, f"more than {MAX_ADDRESSES}"),
        ({"prefixes": "2001:db8::/64"}, f"more than {MAX_ADDRESSES}"),
        ({"prefixes": "10.0.0.0/24," * 3000}, "longer than"),
        ({"ports": "80,80"}, "each once"),
        ({"ports": "0"}, "is not a port"),
        ({"ports": "65536"}, "is not a port"),
        ({"ports": ",".join(str(p) for p in range(1, 40))}, "at most 32 ports"),
        ({"udp_ports": "161"}, "only"),
        ({"rate_pps": 0}, "'rate_pps' must be an integer"),
        ({"rate_cps": True}, "'rate_cps' must be an integer"),
        ({"host_deadline_s": 121}, "'host_deadline_s' must be an integer"),
        ({"survey_id": "../x"}, "must be a name"),
        ({"survey_id": 5}, "must be a string"),
        ({"password": "x"}, "unknown param 'password'"),
    ],
)
def test_params_that_do_not_fit_are_refused(change: dict[str, object], detail: str) -> None:
    params = {**PARAMS_.to_params(), **change}
    with pytest.raises(BadParams, match=detail) as caught:
        SurveyParams.parse(params)  # type: ignore[arg-type]
    assert caught.value.reason == "bad_params"


def test_the_scope_allows_only_the_prefixes_less_exclusions_and_opt_outs() -> None:
    scope = PARAMS_.scope()
    assert scope.allows("198.51.100.7")
    assert scope.allows("203.0.113.127")
    for outside in ("198.51.101.0", "203.0.113.128", "127.0.0.1", "::1", "not an address"):
        assert not scope.allows(outside)
    for avoided in ("198.51.100.1", "198.51.100.64", "198.51.100.67"):
        assert not scope.allows(avoided)
    addresses = list(scope.addresses())
    assert len(addresses) == 256 + 128 - 1 - 4
    assert len(set(addresses)) == len(addresses)
    assert all(scope.allows(a) for a in addresses)


def test_a_command_inside_the_agents_range_and_one_outside() -> None:
    allowed = parse_networks("198.51.100.0/22,203.0.113.0/24")
    assert PARAMS_.scope().within(allowed)
    assert not Scope(parse_networks("198.51.104.0/24")).within(allowed)
    assert not Scope(parse_networks("198.51.96.0/21")).within(allowed)
    assert not Scope(parse_networks("::/128")).within(allowed)


def _host(n: int) -> SurveyHost:
    return SurveyHost(
        address=str(ipaddress.ip_address("198.51.100.0") + n),
        ports=[80, 554],
        identity=Identity(vendor="Hikvision", model="DS-2CD2043G2-I", firmware="V5.5.0"),
        exposures=[
            SurveyExposure(code="survey.stream_no_auth", port=554, evidence={"media": "m=video"})
        ],
    )


def _part(part: int, *, last: bool, hosts: list[SurveyHost]) -> SurveyResult:
    summary = SurveySummary(
        addresses=384, excluded=1, opted_out=4, probed=379, answered=len(hosts), parts=part,
        started_at=NOW, finished_at=NOW, complete=True,
    )  # fmt: skip
    return SurveyResult(
        agent_id="isp-1", site="hn", seq=part, issued_at=NOW, prev=GENESIS, prev_seq=0,
        command_id="cmd-1", survey_id="hn-2026-12", shard=3, part=part, last=last,
        hosts=hosts, summary=summary if last else None,
    )  # fmt: skip


def test_a_result_part_travels_and_decodes_strictly() -> None:
    message = _part(2, last=True, hosts=[_host(n) for n in range(3)])
    assert decode_agent_message(encode(message)) == message
    assert all(e.code in EXPOSURES for h in message.hosts for e in h.exposures)


def test_only_the_last_part_carries_the_summary_and_it_counts_the_parts() -> None:
    good = encode(_part(2, last=True, hosts=[]))
    for bad in (
        good.replace(b'"last":true', b'"last":false'),
        good.replace(b'"part":2', b'"part":3'),
    ):
        with pytest.raises(SchemaViolation):
            decode_agent_message(bad)


def test_a_part_holds_a_bounded_number_of_hosts() -> None:
    message = _part(1, last=False, hosts=[_host(n) for n in range(PART_MAX_HOSTS + 1)])
    with pytest.raises(SchemaViolation):
        decode_agent_message(msgspec.json.encode(message))
