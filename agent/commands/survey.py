"""``survey.sweep``: one shard of a provider's survey (``agent.survey``, docs/adr/0034).

::

    preflight   params read; every prefix inside [survey] allowed_prefixes, else rejected
                (prefix_not_allowed); a survey interrupted by a restart is not resumed
                (failed: interrupted; the collector sends the shard again)
    sweeping    the shard probed (no credential sent, nothing outside its prefixes); announced
                again with the detail ``probed`` (addresses probed so far) every
                ``PROGRESS_EVERY`` addresses, so the collector's progress moves while it runs
    reporting   announced with ``probed``, the whole count (the collector's progress stays put
                until the parts are in); the findings as SurveyResult parts, the last with the
                summary; then the command's own result: succeeded, or failed (deadline) when
                the shard's deadline stopped it (the parts are sent all the same)
"""

from __future__ import annotations

import asyncio
import logging

from agent.advisories.feed import FeedError, configured_feed
from agent.commands.context import Details, Run
from agent.commands.errors import StepFailed
from agent.commands.verify import survey_params
from agent.messaging.issuer import Header
from agent.survey.sweep import parts, run_shard
from protocol.messages import SurveyHost, SurveyResult

__all__ = ["survey"]

log = logging.getLogger(__name__)


async def survey(run: Run) -> Details:
    config, command = run.context.config, run.command
    params = survey_params(command.params)
    if run.entry.step is not None:
        raise StepFailed("interrupted", f"survey stopped at {run.entry.step} by a restart")
    await run.step("preflight")
    allowed = config.survey.allowed()
    if not params.scope().within(allowed):
        shown = ", ".join(str(p) for p in allowed) or "none configured"
        raise StepFailed(
            "prefix_not_allowed",
            f"{', '.join(str(p) for p in params.prefixes)} not inside [survey] allowed_prefixes"
            f" ({shown})",
            status="rejected",
        )
    try:
        feed = await asyncio.to_thread(
            configured_feed,
            config.state_path,
            config.advisories.feed_keys_file,
            now=run.context.clock(),
        )
    except FeedError as exc:
        log.warning("survey %s: no advisory feed, firmware not judged: %s", params.survey_id, exc)
        feed = None
    await run.step("sweeping")
    counts: asyncio.Queue[int | None] = asyncio.Queue()

    async def tell() -> None:  # one at a time, in the order counted
        while (probed := await counts.get()) is not None:
            await run.step("sweeping", {"probed": probed})

    teller = asyncio.create_task(tell())
    try:
        shard = await run_shard(
            params, config.survey, offset=config.network.port_offset, feed=feed,
            clock=run.context.clock, progress=counts.put_nowait,
        )  # fmt: skip
    except BaseException:
        teller.cancel()
        raise
    counts.put_nowait(None)
    await teller
    await run.step("reporting", {"probed": shard.probed})
    cut = list(parts(shard.hosts))
    for number, hosts in enumerate(cut, start=1):
        last = number == len(cut)

        def build(
            h: Header, hosts: list[SurveyHost] = hosts, number: int = number, last: bool = last
        ) -> SurveyResult:
            return SurveyResult(
                **h.fields(),
                command_id=command.command_id,
                survey_id=params.survey_id,
                shard=params.shard,
                part=number,
                last=last,
                hosts=hosts,
                summary=shard.summary(len(cut)) if last else None,
            )

        await run.context.issue(build)
    if not shard.complete:
        raise StepFailed(shard.reason or "deadline", f"{shard.probed} of {shard.addresses} probed")
    return {"parts": len(cut), "answered": len(shard.hosts), "probed": shard.probed}
