"""``camwarden-server``: run the collector; manage agents, users and the organisation tree.

Also: migrate, enrollment tokens, verify and import report files, compliance reports, pruning
by retention policy and verifying an agent's stored chain. ``run`` also runs the alert worker
and the retention job in background threads.

Exit codes: 0 success, 1 failure (invalid report, rejected lines, refused action), 2 usage or
configuration error. SIGTERM and SIGINT stop ``run`` cleanly: the batch in progress is finished
and acknowledged, then the MQTT session is left for the next start.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from protocol import MalformedMessage, import_public_jwk, utc_now
from protocol.cliparse import document, quiet_libraries
from protocol.configfile import ConfigError, dumps
from server import __version__, advisories, broker_roles, setup, survey_cli
from server.certs import AgentCertificates
from server.config import DEFAULT_PATH, ServerConfig, load_config, parse_overrides
from server.dashboard_cli import ORG_HELP, WEB_COMMANDS, resolve_org, run_web_command, web_commands
from server.domain.orgs import Orgs
from server.domain.reports import Reports
from server.domain.summary import fleet_summary
from server.firmware import cli as firmware_cli
from server.ingest.ingestor import Ingestor
from server.keys import CommandKeyError, load_or_create
from server.metrics import Metrics
from server.storage import Repository
from server.storage.records import Incoming
from server.storage.retention import ChainBroken, UnknownAgent, prune_now, verify_chain
from server.times import zone_or
from server.verify import InvalidReport, report_lines, topic_for, verify_file
from service.systemd import log_handler

log = logging.getLogger(__name__)
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> timedelta:
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration like 30m, 24h or 7d, got {text!r}")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


DESCRIPTION = """camwarden collector: stores the agents' signed reports, serves the dashboard
and manages agents, users and the organisation tree.

exit codes: 0 success, 1 failure (invalid report, rejected lines, refused action), 2 usage or
configuration error."""
ORG = '"Tỉnh X/Sở Y"'
EXAMPLES = {
    "run": "camwarden-server run",
    "setup": (
        "camwarden-server setup --yes --admin-password-file /root/admin-password"
        " --orgs orgs.csv --broker-host mqtt.tinh-x.vn --web-host camera.tinh-x.vn"
    ),
    "check-config": "camwarden-server --config /etc/camwarden/server.toml check-config",
    "migrate": "camwarden-server migrate",
    "tokens": "camwarden-server tokens create --site lobby --ttl 24h",
    "tokens create": "camwarden-server tokens create --site lobby --ttl 24h --uses 1",
    "agents": "camwarden-server agents list",
    "agents list": "camwarden-server agents list",
    "agents approve": "camwarden-server agents approve pi-lobby-01",
    "agents revoke": "camwarden-server agents revoke pi-lobby-01",
    "verify-report": "camwarden-server verify-report --pubkey agent.jwk site-report.jws",
    "fleet": "camwarden-server fleet",
    "users": "camwarden-server users list",
    "users create": f"camwarden-server users create nguyen.an --role viewer --org {ORG}",
    "users list": "camwarden-server users list",
    "users passwd": "camwarden-server users passwd nguyen.an",
    "users disable": "camwarden-server users disable nguyen.an",
    "users enable": "camwarden-server users enable nguyen.an",
    "users locked": "camwarden-server users locked",
    "users unlock": "camwarden-server users unlock nguyen.an",
    "orgs": "camwarden-server orgs list",
    "orgs add": 'camwarden-server orgs add --kind agency --name "Sở Y" --parent "Tỉnh X"',
    "orgs list": "camwarden-server orgs list",
    "orgs map-site": 'camwarden-server orgs map-site lobby --system "Tỉnh X/Sở Y/Camera"',
    "systems": "camwarden-server systems list",
    "systems list": "camwarden-server systems list",
    "systems set": (
        'camwarden-server systems set "Tỉnh X/Sở Y/Camera" --framework ND85_TT12_TCVN11930'
        " --level 3 --plan full"
    ),
    "retention": "camwarden-server retention --level 3 --days 365",
    "models": "camwarden-server models export --out register.csv",
    "models export": "camwarden-server models export --out register.csv",
    "models import": "camwarden-server models import register.csv --apply",
    "firmware": "camwarden-server firmware status",
    "firmware keygen": "camwarden-server firmware keygen root-1.key",
    "firmware init": (
        "camwarden-server firmware init --root-key root-1.pub --root-threshold 1"
        " --targets-key targets-1.pub"
    ),
    "firmware rotate-root": (
        "camwarden-server firmware rotate-root --root-key root-2.pub --root-threshold 1"
        " --targets-key targets-1.pub"
    ),
    "firmware upload": (
        "camwarden-server firmware upload image.dav --vendor hikvision --model DS-2CD2043G2-I"
        " --version 5.7.3"
    ),
    "firmware list": "camwarden-server firmware list",
    "firmware retire": "camwarden-server firmware retire 4",
    "firmware export-bundle": "camwarden-server firmware export-bundle next.bundle",
    "firmware sign": "camwarden-server firmware sign --key root-1.key next.bundle",
    "firmware import-signed": "camwarden-server firmware import-signed next.bundle",
    "firmware status": "camwarden-server firmware status",
    "rollout": "camwarden-server rollout list",
    "rollout create": (
        f"camwarden-server rollout create --name spring --image 4 --org {ORG} --canary 2"
    ),
    "rollout list": "camwarden-server rollout list",
    "rollout status": "camwarden-server rollout status 7",
    "rollout promote": "camwarden-server rollout promote 7",
    "rollout halt": "camwarden-server rollout halt 7",
    "rollout resume": "camwarden-server rollout resume 7",
    "remediate": "camwarden-server remediate plan --code svc.telnet_open",
    "remediate plan": (
        f"camwarden-server remediate plan --org {ORG} --control SVC-02"
        " --create --name telnet --escrow-key escrow.jwk"
    ),
    "remediate list": "camwarden-server remediate list",
    "remediate status": "camwarden-server remediate status 9",
    "remediate approve": "camwarden-server remediate approve 9",
    "remediate promote": "camwarden-server remediate promote 9",
    "remediate halt": "camwarden-server remediate halt 9",
    "remediate resume": "camwarden-server remediate resume 9",
    "remediate rollback": "camwarden-server remediate rollback 9 pi-lobby-01 door",
    "password": "camwarden-server password rotate pi-lobby-01 door --username admin ...",
    "password rotate": (
        "camwarden-server password rotate pi-lobby-01 door --username admin --escrow-key escrow.jwk"
    ),
    "import": "camwarden-server import /media/usb/site-report.jws",
    "report": (
        f"camwarden-server report --org {ORG} --from 2026-01-01 --to 2026-03-31"
        " --format pdf --out q1.pdf"
    ),
    "prune": "camwarden-server prune",
    "verify-chain": "camwarden-server verify-chain pi-lobby-01",
    "alerts-once": "camwarden-server alerts-once",
    "advisories": "camwarden-server advisories status",
    "advisories publish": "camwarden-server advisories publish feed.jws",
    "advisories status": "camwarden-server advisories status",
}
HELPS = {
    "tokens": "enrollment tokens for new agents",
    "agents": "enrolled agents: list, approve, revoke",
    "agents list": "every agent, its site, state and last contact",
    "agents approve": "let an enrolled agent report (issues its broker certificate)",
    "agents revoke": "stop accepting an agent's reports",
    "users list": "every dashboard user, role and organisation",
    "users passwd": "set a user's password (ends their sessions)",
    "users disable": "stop a user from signing in",
    "users enable": "let a disabled user sign in again",
    "orgs list": "the organisation tree with ids and sites",
    "systems list": "information systems, their security level and next check",
    "firmware list": "the images in the catalogue",
    "firmware retire": "withdraw an image from the catalogue",
    "rollout create": "plan a staged firmware rollout (canary first)",
    "rollout list": "every rollout and its progress",
    "rollout status": "the stages and cameras of a rollout",
    "rollout promote": "move a rollout past its canary stage",
    "rollout halt": "stop a rollout where it is",
    "rollout resume": "continue a halted rollout",
    "remediate plan": "list what fixing the selected findings would change (--create stores it)",
    "remediate list": "every remediation plan and its progress",
    "remediate status": "the cameras of a plan, their changes and results",
    "remediate approve": "approve a stored plan: its canary starts",
    "remediate promote": "move a plan past its canary stage",
    "remediate halt": "stop a plan where it is (or reject it before approval)",
    "remediate resume": "continue a halted plan",
    "remediate rollback": "restore one camera of a plan to its settings before the change",
    "prune": "delete raw reports past their retention now",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="camwarden-server",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--config", type=Path, default=DEFAULT_PATH, help="main config file")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log everything, libraries included"
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, then ingest from MQTT and serve the HTTP API")
    setup.add_arguments(
        sub.add_parser(
            "setup",
            help="set up the first collector: database, admin, organisations, broker, HTTPS",
        )
    )
    sub.add_parser(
        "check-config", help="print the effective config, secrets redacted; exit 2 if invalid"
    )
    sub.add_parser("migrate", help="bring the database schema up to date")
    tokens = sub.add_parser("tokens").add_subparsers(dest="action", required=True)
    create = tokens.add_parser("create", help="create an enrollment token (printed once)")
    create.add_argument("--site", required=True)
    create.add_argument("--approved", action="store_true", help="agents enrolled are approved")
    create.add_argument("--ttl", type=duration, default=timedelta(hours=24))
    create.add_argument("--uses", type=int, default=1, help="how many agents may use it")
    agents = sub.add_parser("agents").add_subparsers(dest="action", required=True)
    agents.add_parser("list")
    for action in ("approve", "revoke"):
        agents.add_parser(action).add_argument("agent_id")
    verify = sub.add_parser("verify-report", help="verify a report file offline with one key")
    verify.add_argument("--pubkey", type=Path, required=True, help="the agent's public JWK file")
    verify.add_argument("report", type=Path)
    sub.add_parser("fleet", help="summary of agents, cameras and open findings")
    web_commands(sub)
    firmware_cli.add_commands(sub)
    survey_cli.add_commands(sub, duration)
    imp = sub.add_parser("import", help="ingest a report file through the MQTT pipeline's checks")
    imp.add_argument("file", type=Path)
    report_arguments(sub)
    sub.add_parser("prune")
    chain = sub.add_parser("verify-chain", help="verify an agent's stored chain across pruning")
    chain.add_argument("agent_id")
    sub.add_parser("alerts-once", help="one round of the alert worker (sync and deliver)")
    advisories = sub.add_parser("advisories", help="the advisory feed served to agents")
    feed = advisories.add_subparsers(dest="action", required=True)
    feed.add_parser("publish", help="check a signed feed and serve it").add_argument(
        "file", type=Path
    )
    feed.add_parser("status", help="the feed served now")
    return document(p, EXAMPLES | survey_cli.EXAMPLES, HELPS | survey_cli.HELPS)


def report_arguments(sub: Any) -> None:
    """``report``: the org, the period, the format and the document's letterhead."""
    report = sub.add_parser("report", help="compliance report of an org subtree: PDF, Word or CSV")
    report.add_argument("--org", required=True, help=ORG_HELP)
    report.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    report.add_argument("--to", dest="end", type=date.fromisoformat, required=True)
    report.add_argument("--format", choices=("pdf", "docx", "csv", "csv-summary"), default="pdf")
    report.add_argument("--lang", choices=("vi", "en"), default="vi")
    head = report.add_argument_group("the document's letterhead (left out: dots to fill in)")
    head.add_argument("--issuer", help="issuing body (default: the organisation unit)")
    head.add_argument("--governing", help="its governing body (default: the unit above)")
    head.add_argument("--number", help='number and symbol, e.g. "125/BC-CAT"')
    head.add_argument("--place", help="place of issue")
    head.add_argument("--addressee", help="to whom (Kính gửi)")
    head.add_argument("--recipient", action="append", default=[], help="Nơi nhận (repeat)")
    head.add_argument("--signer-title")
    head.add_argument("--signer-name")
    report.add_argument("--out", type=Path, required=True)


def report_command(args: argparse.Namespace, repo: Repository, default_zone: ZoneInfo) -> int:
    # fpdf2, python-docx and Pillow: only here
    from server.domain.scope import CLI, Scope, ScopeError  # noqa: PLC0415
    from server.reports import compliance as reports  # noqa: PLC0415
    from server.reports import document  # noqa: PLC0415
    from server.web.i18n import Catalogue  # noqa: PLC0415

    s = Scope(repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC))
    try:
        head = document.Letterhead(
            args.issuer,
            args.governing,
            args.number,
            args.place,
            args.addressee,
            tuple(args.recipient),
            args.signer_title,
            args.signer_name,
        )
        built = reports.build(
            Reports(s).report_data(resolve_org(s, args.org), args.start, args.end)
        )
        systems = Orgs(s).systems() if args.format in ("pdf", "docx") else []
    except (ScopeError, ValueError) as exc:
        print(f"camwarden-server: {exc}", file=sys.stderr)
        return 1
    zone = zone_or(built.data.zone, default_zone)
    body = document.render(
        built, systems, head, Catalogue.load(), lang=args.lang, fmt=args.format, zone=zone
    )
    args.out.write_bytes(body)
    print(f"{args.out}: {built.total.systems} systems, {built.total.devices} cameras")
    return 0


def verify_chain_command(repo: Repository, agent_id: str) -> int:
    try:
        check = verify_chain(repo.engine, agent_id)
    except UnknownAgent:
        print(f"camwarden-server: agent {agent_id} is not enrolled", file=sys.stderr)
        return 1
    except ChainBroken as exc:
        print(f"invalid: {agent_id}: {exc}")
        return 1
    print(check.text())
    return 0


def housekeeping_command(command: str, repo: Repository, config: ServerConfig) -> int:
    if command == "prune":
        result = prune_now(config, repo.engine, utc_now())
        print(f"pruned {result.messages} messages of {result.agents} agents")
        for path in result.archives:
            print(f"archive: {path}")
    else:
        from server.alerts.worker import AlertWorker  # noqa: PLC0415  # httpx, smtplib

        done = AlertWorker(config.alerts, repo, config.web.zone()).run_once(utc_now())
        print(f"opened {done.opened}, closed {done.closed}, sent {done.sent}, failed {done.failed}")
    return 0


def import_file(config: ServerConfig, path: Path) -> int:
    repo = Repository.open_migrated(config)
    ingestor = Ingestor(config, repo, Metrics())
    counts: Counter[str] = Counter()
    try:
        lines = [line for _, line in report_lines(path.read_bytes())]
        size = config.ingest.batch_size
        for start in range(0, len(lines), size):
            batch = [Incoming(topic_for(t), t, utc_now()) for t in lines[start : start + size]]
            for item in ingestor.process(batch):
                counts[getattr(getattr(item, "error", None), "reason", "accepted")] += 1
    finally:
        ingestor.close()
        repo.close()
    print(f"accepted: {counts.pop('accepted', 0)}")
    for reason, n in sorted(counts.items()):
        print(f"rejected {reason}: {n}")
    return 0 if set(counts) <= {"duplicate"} else 1


def verify_report(config: ServerConfig, pubkey: Path, report: Path) -> int:
    try:
        key = import_public_jwk(pubkey.read_bytes())
        data = report.read_bytes()
    except (OSError, MalformedMessage) as exc:
        print(f"camwarden-server: {exc}", file=sys.stderr)
        return 2
    try:
        summary = verify_file(data, key, config.ingest.max_message_bytes)
    except InvalidReport as exc:
        print(f"invalid: {report}:{exc.line}: {exc.error.reason}: {exc.error.detail}")
        return 1
    print(summary.text())
    return 0


def advisories_command(config: ServerConfig, action: str, file: Path | None) -> int:
    keys_file = config.advisories.feed_keys_file
    try:
        keys = advisories.pinned_keys(Path(keys_file)) if keys_file else None
        if action == "publish":
            if file is None:
                print("camwarden-server: advisories publish needs a feed file", file=sys.stderr)
                return 2
            info = advisories.publish(config.state_dir, file.read_bytes(), keys)
        else:
            served = advisories.feed_path(config.state_dir)
            if not served.exists():
                print("no advisory feed published: agents use the feed their package ships")
                return 1
            info = advisories.inspect_feed(served.read_bytes(), keys)
    except OSError as exc:
        print(f"camwarden-server: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except advisories.FeedRefused as exc:
        print(f"camwarden-server: feed refused: {exc}", file=sys.stderr)
        return 1
    checked = "signature checked" if info.signature_checked else "signature NOT checked"
    print(
        f"advisory feed {info.version} ({checked}, key {info.kid}), issued"
        f" {info.issued_at.isoformat()}, expires {info.expires_at.isoformat()}"
        + (", published" if action == "publish" else "")
    )
    return 0


def agents_command(repo: Repository, action: str, agent_id: str | None) -> int:
    if action == "list":
        for a in repo.agents():
            seen = a.last_seen.isoformat(timespec="seconds") if a.last_seen else "never"
            print(f"{a.agent_id}\t{a.site}\t{a.status}\t{a.kid}\tlast seen {seen}")
        return 0
    if agent_id is None:
        print(f"camwarden-server: agents {action} needs an agent id", file=sys.stderr)
        return 2
    target = {"approve": "approved", "revoke": "revoked"}[action]
    if not repo.set_status(agent_id, target, datetime.now(UTC)):
        current = repo.agent(agent_id)
        state = f"is {current.status}" if current else "is not enrolled"
        print(f"camwarden-server: agent {agent_id} {state}; cannot {action}", file=sys.stderr)
        return 1
    print(f"agent {agent_id} {target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    offline = firmware_cli.offline(args)  # firmware keygen/sign: no config, no database
    if offline is not None:
        return offline
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        handlers=[log_handler("camwarden-server", os.environ, sys.stderr)],
    )
    quiet_libraries(args.verbose)
    if args.command == "setup":  # before the config: setup writes it
        return setup.setup(args)
    try:
        config = load_config(args.config, parse_overrides(args.set))
    except (ConfigError, ValueError) as exc:
        print(f"camwarden-server: {exc}", file=sys.stderr)
        return 2
    return configured(args, config)


def configured(args: argparse.Namespace, config: ServerConfig) -> int:
    if args.command == "check-config":
        print(dumps(config), end="")
        return 0
    if args.command == "advisories":  # files only: no database
        return advisories_command(config, args.action, getattr(args, "file", None))
    return dispatch(args, config)


def dispatch(args: argparse.Namespace, config: ServerConfig) -> int:  # noqa: PLR0911  # per command
    try:
        if args.command == "run":
            from server.collector import run  # noqa: PLC0415  # the web stack: only to serve

            return run(config)
        if args.command == "migrate":
            load_or_create(config.state_dir)
    except CommandKeyError as exc:
        print(f"camwarden-server: {exc}", file=sys.stderr)
        return 1
    if args.command == "verify-report":
        return verify_report(config, args.pubkey, args.report)
    if args.command == "import":
        return import_file(config, args.file)
    repo = Repository.open_migrated(config)  # migrate is done by opening
    try:
        if args.command in firmware_cli.FIRMWARE_COMMANDS:
            return firmware_cli.run_command(args, repo, config)
        if args.command == survey_cli.SURVEY_COMMAND:
            return survey_cli.run_command(args, repo)
        return repo_command(args, repo, config)
    finally:
        repo.close()


def repo_command(args: argparse.Namespace, repo: Repository, config: ServerConfig) -> int:
    if args.command in WEB_COMMANDS:
        return run_web_command(args, repo)
    if args.command == "report":
        return report_command(args, repo, config.web.zone())
    if args.command == "verify-chain":
        return verify_chain_command(repo, args.agent_id)
    if args.command in ("prune", "alerts-once"):
        return housekeeping_command(args.command, repo, config)
    if args.command == "tokens":
        token = repo.create_token(
            args.site, approved=args.approved, ttl=args.ttl, uses=args.uses, now=utc_now()
        )
        print(token)
    elif args.command == "agents":
        if config.pki.ca_dir:  # approving issues the agent's MQTT certificate
            repo.status_listeners.append(AgentCertificates(Path(config.pki.ca_dir)).on_status)
        repo.status_listeners += broker_roles.listeners(
            config, broker_roles.approved_agents(repo)
        )  # and its broker role
        return agents_command(repo, args.action, getattr(args, "agent_id", None))
    elif args.command == "fleet":
        print(fleet_summary(repo.engine).text(utc_now()))
    return 0


def entrypoint() -> None:
    sys.exit(main())
