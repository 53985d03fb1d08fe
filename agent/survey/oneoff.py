"""``camwarden-agent survey``: one survey of the prefixes given on the command line, printed and
written to a file; no collector, no signed command.

The same bounds as a signed command (``protocol.survey.SurveyParams``: at most a /20 at once,
the rates, the deadlines); nothing is sent outside the given prefixes, nor to an excluded or
opted-out address. With ``--config``, that agent's ``[survey]`` caps and opt-outs apply and its
advisory feed judges firmware; without, the defaults and the shipped feed.

Exit codes: 0 nothing exposed found, 1 some host exposes something, 2 usage or config error,
3 nothing exposed found but the survey stopped at its deadline (the rest is not surveyed).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import msgspec

from agent.advisories.feed import (
    AdvisoryFeed,
    FeedError,
    configured_feed,
    load_feed,
    shipped_feed,
    shipped_feed_keys,
)
from agent.config import AgentConfig, SurveyConfig, load_config
from agent.errors import AgentError
from agent.survey.sweep import Shard, run_shard
from protocol.errors import BadParams
from protocol.rules import utc_now
from protocol.survey import (
    DEFAULT_PORTS,
    DEFAULT_UDP_PORTS,
    UDP_PORTS,
    SurveyParams,
    parse_networks,
    parse_ports,
)
from service.files import atomic_write

__all__ = ["EXIT_CODES", "add_arguments", "survey_command"]

EXIT_CODES = """exit codes: 0 nothing exposed found, 1 some host exposes something, 2 usage or
config error, 3 nothing exposed found but the deadline stopped the survey (rest not surveyed)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--prefix", action="append", required=True, metavar="CIDR",
        help="a prefix to survey (repeatable; at most 4096 addresses in all)",
    )  # fmt: skip
    p.add_argument("--ports", default=",".join(map(str, DEFAULT_PORTS)), help="TCP ports")
    p.add_argument(
        "--udp-ports", default=",".join(map(str, DEFAULT_UDP_PORTS)),
        help="UDP probes (1900: SSDP; empty: none)",
    )  # fmt: skip
    p.add_argument("--exclude", action="append", default=[], metavar="CIDR", help="never touch")
    p.add_argument(
        "--opt-out", action="append", default=[], metavar="CIDR",
        help="a subscriber who opted out (repeatable)",
    )  # fmt: skip
    p.add_argument("--opt-out-file", type=Path, help="opted-out addresses or prefixes, one a line")
    p.add_argument("--rate-pps", type=int, default=200, help="packets per second, at most")
    p.add_argument("--rate-cps", type=int, default=50, help="new connections per second, at most")
    p.add_argument("--host-deadline-s", type=int, default=30, help="time one host may take")
    p.add_argument("--deadline-s", type=int, default=3600, help="time the whole survey may take")
    p.add_argument("--port-offset", type=int, default=0, help="labs: every port shifted by this")
    p.add_argument("--survey-id", default="local", help="a name for the result file")
    p.add_argument("--out", type=Path, help="write the result (JSON) here")
    p.add_argument(
        "--config", type=Path, default=None,
        help="use this agent config's [survey] caps and opt-outs, and its advisory feed",
    )  # fmt: skip


def _params(args: argparse.Namespace) -> SurveyParams:
    opt_out = list(args.opt_out)
    if args.opt_out_file is not None:
        try:
            text = args.opt_out_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise AgentError(f"cannot read {args.opt_out_file}: {exc.strerror}") from exc
        opt_out += [line.strip() for line in text.splitlines() if line.strip()]
    try:  # as bounded as a signed command: the command's own parser reads it back
        params = SurveyParams(
            survey_id=args.survey_id,
            shard=0,
            prefixes=parse_networks(",".join(args.prefix), "--prefix"),
            ports=parse_ports(args.ports, "--ports"),
            udp_ports=parse_ports(args.udp_ports, "--udp-ports", UDP_PORTS),
            exclude=parse_networks(",".join(args.exclude), "--exclude"),
            opt_out=parse_networks(",".join(opt_out), "--opt-out"),
            rate_pps=args.rate_pps,
            rate_cps=args.rate_cps,
            host_deadline_s=args.host_deadline_s,
            deadline_s=args.deadline_s,
        )
        return SurveyParams.parse(params.to_params())
    except BadParams as exc:
        raise AgentError(exc.detail) from exc


def survey_command(args: argparse.Namespace) -> int:
    params = _params(args)
    config: AgentConfig | None = load_config(args.config) if args.config is not None else None
    settings = config.survey if config is not None else SurveyConfig()
    feed: AdvisoryFeed | None
    try:
        feed = (
            configured_feed(config.state_path, config.advisories.feed_keys_file, now=utc_now())
            if config is not None
            else load_feed(shipped_feed(), shipped_feed_keys(), now=utc_now(), last=None)
        )
    except FeedError as exc:
        print(f"camwarden-agent: no advisory feed ({exc}): firmware not judged")
        feed = None
    shard = asyncio.run(run_shard(params, settings, offset=args.port_offset, feed=feed))
    print(render(shard))
    if args.out is not None:
        document = {"params": params.to_params(), "summary": shard.summary(1), "hosts": shard.hosts}
        atomic_write(args.out, msgspec.json.encode(document) + b"\n", mode=0o640)
        print(f"wrote {args.out}")
    if any(host.exposures for host in shard.hosts):
        return 1
    return 0 if shard.complete else 3


def render(shard: Shard) -> str:
    """One line per answering host, then the counts."""
    lines = []
    for host in shard.hosts:
        who = " ".join(
            x for x in (host.identity.vendor, host.identity.model, host.identity.firmware) if x
        )
        exposed = ", ".join(f"{e.code}" + (f":{e.port}" if e.port else "") for e in host.exposures)
        cut = "" if host.complete else " (host deadline: not every probe ran)"
        ports = ",".join([str(p) for p in host.ports] + [f"{p}/udp" for p in host.udp_ports])
        lines.append(f"{host.address}\t{ports}\t{who or '-'}\t{exposed or '-'}{cut}")
    exposed_hosts = sum(1 for h in shard.hosts if h.exposures)
    lines.append(
        f"{shard.addresses} addresses: {shard.probed} probed, {shard.excluded} excluded, "
        f"{shard.opted_out} opted out; {len(shard.hosts)} answered, {exposed_hosts} exposed"
        + ("" if shard.complete else f"; STOPPED ({shard.reason}): the rest is not surveyed")
    )
    return "\n".join(lines)
