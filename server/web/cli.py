"""``camwarden-server users|orgs|systems|retention``: bootstrap and manage the dashboard's data.

The command line acts as a whole-fleet administrator named ``cli`` through the same scoped layer
as the web, so its actions are checked and audited alike. Passwords are read from the terminal
(or one line of standard input when it is not a terminal), never from arguments.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from server.storage.org_models import FRAMEWORKS, KINDS, PLAN_STATUSES, ROLES

if TYPE_CHECKING:
    from server.domain.scope import OrgNode, Scoped
    from server.storage import Repository

WEB_COMMANDS: Final = ("users", "orgs", "systems", "retention")


def web_commands(sub: Any) -> None:
    users = sub.add_parser("users", help="dashboard users").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser("create", help="create a user (password read from the terminal)")
    create.add_argument("username")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--org", help=f"{ORG_HELP}; omitted: the whole fleet")
    users.add_parser("list")
    for action in ("passwd", "disable", "enable"):
        users.add_parser(action).add_argument("username")
    users.add_parser("locked", help="accounts and addresses locked after failed sign-ins")
    unlock = users.add_parser("unlock", help="end the sign-in lock of an account or an address")
    target = unlock.add_mutually_exclusive_group(required=True)
    target.add_argument("username", nargs="?")
    target.add_argument("--source", help="a source address instead of an account")
    orgs = sub.add_parser("orgs", help="the organisation tree").add_subparsers(
        dest="action", required=True
    )
    add = orgs.add_parser("add", help="add a province, ministry, agency or information system")
    add.add_argument("--kind", choices=[k for k in KINDS if k != "site"], required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--parent", help=f"parent {ORG_HELP}; omitted: a top-level unit")
    orgs.add_parser("list")
    site = orgs.add_parser("map-site", help="attach the agents' site to an information system")
    site.add_argument("site")
    site.add_argument("--system", required=True, help=f"information system: {ORG_REF}")
    site.add_argument("--name")
    systems = sub.add_parser("systems", help="security-level records").add_subparsers(
        dest="action", required=True
    )
    systems.add_parser("list")
    record = systems.add_parser("set", help="set an information system's security-level record")
    record.add_argument("system", help=f"information system: {ORG_REF}")
    record.add_argument("--framework", choices=FRAMEWORKS, required=True)
    record.add_argument("--level", type=int, choices=range(1, 6), required=True)
    record.add_argument("--plan", choices=PLAN_STATUSES, required=True)
    record.add_argument("--decision")
    record.add_argument("--decision-date", type=date.fromisoformat)
    record.add_argument("--next-check", type=date.fromisoformat)
    retention = sub.add_parser("retention", help="raw report retention per security level")
    retention.add_argument("--level", type=int, choices=range(1, 6))
    retention.add_argument("--days", type=int)


def _password() -> str:
    from server.domain.scope import ScopeError  # noqa: PLC0415  # see run_web_command

    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ScopeError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


ORG_REF = 'its name, its path ("Tỉnh X/Sở Y") or its id (orgs list)'
ORG_HELP = f"organisation: {ORG_REF}"


def _folded(name: str) -> str:
    return unicodedata.normalize("NFC", name).strip().casefold()


def resolve_org(s: Scoped, ref: str) -> int:
    """The id of the organisation unit that ``ref`` names: a number is an id; else a path of
    names separated by ``/`` whose last parts name exactly one unit (``"Sở Y"`` if it is the
    only one, ``"Tỉnh X/Sở Y"`` otherwise). Names compare without case, in Unicode NFC."""
    if ref.strip().isdigit():
        return int(ref)
    wanted = tuple(_folded(part) for part in ref.split("/") if part.strip())
    if not wanted:
        raise ValueError(f"no organisation named {ref!r}")
    nodes = s.org_tree()
    by_id = {node.id: node for node in nodes}
    chains = {node.id: _chain(node, by_id) for node in nodes}
    found = [
        node
        for node in nodes
        if tuple(_folded(n.name) for n in chains[node.id])[-len(wanted) :] == wanted
    ]
    if not found:
        raise ValueError(f"no organisation named {ref!r}: see `camwarden-server orgs list`")
    if len(found) > 1:
        example = "/".join(n.name for n in chains[found[0].id])
        raise ValueError(
            f'{len(found)} organisations are named {ref!r}: give the path, e.g. "{example}"'
        )
    return found[0].id


def optional_org(s: Scoped, ref: str | None) -> int | None:
    """``resolve_org`` for an option that may be left out."""
    return None if ref is None else resolve_org(s, ref)


def _chain(node: OrgNode, by_id: Mapping[int, OrgNode]) -> list[OrgNode]:
    """``node`` and its parents, the root first (bounded by the tree's size)."""
    chain = [node]
    while len(chain) <= len(by_id):
        parent = by_id.get(chain[-1].parent_id or -1)
        if parent is None:
            break
        chain.append(parent)
    return chain[::-1]


def _user_id(s: Scoped, username: str) -> int:
    for user in s.users():
        if user.username == username:
            return user.id
    raise ValueError(f"no user {username}")


def run_web_command(args: argparse.Namespace, repo: Repository) -> int:
    # the scoped layer pulls in the dashboard's queries and password hashing: only when run
    from server.domain.scope import CLI, Scoped, ScopeError  # noqa: PLC0415

    s = Scoped(repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC))
    try:
        return _dispatch(args, s)
    except (ScopeError, ValueError) as exc:
        print(f"camwarden-server: {exc}", file=sys.stderr)
        return 1


def _locks(args: argparse.Namespace, s: Scoped) -> None:
    if args.action == "locked":
        for lock in s.sign_in_locks():
            until = lock.locked_until.isoformat(timespec="seconds")
            print(f"{lock.kind}\t{lock.name}\t{lock.failures} failures\tlocked until {until}")
    elif args.source:
        s.unlock_sign_in("source", args.source)
        print(f"address {args.source} unlocked")
    else:
        s.unlock_sign_in("account", args.username)
        print(f"account {args.username} unlocked")


def _dispatch(args: argparse.Namespace, s: Scoped) -> int:  # noqa: PLR0912
    if args.command == "users":
        if args.action == "create":
            user = s.create_user(args.username, _password(), args.role, optional_org(s, args.org))
            print(f"user {user.username} ({user.role}) created with id {user.id}")
        elif args.action == "list":
            for u in s.users():
                state = "disabled" if u.disabled else "active"
                print(f"{u.id}\t{u.username}\t{u.role}\torg {u.org_unit_id or 'all'}\t{state}")
        elif args.action in ("locked", "unlock"):
            _locks(args, s)
        elif args.action == "passwd":
            s.set_password(_user_id(s, args.username), _password())
            print(f"password of {args.username} changed; their sessions ended")
        else:
            s.set_user_disabled(_user_id(s, args.username), args.action == "disable")
            print(f"user {args.username} {args.action}d")
    elif args.command == "orgs":
        if args.action == "add":
            node = s.create_org(
                parent_id=optional_org(s, args.parent), kind=args.kind, name=args.name
            )
            print(f"{node.kind} {node.name} added with id {node.id}")
        elif args.action == "map-site":
            node = s.map_site(args.site, resolve_org(s, args.system), args.name)
            print(f"site {args.site} attached to information system {args.system} (id {node.id})")
        else:
            for o in s.org_tree():
                site = f" [site {o.site}]" if o.site else ""
                print(f"{'  ' * o.depth}{o.id}\t{o.kind}\t{o.name}{site}")
    elif args.command == "systems":
        if args.action == "set":
            from server.domain.scope import SecurityRecord  # noqa: PLC0415

            record = SecurityRecord(
                args.framework, args.level, args.decision, args.decision_date, args.plan,
                args.next_check,
            )  # fmt: skip
            view = s.set_security_record(resolve_org(s, args.system), record)
            print(f"{view.name}: level {args.level} under {args.framework}")
        else:
            for v in s.systems():
                r = v.record
                due = r.next_check_due.isoformat() if r and r.next_check_due else "-"
                level = f"level {r.level} {r.framework} plan {r.plan_status}" if r else "no record"
                print(f"{v.id}\t{v.name}\t{v.agency}\t{level}\tnext check {due}"
                      + ("\tOVERDUE" if v.overdue else ""))  # fmt: skip
    else:
        if args.level is not None and args.days is not None:
            s.set_retention(args.level, args.days)
        for policy in s.retention():
            print(f"level {policy.level}: raw reports kept {policy.raw_reports_days} days")
    return 0
