"""``camwarden-server survey ...``: an Internet provider's survey (Directive 23/CT-TTg).

    survey prefix add --org ISP 198.51.100.0/24       declare a prefix the provider holds
    survey prefix list [--org ISP] | prefix remove ID
    survey exclude|opt-out add --org ISP 198.51.100.9 left alone by every survey
    survey exclude|opt-out list [--org ISP] | exclude|opt-out remove ID
    survey schedule --org ISP --every-days 7 [--agent A ...]
    survey start --org ISP [--agent A ...] [--shard-size N]
    survey list [--org ISP] | show ID                 progress per agent, time left
    survey reissue [--silent-after 15m]               shards of silent agents to live ones
    survey subscribers --org ISP FILE [--apply]       the subscriber map: preview, then apply
    survey notices ID | notice ID --state sent|acknowledged|fixed | notice ID --text [--lang]
    survey report ID --format pdf|docx|csv -o FILE [--lang vi]

Actions run as a whole-fleet administrator through the scoped layer and are audited; ``--by``
names the person. Exit codes: 0 done, 1 refused (the reason on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from server.dashboard_cli import ORG_HELP, optional_org, resolve_org
from server.domain.notices import MOVES, Notices
from server.domain.register_import import InvalidFile
from server.domain.scope import Principal, Scope, ScopeError
from server.domain.subscriber_map import TABLE
from server.domain.survey import SurveyInvalid, Surveys, SurveyView
from server.domain.survey_plan import DEFAULT_SHARD_MAX
from server.domain.survey_report import SurveyReports
from server.reports.document import Letterhead
from server.reports.survey import notice_text, render
from server.storage import Repository
from server.web.i18n import LANGS, Catalogue

SURVEY_COMMAND: Final = "survey"
_P: Final = "camwarden-server survey"
EXAMPLES: Final = {
    "survey": f"{_P} show 12",
    "survey prefix": f'{_P} prefix add --org "ISP X" 198.51.100.0/24',
    "survey prefix add": f'{_P} prefix add --org "ISP X" 198.51.100.0/24',
    "survey prefix list": f'{_P} prefix list --org "ISP X"',
    "survey prefix remove": f"{_P} prefix remove 3",
    "survey exclude": f'{_P} exclude add --org "ISP X" 198.51.100.0/29',
    "survey exclude add": f'{_P} exclude add --org "ISP X" 198.51.100.0/29',
    "survey exclude list": f'{_P} exclude list --org "ISP X"',
    "survey exclude remove": f"{_P} exclude remove 4",
    "survey opt-out": f'{_P} opt-out add --org "ISP X" 198.51.100.77',
    "survey opt-out add": f'{_P} opt-out add --org "ISP X" 198.51.100.77',
    "survey opt-out list": f'{_P} opt-out list --org "ISP X"',
    "survey opt-out remove": f"{_P} opt-out remove 5",
    "survey schedule": f'{_P} schedule --org "ISP X" --every-days 7',
    "survey start": f'{_P} start --org "ISP X" --agent survey-1 --agent survey-2',
    "survey list": f'{_P} list --org "ISP X"',
    "survey show": f"{_P} show 12",
    "survey reissue": f"{_P} reissue --silent-after 30m",
    "survey subscribers": f'{_P} subscribers --org "ISP X" subscribers.csv --apply',
    "survey notices": f"{_P} notices 12",
    "survey notice": f"{_P} notice 40 --state sent",
    "survey report": f"{_P} report 12 --format docx -o survey-12.docx",
}
HELPS: Final = {
    "survey prefix add": "declare a prefix the provider holds",
    "survey prefix list": "the declared prefixes",
    "survey prefix remove": "withdraw a declared prefix",
    "survey exclude add": "leave the provider's own equipment out of every survey",
    "survey exclude list": "the provider's exclusion list",
    "survey exclude remove": "take an entry off the exclusion list",
    "survey opt-out add": "leave a subscriber who asked so out of every survey",
    "survey opt-out list": "the subscribers' opt-out list",
    "survey opt-out remove": "take an entry off the opt-out list",
    "survey list": "surveys with their progress",
    "survey show": "a survey's progress per survey agent and the time left",
    "survey notices": "the notices of a survey, per subscriber",
}


def add_commands(sub: Any, duration: Any) -> None:
    sv = sub.add_parser(SURVEY_COMMAND, help="an Internet provider's survey of its prefixes")
    sv.add_argument("--by", default="cli", help="who takes the action (audit)")
    s = sv.add_subparsers(dest="action", required=True)
    prefix = s.add_parser("prefix", help="the prefixes a provider holds")
    p = prefix.add_subparsers(dest="prefix_action", required=True)
    add = p.add_parser("add")
    add.add_argument("--org", required=True, help=ORG_HELP)
    add.add_argument("prefix")
    p.add_parser("list").add_argument("--org", help=ORG_HELP)
    p.add_parser("remove").add_argument("prefix_id", type=int)
    for kind, what in (("exclude", "the provider's own equipment"), ("opt-out", "subscribers")):
        lst = s.add_parser(kind, help=f"addresses surveys leave alone: {what}")
        ls = lst.add_subparsers(dest="list_action", required=True)
        ladd = ls.add_parser("add")
        ladd.add_argument("--org", required=True, help=ORG_HELP)
        ladd.add_argument("prefix", help="an address or CIDR inside the provider's prefixes")
        ls.add_parser("list").add_argument("--org", help=ORG_HELP)
        ls.add_parser("remove").add_argument("entry_id", type=int)
    sched = s.add_parser("schedule", help="survey the provider's prefixes every N days")
    sched.add_argument("--org", required=True, help=ORG_HELP)
    sched.add_argument("--every-days", type=int, required=True)
    sched.add_argument("--agent", action="append", help="a survey agent (default: all)")
    start = s.add_parser("start", help="survey now: one signed command per shard")
    start.add_argument("--org", required=True, help=ORG_HELP)
    start.add_argument("--agent", action="append", help="a survey agent (default: all)")
    start.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_MAX)
    s.add_parser("list").add_argument("--org", help=ORG_HELP)
    s.add_parser("show").add_argument("survey_id", type=int)
    reissue = s.add_parser("reissue", help="give the shards of silent agents to live ones")
    reissue.add_argument("--silent-after", type=duration, default=timedelta(minutes=15))
    subs = s.add_parser("subscribers", help="import the subscriber map (CSV)")
    subs.add_argument("--org", required=True, help=ORG_HELP)
    subs.add_argument("file", type=Path)
    subs.add_argument("--apply", action="store_true", help="write it (default: preview only)")
    s.add_parser("notices").add_argument("survey_id", type=int)
    notice = s.add_parser("notice", help="move a notice, or print its text")
    notice.add_argument("notice_id", type=int)
    what = notice.add_mutually_exclusive_group(required=True)
    what.add_argument("--state", choices=MOVES)
    what.add_argument("--text", action="store_true")
    notice.add_argument("--lang", choices=LANGS, default="vi")
    report = s.add_parser("report", help="the report to the province: PDF, Word or CSV")
    report.add_argument("survey_id", type=int)
    report.add_argument("--format", choices=("pdf", "docx", "csv"), default="pdf")
    report.add_argument("--lang", choices=LANGS, default="vi")
    report.add_argument("-o", "--output", type=Path, required=True)
    report.add_argument("--addressee", help="Kính gửi: e.g. the provincial Department")
    report.add_argument("--number", help="number and symbol of the document")


def run_command(args: argparse.Namespace, repo: Repository) -> int:
    principal = Principal(0, args.by, "admin", None, None, None)
    scope = Scope(repo, principal, silent_after=timedelta(minutes=15), now=datetime.now(UTC))
    try:
        return _run(args, scope)
    except InvalidFile as exc:
        for e in exc.errors:
            print(f"line {e.line}: {e.code} {e.params}", file=sys.stderr)
        return 1
    except SurveyInvalid as exc:
        print(f"camwarden-server: {exc.code} {exc.params}", file=sys.stderr)
        return 1
    except (ScopeError, OSError, ValueError) as exc:
        print(f"camwarden-server: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, scope: Scope) -> int:
    return _ACTIONS[args.action](args, scope)


def _schedule(args: argparse.Namespace, scope: Scope) -> int:
    s = Surveys(scope).set_schedule(resolve_org(scope, args.org), args.every_days, args.agent)
    print(f"every {s.every_days} days by {', '.join(s.agents)}; next {s.next_at:%Y-%m-%d %H:%M}")
    return 0


def _start(args: argparse.Namespace, scope: Scope) -> int:
    survey_id = Surveys(scope).start(resolve_org(scope, args.org), args.agent, args.shard_size)
    print(f"survey {survey_id} queued; the running collector signs and sends its commands")
    return 0


def _list(args: argparse.Namespace, scope: Scope) -> int:
    for v in Surveys(scope).surveys(optional_org(scope, args.org)):
        print(_line(v))
    return 0


def _show(args: argparse.Namespace, scope: Scope) -> int:
    v = Surveys(scope).survey(args.survey_id)
    print(_line(v))
    for a in v.agents:
        silent = " silent" if a.silent else ""
        print(f"  {a.agent_id}: {a.done}/{a.addresses} in {a.shards} shards{silent}")
    return 0


def _reissue(args: argparse.Namespace, scope: Scope) -> int:
    print(f"{Surveys(scope).reissue(args.silent_after)} shard(s) given again")
    return 0


def _notices(args: argparse.Namespace, scope: Scope) -> int:
    for n in Notices(scope).notices(args.survey_id):
        print(f"{n.id}\t{n.subscriber_id}\t{n.state}\t{len(n.exposures)}\t{n.contact}")
    return 0


def _notice(args: argparse.Namespace, scope: Scope) -> int:
    notices = Notices(scope)
    if args.text:
        print(notice_text(notices.notice(args.notice_id), Catalogue.load(), args.lang))
    else:
        print(notices.move_notice(args.notice_id, args.state).state)
    return 0


def _report(args: argparse.Namespace, scope: Scope) -> int:
    report = SurveyReports(scope).survey_report(args.survey_id)
    head = Letterhead(addressee=args.addressee, number=args.number)
    data = render(report, head, Catalogue.load(), lang=args.lang, fmt=args.format)
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)")
    return 0


def _leave_alone(args: argparse.Namespace, scope: Scope) -> int:
    surveys, kind = Surveys(scope), args.action.replace("-", "_")
    if args.list_action == "add":
        e = surveys.add_to_list(resolve_org(scope, args.org), kind, args.prefix)
        print(f"{e.id}\t{e.prefix}")
    elif args.list_action == "list":
        for e in surveys.list_entries(optional_org(scope, args.org)):
            if e.kind == kind:
                print(f"{e.id}\t{e.org_unit_id}\t{e.prefix}\t{e.created_by}")
    else:
        surveys.remove_from_list(args.entry_id)
    return 0


def _prefix(args: argparse.Namespace, scope: Scope) -> int:
    surveys = Surveys(scope)
    if args.prefix_action == "add":
        p = surveys.declare_prefix(resolve_org(scope, args.org), args.prefix)
        print(f"{p.id}\t{p.prefix}")
    elif args.prefix_action == "list":
        for p in surveys.prefixes(optional_org(scope, args.org)):
            print(f"{p.id}\t{p.org_unit_id}\t{p.prefix}\t{p.created_by}")
    else:
        surveys.remove_prefix(args.prefix_id)
    return 0


def _subscribers(args: argparse.Namespace, scope: Scope) -> int:
    if args.file.stat().st_size > TABLE.max_bytes:
        raise ValueError(f"{args.file} is larger than {TABLE.max_bytes // 1024} KiB")
    data = args.file.read_bytes()
    org = resolve_org(scope, args.org)
    notices = Notices(scope)
    result = notices.apply_map(org, data) if args.apply else notices.preview_map(org, data)
    if result.errors:
        raise InvalidFile(result.errors)
    verb = "applied" if args.apply else "preview"
    print(f"{verb}: {result.added} added, {result.replaced} replaced, {result.unchanged} unchanged")
    return 0


_ACTIONS: Final[dict[str, Callable[[argparse.Namespace, Scope], int]]] = {
    "prefix": _prefix,
    "exclude": _leave_alone,
    "opt-out": _leave_alone,
    "schedule": _schedule,
    "start": _start,
    "list": _list,
    "show": _show,
    "reissue": _reissue,
    "subscribers": _subscribers,
    "notices": _notices,
    "notice": _notice,
    "report": _report,
}


def _line(v: SurveyView) -> str:
    left = f", {int(v.eta.total_seconds() // 60)} min left" if v.eta is not None else ""
    return (
        f"{v.id}\t{v.org_name}\t{v.state}\t{v.done}/{v.addresses} ({v.percent}%){left}"
        f"\t{v.exposures} exposed"
    )
