"""The signed ``survey.sweep`` command through the agent's executor: refused outside the agent's
allowed prefixes (no packet sent), carried out inside them with the findings as SurveyResult
parts and the shard's summary on the last."""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.commands.executor import Executor
from agent.config import AgentConfig, NetworkConfig, SurveyConfig
from agent.messaging.issuer import Issuer
from agent.messaging.outbox import Outbox
from agent.state import StateStore
from agent.survey import sweep
from lab.survey import SEEDED, SurveyLab, read_events
from lab.testing import private_base
from protocol import Command, CommandResult, SurveyResult, decode_agent_message, verify
from protocol.commands import CMD_TYP
from protocol.envelope import sign
from protocol.keys import generate_private_key
from protocol.messages import encode
from protocol.survey import SURVEY, SurveyParams, parse_networks
from tests.support.credentials import FileCredentials

AGENT, SITE = "isp-agent-1", "isp-hn"
SHIFT = 20000


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[SurveyLab]:
    started = await SurveyLab.start(f"{private_base()}/24", tmp_path / "lab.jsonl", shift=SHIFT)
    try:
        yield started
    finally:
        await started.stop()


class Agent:
    def __init__(self, tmp: Path, allowed: str | None) -> None:
        self.state = tmp / "agent"
        self.state.mkdir(mode=0o700)
        self.command_key, self.agent_key = generate_private_key(), generate_private_key()
        self.config = AgentConfig(
            agent_id=AGENT,
            site=SITE,
            state_dir=str(self.state),
            network=NetworkConfig(port_offset=SHIFT),
            survey=SurveyConfig(
                allowed_prefixes=(allowed,) if allowed else (), max_rate_cps=2000, udp_window_s=0.5
            ),
        )
        outbox = Outbox(self.state / "outbox", 64 * 1024 * 1024, 20_000)
        issuer = Issuer(AGENT, SITE, self.agent_key, StateStore(self.state), outbox)
        self.executor = Executor(
            self.config, issuer, self.command_key, FileCredentials(tmp / "vault.json")
        )

    def token(self, params: SurveyParams) -> tuple[str, bytes]:
        now = datetime.now(UTC)
        command = Command(
            command_id=f"cmd-{secrets.token_hex(8)}", agent_id=AGENT, site=SITE, action=SURVEY,
            issued_at=now, expires_at=now + timedelta(minutes=10),
            nonce=secrets.token_urlsafe(24), params=params.to_params(),
        )  # fmt: skip
        return command.command_id, sign(encode(command), self.command_key, typ=CMD_TYP).encode()

    def messages(self) -> list[CommandResult | SurveyResult]:
        outbox = Outbox(self.state / "outbox", 64 * 1024 * 1024, 20_000)
        out: list[CommandResult | SurveyResult] = []
        for entry in outbox.entries():
            token = outbox.read(entry)
            assert token is not None
            message = decode_agent_message(verify(token, lambda _kid: self.agent_key).payload)
            assert isinstance(message, CommandResult | SurveyResult)
            out.append(message)
        return out


async def test_a_command_outside_the_allowed_prefixes_is_refused(
    lab: SurveyLab, tmp_path: Path
) -> None:
    inside = next(lab.network.subnets(new_prefix=25))
    agent = Agent(tmp_path, str(inside))
    params = SurveyParams(survey_id="hn-1", shard=0, prefixes=(lab.network,), rate_cps=500)
    _command_id, token = agent.token(params)
    assert await agent.executor.submit(token) == "rejected:prefix_not_allowed"
    trail = [(m.status, m.reason) for m in agent.messages() if isinstance(m, CommandResult)]
    assert trail == [("accepted", None), ("in_progress", None), ("rejected", "prefix_not_allowed")]
    assert not any(isinstance(m, SurveyResult) for m in agent.messages())
    assert list(read_events(lab.log_path)) == []  # not one packet


async def test_a_command_without_allowed_prefixes_is_refused(
    lab: SurveyLab, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, None)
    params = SurveyParams(survey_id="hn-1", shard=0, prefixes=(lab.network,))
    _, token = agent.token(params)
    assert await agent.executor.submit(token) == "rejected:prefix_not_allowed"
    assert list(read_events(lab.log_path)) == []


@pytest.mark.parametrize("every", [None, 16])
async def test_a_command_inside_sends_its_findings_in_parts(
    lab: SurveyLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int | None
) -> None:
    """``every``: how often the sweep tells its progress (None: the default, more than the
    shard holds); 16: three times in the 63 addresses probed, each count once, in order."""
    if every is not None:
        monkeypatch.setattr(sweep, "PROGRESS_EVERY", every)
    agent = Agent(tmp_path, str(lab.network))
    # the /26 holding the most seeded cameras: a short survey that still finds some
    quarter = max(
        lab.network.subnets(new_prefix=26),
        key=lambda n: sum(
            1 for h in lab.hosts if SEEDED[h.kind] and ipaddress.ip_address(h.address) in n
        ),
    )
    params = SurveyParams(
        survey_id="hn-2026-12", shard=7, prefixes=(quarter,), rate_pps=10000, rate_cps=2000,
        opt_out=parse_networks(str(quarter[1])),
    )  # fmt: skip
    command_id, token = agent.token(params)
    assert await agent.executor.submit(token) == "succeeded"
    messages = agent.messages()
    trail = [m.step or m.status for m in messages if isinstance(m, CommandResult)]
    again = [] if every is None else ["sweeping"] * 3
    assert trail == ["accepted", "preflight", "sweeping", *again, "reporting", "succeeded"]
    told = [
        m.details["probed"]
        for m in messages
        if isinstance(m, CommandResult) and m.status == "in_progress" and m.details
    ]
    assert told == [*([] if every is None else [16, 32, 48]), 63]  # reporting: the whole count
    survey = [m for m in messages if isinstance(m, SurveyResult)]
    assert [m.part for m in survey] == list(range(1, len(survey) + 1))
    assert [m.last for m in survey] == [False] * (len(survey) - 1) + [True]
    assert all(
        (m.command_id, m.survey_id, m.shard) == (command_id, "hn-2026-12", 7) for m in survey
    )
    summary = survey[-1].summary
    assert summary is not None
    assert (summary.addresses, summary.opted_out, summary.probed, summary.parts) == (
        64,
        1,
        63,
        len(survey),
    )
    assert summary.complete
    found = {h.address: {(e.code, e.port) for e in h.exposures} for m in survey for h in m.hosts}
    for host in lab.hosts:
        if ipaddress.ip_address(host.address) in quarter and host.address != str(quarter[1]):
            assert found.get(host.address, set()) == SEEDED[host.kind]
    final = next(m for m in messages if isinstance(m, CommandResult) and m.status == "succeeded")
    assert final.details == {"parts": len(survey), "answered": summary.answered, "probed": 63}
    events = list(read_events(lab.log_path))
    assert {ipaddress.ip_address(e["address"]) in quarter for e in events} == {True}
    assert not any(e.get("credential") for e in events)
    assert json.dumps(final.details)  # plain JSON for the collector
