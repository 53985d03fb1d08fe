"""One survey shard: every address of the scope probed within the deadlines, then cut in parts.

The scope is checked twice: the addresses come from ``protocol.survey.Scope.addresses`` (the
prefixes less exclusions and opt-outs), and the whole run is ``agent.scope.confined`` to the
prefixes, so a probe that would follow an answer elsewhere is refused before it sends. An address
outside the prefixes is refused, never probed (``OutsideScope``), whoever asks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import msgspec

from agent import scope
from agent.advisories.feed import AdvisoryFeed
from agent.config import SurveyConfig
from agent.survey.probe import Facts, Plan, judge_firmware, probe_host
from agent.survey.rate import Rate
from protocol.messages import SurveyHost, SurveySummary
from protocol.rules import utc_now
from protocol.survey import (
    PART_MAX_BYTES,
    PART_MAX_HOSTS,
    Address,
    Network,
    Scope,
    SurveyParams,
)

__all__ = ["OutsideScope", "Shard", "parts", "probe_in_scope", "run_shard", "sweep"]

log = logging.getLogger(__name__)
# one host in flight per 4 connections per second of the rate: a host makes about 14
# connections, so each waits about 3.5 s for the pacer, well inside its deadline
CPS_PER_HOST = 4
_PART_OVERHEAD = 4096  # the message's own fields and the summary, encoded, at most
# while a shard runs, its progress is told every so many addresses probed (a /20: 15 times)
PROGRESS_EVERY = 256


class OutsideScope(ValueError):
    """An address outside the survey's prefixes (or excluded, or opted out): nothing sent."""


@dataclass(frozen=True, slots=True)
class Shard:
    """What a sweep found: the answering hosts and the counts of the summary."""

    hosts: tuple[SurveyHost, ...]
    addresses: int
    excluded: int
    opted_out: int
    probed: int
    started_at: datetime
    finished_at: datetime
    complete: bool
    reason: str | None = None

    def summary(self, parts: int) -> SurveySummary:
        return SurveySummary(
            addresses=self.addresses,
            excluded=self.excluded,
            opted_out=self.opted_out,
            probed=self.probed,
            answered=len(self.hosts),
            parts=parts,
            started_at=self.started_at,
            finished_at=self.finished_at,
            complete=self.complete,
            reason=self.reason,
        )


def _inside(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def _census(
    prefixes: tuple[Network, ...], exclude: tuple[Network, ...], opt_out: tuple[Network, ...]
) -> tuple[int, int, int]:
    """(addresses in the prefixes, of them excluded, of the rest opted out), each once."""
    seen: set[Address] = set()
    excluded = opted_out = 0
    for network in prefixes:
        for address in network:
            if address in seen:
                continue
            seen.add(address)
            if _inside(address, exclude):
                excluded += 1
            elif _inside(address, opt_out):
                opted_out += 1
    return len(seen), excluded, opted_out


async def probe_in_scope(
    address: str, survey: Scope, plan: Plan, rate: Rate, deadline_s: float
) -> SurveyHost | None:
    """One address, refused unless ``survey`` allows it; None when nothing answered. The host
    deadline keeps what was learnt and marks the host incomplete."""
    if not survey.allows(address):
        raise OutsideScope(f"{address} is outside the survey's scope; nothing was sent")
    facts = Facts(address)
    complete = True
    try:
        async with asyncio.timeout(deadline_s):
            await probe_host(address, plan, rate, facts)
    except TimeoutError:
        complete = False
    judge_firmware(facts, plan.feed)
    if not facts.open and not facts.udp:
        return None
    return facts.host(complete=complete)


async def sweep(
    prefixes: tuple[Network, ...],
    *,
    exclude: tuple[Network, ...] = (),
    opt_out: tuple[Network, ...] = (),
    plan: Plan,
    rate: Rate,
    host_deadline_s: float,
    deadline_s: float,
    concurrency: int = 64,
    clock: Callable[[], datetime] = utc_now,
    progress: Callable[[int], None] | None = None,
    progress_every: int | None = None,
) -> Shard:
    """Probe every address of ``prefixes`` but the excluded and opted-out ones, ``concurrency``
    at a time; stop at ``deadline_s`` (then ``complete`` is false, reason ``deadline``).
    ``progress`` is called with the count of addresses probed so far at each multiple of
    ``progress_every`` (default ``PROGRESS_EVERY``) below the last (the summary tells the end),
    in increasing order."""
    every = progress_every or PROGRESS_EVERY
    started = clock()
    survey = Scope(prefixes, exclude + opt_out)
    found: list[SurveyHost] = []
    probed = 0
    gate = asyncio.Semaphore(concurrency)

    async def one(address: str) -> None:
        nonlocal probed
        async with gate:
            probed += 1
            if progress is not None and probed % every == 0 and probed < total:
                progress(probed)
            host = await probe_in_scope(address, survey, plan, rate, host_deadline_s)
        if host is not None:
            found.append(host)

    total = sum(1 for _ in survey.addresses()) if progress is not None else 0
    complete, reason = True, None
    with scope.confined(prefixes):
        try:
            async with asyncio.timeout(deadline_s), asyncio.TaskGroup() as group:
                for address in survey.addresses():
                    group.create_task(one(str(address)))
        except TimeoutError:
            complete, reason = False, "deadline"
    addresses, excluded, opted_out = _census(prefixes, exclude, opt_out)
    shard = Shard(
        hosts=tuple(sorted(found, key=lambda h: ipaddress.ip_address(h.address))),
        addresses=addresses,
        excluded=excluded,
        opted_out=opted_out,
        probed=probed,
        started_at=started,
        finished_at=clock(),
        complete=complete,
        reason=reason,
    )
    log.info(
        "survey of %s: %d addresses probed, %d answered%s",
        ", ".join(str(p) for p in prefixes),
        shard.probed,
        len(shard.hosts),
        "" if complete else f", stopped: {reason}",
    )
    return shard


async def run_shard(
    params: SurveyParams,
    settings: SurveyConfig,
    *,
    offset: int = 0,
    feed: AdvisoryFeed | None = None,
    clock: Callable[[], datetime] = utc_now,
    progress: Callable[[int], None] | None = None,
) -> Shard:
    """The shard ``params`` name, with this agent's limits: the rates lowered to its caps, its
    own opt-outs added to the command's. Hosts in flight are bounded by the connection rate
    too (``CPS_PER_HOST``): more hosts than the rate serves in a few seconds would only wait
    for the pacer inside their own deadlines."""
    plan = Plan(
        ports=params.ports,
        udp_ports=params.udp_ports,
        offset=offset,
        timeout_s=min(settings.connect_timeout_s, params.host_deadline_s),
        max_bytes=settings.max_answer_bytes,
        feed=feed,
        udp_window_s=settings.udp_window_s,
    )
    cps = min(params.rate_cps, settings.max_rate_cps)
    return await sweep(
        params.prefixes,
        exclude=params.exclude,
        opt_out=params.opt_out + settings.opted_out(),
        plan=plan,
        rate=Rate.of(min(params.rate_pps, settings.max_rate_pps), cps),
        host_deadline_s=params.host_deadline_s,
        deadline_s=params.deadline_s,
        concurrency=min(settings.concurrency, max(4, cps // CPS_PER_HOST)),
        clock=clock,
        progress=progress,
    )


def parts(hosts: tuple[SurveyHost, ...]) -> Iterator[list[SurveyHost]]:
    """``hosts`` cut into parts of at most ``PART_MAX_HOSTS`` hosts and ``PART_MAX_BYTES``
    encoded; always at least one part (the last carries the summary, even of no host)."""
    part: list[SurveyHost] = []
    size = _PART_OVERHEAD
    for host in hosts:
        length = len(msgspec.json.encode(host)) + 1
        if part and (len(part) == PART_MAX_HOSTS or size + length > PART_MAX_BYTES):
            yield part
            part, size = [], _PART_OVERHEAD
        part.append(host)
        size += length
    yield part
