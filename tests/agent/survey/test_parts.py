"""A shard's findings cut into SurveyResult parts within the contract's bounds, and the lab's
layout of a provider's range."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from agent.survey.sweep import parts
from lab.survey import SEEDED, layout
from protocol.messages import (
    GENESIS,
    EvidenceValue,
    SurveyExposure,
    SurveyHost,
    SurveyResult,
    decode_agent_message,
    encode,
)
from protocol.survey import PART_MAX_BYTES


def test_parts_stay_within_the_bounds() -> None:
    evidence: dict[str, EvidenceValue] = {f"k{i}": "x" * 200 for i in range(16)}
    exposure = SurveyExposure(code="survey.telnet_open", port=23, evidence=evidence)
    big = SurveyHost(address="198.51.100.7", ports=list(range(1, 65)), exposures=[exposure] * 16)
    cut = list(parts(tuple(big for _ in range(600))))
    assert sum(len(p) for p in cut) == 600
    assert len(cut) > 2
    now = datetime.now(UTC)
    for number, hosts in enumerate(cut, start=1):
        message = SurveyResult(
            agent_id="a", site="s", seq=number, issued_at=now, prev=GENESIS, prev_seq=0,
            command_id="c", survey_id="s", shard=0, part=number, last=False, hosts=hosts,
        )  # fmt: skip
        data = encode(message)
        assert len(data) <= PART_MAX_BYTES
        assert decode_agent_message(data) == message
    assert list(parts(())) == [[]]  # no host: one (empty) last part all the same


def test_the_lab_layout_is_a_provider_range() -> None:
    hosts = layout(ipaddress.IPv4Network("10.77.0.0/22"))
    assert len(hosts) == 4 * 70
    assert sum(1 for h in hosts if SEEDED[h.kind]) < len(hosts) // 4  # most are no camera
