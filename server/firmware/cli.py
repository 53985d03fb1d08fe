"""``camwarden-server firmware|rollout|password``: the catalogue, offline signing, campaigns.

Offline signing, step by step (the root and targets private keys never touch the collector)::

    offline$   camwarden-server firmware keygen root-1.key       (and root-2, targets-1 ...)
    collector$ camwarden-server firmware init --root-key root-1.key.pub --root-key root-2.key.pub \\
                   --root-threshold 2 --targets-key targets-1.key.pub
    collector$ camwarden-server firmware export-bundle next.bundle
    offline$   camwarden-server firmware sign --key root-1.key next.bundle   (each key in turn)
    collector$ camwarden-server firmware import-signed next.bundle

``keygen`` and ``sign`` need no configuration or database. Actions are taken as a whole-fleet
administrator through the scoped layer and audited; ``--by`` names the person approving them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from server.config import ServerConfig
from server.dashboard_cli import ORG_HELP, optional_org
from server.firmware import campaign, lifetimes
from server.firmware.tuf_repo import (
    RepositoryError,
    TufRepository,
    describe_bundle,
    generate_key,
    load_public,
    load_signer,
    public_path,
    sign_bundle,
)

if TYPE_CHECKING:
    from protocol.commands import SettingName
    from server.domain.firmware import FirmwareImages
    from server.domain.remediation import Plan, PlanDetail, Remediations
    from server.domain.rollouts import Rollouts
    from server.storage import Repository

FIRMWARE_COMMANDS: Final = ("firmware", "rollout", "password", "remediate")


def window(text: str) -> tuple[str, campaign.Window]:
    """``SITE=HH:MM-HH:MM[@offset minutes]``, local time of the site (default UTC+7)."""
    try:
        return campaign.parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_commands(sub: Any) -> None:
    fw = sub.add_parser("firmware", help="firmware catalogue and its TUF repository")
    fw.add_argument("--by", default="cli", help="who approves the action (audit)")
    f = fw.add_subparsers(dest="action", required=True)
    f.add_parser("keygen", help="new Ed25519 signing key (offline)").add_argument("out", type=Path)
    for name, text in (("init", "set up the repository"), ("rotate-root", "prepare a new root")):
        p = f.add_parser(name, help=f"{text} (signed through the next bundle)")
        p.add_argument("--root-key", type=Path, action="append", required=True, help=".pub file")
        p.add_argument("--root-threshold", type=int, required=True)
        p.add_argument("--targets-key", type=Path, action="append", required=True)
        p.add_argument("--targets-threshold", type=int, default=1)
    up = f.add_parser("upload", help="add a vendor image to the catalogue")
    up.add_argument("file", type=Path)
    up.add_argument("--vendor", required=True)
    up.add_argument("--model", action="append", required=True, help="a model it fits")
    up.add_argument("--version", required=True)
    up.add_argument("--build-date", type=date.fromisoformat)
    up.add_argument("--vendor-sha256", help="the vendor's published SHA-256, checked")
    up.add_argument("--notes", default="", help="release notes")
    f.add_parser("list")
    f.add_parser("retire").add_argument("image", type=int)
    f.add_parser("export-bundle", help="unsigned metadata to sign offline").add_argument(
        "out", type=Path
    )
    sign = f.add_parser("sign", help="sign a bundle with one key (offline)")
    sign.add_argument("--key", type=Path, required=True)
    sign.add_argument("bundle", type=Path)
    f.add_parser("import-signed", help="check and publish a signed bundle").add_argument(
        "bundle", type=Path
    )
    f.add_parser("status", help="versions and expiries of the TUF roles")
    _rollout_commands(sub)


def _rollout_commands(sub: Any) -> None:
    ro = sub.add_parser("rollout", help="firmware rollout campaigns")
    ro.add_argument("--by", default="cli", help="who approves the action (audit)")
    r = ro.add_subparsers(dest="action", required=True)
    create = r.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--image", type=int, required=True)
    create.add_argument("--org", help=f"only this {ORG_HELP}")
    create.add_argument("--site")
    create.add_argument("--model")
    create.add_argument("--firmware", help="only cameras on this firmware now")
    canary = create.add_mutually_exclusive_group(required=True)
    canary.add_argument("--canary", type=int, help="cameras in the canary stage")
    canary.add_argument("--canary-percent", type=float)
    create.add_argument("--batch-size", type=int, default=10)
    create.add_argument("--max-parallel", type=int, default=2, help="per site")
    create.add_argument("--failure-threshold", type=int, default=1)
    create.add_argument("--window", type=window, action="append", default=[])
    create.add_argument("--allow-downgrade", action="store_true")
    r.add_parser("list")
    for action in ("status", "promote", "halt", "resume"):
        r.add_parser(action).add_argument("rollout", type=int)

    _remediate_commands(sub)
    pw = sub.add_parser("password", help="camera password rotation")
    pw.add_argument("--by", default="cli")
    p = pw.add_subparsers(dest="action", required=True)
    rot = p.add_parser("rotate", help="queue a signed password.rotate command")
    rot.add_argument("agent_id")
    rot.add_argument("camera_id")
    rot.add_argument("--username", required=True)
    rot.add_argument("--escrow-key", type=Path, required=True, help="X25519 public JWK file")


def _staging(p: Any) -> None:
    p.add_argument("--canary", type=int, default=1, help="cameras in the canary stage")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--max-parallel", type=int, default=2, help="per site")
    p.add_argument("--failure-threshold", type=int, default=1)
    p.add_argument("--window", type=window, action="append", default=[])


def _remediate_commands(sub: Any) -> None:
    rem = sub.add_parser("remediate", help="fix findings: plan, approve, follow, roll back")
    rem.add_argument("--by", default="cli", help="who takes the action (audit)")
    r = rem.add_subparsers(dest="action", required=True)
    plan = r.add_parser("plan")
    plan.add_argument("--org", help=f"only this {ORG_HELP}")
    plan.add_argument("--site")
    plan.add_argument("--agent")
    plan.add_argument("--camera")
    plan.add_argument("--code", help="only this finding code (svc.telnet_open, ...)")
    plan.add_argument(
        "--control", help="only findings of these controls or families (SVC-02 or SVC,COM)"
    )
    plan.add_argument("--vendor")
    plan.add_argument("--ntp-server", help="the time source that fixes a manual clock")
    plan.add_argument("--audited-within-days", type=int, default=7)
    plan.add_argument("--create", action="store_true", help="store the plan for approval")
    plan.add_argument("--name", default="remediation")
    plan.add_argument("--escrow-key", type=Path, help="X25519 public JWK file (with --create)")
    _staging(plan)
    r.add_parser("list")
    for action in ("status", "approve", "promote", "halt", "resume"):
        r.add_parser(action).add_argument("plan", type=int)
    back = r.add_parser("rollback")
    back.add_argument("plan", type=int)
    back.add_argument("agent_id")
    back.add_argument("camera_id")


def offline(args: argparse.Namespace) -> int | None:
    """``keygen`` and ``sign``: no config, no database. None for every other command."""
    if args.command != "firmware" or args.action not in ("keygen", "sign"):
        return None
    try:
        if args.action == "keygen":
            key = generate_key(args.out)
            print(f"key {key.keyid} written to {args.out} (private) and {public_path(args.out)}")
            return 0
        bundle = args.bundle.read_bytes()
        for line in describe_bundle(bundle):
            print(line)
        signed, roles = sign_bundle(bundle, load_signer(args.key))
    except (OSError, RepositoryError, ValueError) as exc:
        print(f"camwarden-server: {exc}", file=sys.stderr)
        return 1
    if not roles:
        print("camwarden-server: this key signs no role of the bundle", file=sys.stderr)
        return 1
    args.bundle.write_bytes(signed)
    print(f"signed: {', '.join(roles)}")
    return 0


def run_command(args: argparse.Namespace, repo: Repository, config: ServerConfig) -> int:
    # the scoped layer (dashboard queries, password hashing): only when a command runs
    from server.domain.firmware import FirmwareImages  # noqa: PLC0415
    from server.domain.rollouts import Rollouts  # noqa: PLC0415
    from server.domain.scope import Principal, Scope, ScopeError  # noqa: PLC0415

    now = datetime.now(UTC)
    tuf = TufRepository.under(config.state_dir, lifetimes(config.firmware))
    principal = Principal(0, args.by, "admin", None, None, None)
    base = Scope(repo, principal, silent_after=timedelta(minutes=15), now=now)
    s = Rollouts(base, tuf, command_ttl=timedelta(seconds=config.firmware.command_ttl_s))
    try:
        if args.command == "firmware":
            return _firmware(args, FirmwareImages(base, tuf), repo, config)
        if args.command == "rollout":
            return _rollout(args, s)
        if args.command == "remediate":
            from server.domain.remediation import Remediations  # noqa: PLC0415

            return _remediate(args, Remediations(base, command_ttl=s.command_ttl))
        s.rotate_password(
            args.agent_id,
            args.camera_id,
            _json(args.escrow_key),
            args.username,
        )
        print("password rotation queued; the running collector signs and sends it")
    except (ScopeError, RepositoryError, OSError, ValueError) as exc:
        print(f"camwarden-server: {exc}", file=sys.stderr)
        return 1
    return 0


def _json(path: Path) -> dict[str, Any]:
    import json  # noqa: PLC0415  # one use

    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def _firmware(  # noqa: PLR0911  # one branch per subcommand
    args: argparse.Namespace, s: FirmwareImages, repo: Repository, config: ServerConfig
) -> int:
    from server.domain.firmware import catalogue_targets, receive  # noqa: PLC0415

    tuf, now = s.tuf, s.s.now
    if args.action in ("init", "rotate-root"):
        exists = tuf.root_version() > 0
        if exists != (args.action == "rotate-root"):
            state = "is already set up" if exists else "is not set up yet"
            raise RepositoryError(f"the repository {state}")
        version = tuf.prepare_root(
            [load_public(p) for p in args.root_key],
            args.root_threshold,
            [load_public(p) for p in args.targets_key],
            args.targets_threshold,
            now,
        )
        print(f"root v{version} prepared: export a bundle, sign it offline, import it")
        return 0
    if args.action == "upload":
        with open(args.file, "rb") as stream:
            received = receive(tuf, stream, config.firmware.max_image_bytes)
        image = s.upload(
            received,
            filename=args.file.name,
            vendor=args.vendor,
            models=args.model,
            version=args.version,
            build_date=args.build_date,
            vendor_sha256=args.vendor_sha256,
            release_notes=args.notes,
        )
        print(f"image {image.id}: {image.target_path} sha256 {image.sha256} ({image.length} B)")
        print("unpublished until the next signed bundle is imported")
        return 0
    if args.action == "list":
        for i in s.images():
            state = "retired" if i.retired_at else "published" if i.published else "unsigned"
            print(f"{i.id}\t{i.target_path}\t{i.version}\t{','.join(i.models)}\t{state}")
        return 0
    if args.action == "retire":
        s.retire(args.image)
        print(f"image {args.image} retired; export and sign a bundle to drop it from TUF")
        return 0
    if args.action == "export-bundle":
        args.out.write_bytes(tuf.export_bundle(catalogue_targets(repo), now))
        print(f"bundle written to {args.out}; sign it offline with the root/targets keys")
        return 0
    if args.action == "import-signed":
        for line in tuf.import_signed(args.bundle.read_bytes(), now):
            print(f"published {line}")
        return 0
    for role in tuf.status():
        print(
            f"{role.role}\tv{role.version}\texpires {role.expires.isoformat()}\t"
            f"threshold {role.threshold} of {len(role.keyids)}"
        )
    return 0


def _rollout(args: argparse.Namespace, s: Rollouts) -> int:
    from server.domain.rollouts import Selector  # noqa: PLC0415

    if args.action == "create":
        d = s.create_rollout(
            name=args.name,
            image_id=args.image,
            selector=Selector(optional_org(s.s, args.org), args.site, args.model, args.firmware),
            canary_count=args.canary,
            canary_percent=args.canary_percent,
            batch_size=args.batch_size,
            max_parallel_per_site=args.max_parallel,
            failure_threshold=args.failure_threshold,
            windows=dict(args.window),
            allow_downgrade=args.allow_downgrade,
        )
        r = d.rollout
        print(f"rollout {r.id} created: {r.total} cameras in {r.stages} stages (canary first)")
        return 0
    if args.action == "list":
        for r in s.rollouts():
            print(f"{r.id}\t{r.name}\t{r.version}\t{r.phase}\t{r.percent_done}%")
        return 0
    if args.action != "status":
        s.act(args.rollout, args.action)
    d = s.rollout(args.rollout)
    r = d.rollout
    print(f"rollout {r.id} {r.name}: {r.phase}, stage {r.stage} of {r.stages - 1}")
    print(
        f"  {r.succeeded} succeeded, {r.failed} failed, {r.in_flight} in progress, "
        f"{r.pending} waiting of {r.total}; failures {r.failures}/{r.failure_threshold}"
    )
    for e in d.events[-10:]:
        print(f"  {e.at.isoformat(timespec='seconds')}  {e.actor}  {e.action}  {e.detail}")
    return 0


def _remediate(args: argparse.Namespace, s: Remediations) -> int:
    from server.domain.remediation import Options, Selection, Staging  # noqa: PLC0415

    if args.action == "plan":
        selection = Selection(
            optional_org(s.s, args.org), args.site, args.agent, args.camera,
            args.code, args.control, args.vendor,
        )  # fmt: skip
        options = Options(args.ntp_server, timedelta(days=args.audited_within_days))
        if not args.create:
            _print_plan(s.preview(selection, options))
            return 0
        if args.escrow_key is None:
            raise ValueError("--create needs --escrow-key (the organisation's escrow public JWK)")
        staging = Staging(
            args.canary, args.batch_size, args.max_parallel, args.failure_threshold,
            dict(args.window),
        )  # fmt: skip
        d = s.create(
            name=args.name,
            selection=selection,
            options=options,
            escrow_jwk=_json(args.escrow_key),
            staging=staging,
        )
        r = d.rollout.rollout
        print(f"plan {r.id} stored: {r.total} cameras in {r.stages} stages, awaiting approval")
        return 0
    if args.action == "list":
        for r in s.plans():
            print(f"{r.id}\t{r.name}\t{r.phase}\t{r.total} cameras\t{r.percent_done}%")
        return 0
    if args.action == "rollback":
        cid = s.rollback(args.plan, args.agent_id, args.camera_id)
        print(f"restore {cid} queued; the running collector signs and sends it")
        return 0
    if args.action != "status":
        s.act(args.plan, args.action)
    _print_status(s.plan(args.plan))
    return 0


def _changes(changes: Mapping[SettingName, object] | Mapping[str, object]) -> str:
    return ", ".join(
        f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in changes.items()
    )


def _print_plan(plan: Plan) -> None:
    print(f"{len(plan.planned)} camera(s) to change, {len(plan.excluded)} left out")
    for i in plan.items:
        where = f"{i.agent_id}/{i.camera_id} ({i.site}, {i.vendor or '?'} {i.model or ''})"
        if i.reason:
            print(f"  {where}: not done: {i.reason} [{', '.join(i.findings)}]")
        else:
            print(f"  {where}: set {_changes(i.changes)} [closes {', '.join(i.findings)}]")
        for k in i.skipped:
            print(f"      left out: {k.code} {k.setting or ''}: {k.reason}")


def _print_status(d: PlanDetail) -> None:
    r = d.rollout.rollout
    print(f"plan {r.id} {r.name}: {r.phase}, stage {r.stage} of {r.stages - 1}")
    print(
        f"  {r.succeeded} succeeded, {r.failed} failed, {r.in_flight} in progress, "
        f"{r.pending} waiting of {r.total}; failures {r.failures}/{r.failure_threshold}"
    )
    for i in d.items:
        where = f"{i.agent_id}/{i.camera_id}"
        if i.state == "excluded":
            print(f"  {where}: left out: {i.reason}")
            continue
        outcome = i.outcome or "waiting"
        if i.outcome_reason:
            outcome += f" ({i.outcome_reason})"
        results = ", ".join(
            f"{k} {v.get('outcome')}" + (f" (asked {v.get('asked')}, got {v.get('got')})"
            if v.get("outcome") == "clamped" else "")
            for k, v in i.results.items()
        )  # fmt: skip
        back = f"; rollback {i.rollback_status} by {i.rollback_by}" if i.rollback_status else ""
        print(
            f"  {where}: {_changes(i.changes)}: {outcome}{'; ' + results if results else ''}{back}"
        )
    for e in d.rollout.events[-10:]:
        print(f"  {e.at.isoformat(timespec='seconds')}  {e.actor}  {e.action}  {e.detail}")
