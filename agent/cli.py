"""``camwarden-agent``: keygen, pubkey, enroll, certificate, run, report --once, scan --once,
vault, check-config, survey (``agent.survey.oneoff``).

``main(argv) -> int`` never raises for an operator error: it prints one clear line to stderr
and returns 1 (``scan``: 2, so that 1 keeps meaning "high or critical findings"; 2 as well for
an invalid config or an error ``agent.configcheck`` finds in ``check-config``; warnings alone
leave 0). Under systemd the log goes to the journal with
structured fields (``service.systemd``), else to stderr.

``scan --once`` exit codes: 0 every camera audited and no high or critical finding failed;
1 a high or critical finding failed (on any camera, or the agent host); 2 usage, config or vault
error; 3 no high or critical finding, but some camera was not fully audited (partial, login
failed, unreachable, unsupported): its row says so and nothing about it is clean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
from joserfc.jwk import OKPKey

from agent import __version__, setup
from agent.config import DEFAULT_PATH, AgentConfig, load_config
from agent.daemon import setup_logging
from agent.errors import AgentBusy, AgentError
from agent.state import exclusive
from agent.survey.oneoff import EXIT_CODES as SURVEY_EXIT_CODES
from agent.survey.oneoff import add_arguments as add_survey_arguments
from agent.survey.oneoff import survey_command
from agent.trust import certificate
from agent.trust.enrollment import enroll_agent, trust_collector
from agent.trust.identity import keygen, load_key
from protocol.cliparse import document, quiet_libraries
from protocol.configfile import ConfigError, dumps, layer_paths, read_layers
from protocol.keys import public_jwk
from protocol.messages import AuditState, Camera, Finding

log = logging.getLogger(__name__)


DESCRIPTION = """camwarden agent: audits the IP cameras of a site and reports to the collector.

exit codes: 0 success, 1 an error (scan: a high or critical finding), 2 an invalid config
(scan: usage, config or vault error), 3 (scan) some camera not fully audited."""
EXAMPLES = {
    "keygen": "camwarden-agent keygen --key /var/lib/camwarden/agent.key",
    "pubkey": "camwarden-agent pubkey --key /var/lib/camwarden/agent.key",
    "enroll": "camwarden-agent enroll --token TOKEN --wait",
    "certificate": "camwarden-agent certificate",
    "run": "camwarden-agent run --config /etc/camwarden/agent.toml",
    "scan": "camwarden-agent scan --once --camera lobby-door",
    "vault": "camwarden-agent vault list",
    "vault set": "camwarden-agent vault set lobby-door --username admin",
    "vault list": "camwarden-agent vault list",
    "vault delete": "camwarden-agent vault delete lobby-door",
    "vault import-site-key": "camwarden-agent vault import-site-key < site-key.hex",
    "report": "camwarden-agent report --once --out /media/usb/site-report.jws",
    "check-config": "camwarden-agent check-config --config /etc/camwarden/agent.toml",
    "survey": "camwarden-agent survey --prefix 203.0.113.0/24 --rate-cps 50 --out survey.json",
    "setup": (
        "camwarden-agent setup --agent-id pi-lobby-01 --site hq --collector-url"
        " https://collector.tinh-x.vn:8443 --broker collector.tinh-x.vn:8883"
        " --camera-subnet 192.168.10.0/24 --discover --token-file token"
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camwarden-agent",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log everything, libraries included"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"config file (default {DEFAULT_PATH}, plus agent.d/*.toml beside it)",
        )

    p = sub.add_parser("keygen", help="create the agent's Ed25519 private key")
    p.add_argument("--key", type=Path, required=True, help="where to write the key (mode 0600)")
    p = sub.add_parser("pubkey", help="print the public JWK of a private key")
    p.add_argument("--key", type=Path, required=True, help="the private key file")
    p = sub.add_parser("enroll", help="register the agent's public key with the collector")
    p.add_argument("--server", help="collector base URL (default: collector_url of the config)")
    p.add_argument("--token", required=True, help="one-time enrollment token")
    p.add_argument(
        "--wait", action="store_true", help="then wait for approval and the MQTT certificate"
    )
    p.add_argument("--poll-s", type=float, default=10.0, help="with --wait: seconds between asks")
    p.add_argument("--wait-s", type=float, default=3600.0, help="with --wait: give up after")
    with_config(p)
    p = sub.add_parser("certificate", help="fetch the MQTT certificate (after approval, renewal)")
    p.add_argument("--server", help="collector base URL (default: collector_url of the config)")
    with_config(p)
    p = sub.add_parser("run", help="run the agent loop (hello, heartbeats, reports)")
    with_config(p)
    p = sub.add_parser(
        "scan",
        help="audit the cameras now and print the findings",
        description="Audit the cameras now and print the findings.",
        epilog=SCAN_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--once", action="store_true", required=True, help="one audit, then exit")
    p.add_argument("--camera", action="append", metavar="ID", help="only this camera (repeatable)")
    p.add_argument("--json", action="store_true", help="JSON: cameras and host findings")
    with_config(p)
    add_survey_arguments(
        sub.add_parser(
            "survey",
            help="providers: survey prefixes for exposed cameras, without any credential",
            description="Survey the given prefixes for cameras and what they expose to anyone "
            "(no credential is ever sent; nothing outside the prefixes is touched).",
            epilog=SURVEY_EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    p = sub.add_parser("vault", help="camera credentials in the encrypted vault")
    vault = p.add_subparsers(dest="vault_command", required=True)
    v = vault.add_parser("set", help="store a credential (password from the terminal or stdin)")
    v.add_argument("ref", help="the name cameras use in credentials_ref")
    v.add_argument("--username", help="default: the entry's current username, else admin")
    with_config(v)
    v = vault.add_parser("list", help="references and usernames (never passwords)")
    with_config(v)
    v = vault.add_parser("delete", help="remove a credential")
    v.add_argument("ref", help="the name cameras use in credentials_ref")
    with_config(v)
    v = vault.add_parser(
        "import-site-key",
        help="the organisation's password fingerprint key (one for all its agents), hex, on stdin",
    )
    with_config(v)
    p = sub.add_parser("report", help="air-gapped sites: write pending messages to a file")
    p.add_argument("--once", action="store_true", required=True, help="one report, then exit")
    p.add_argument("--out", type=Path, required=True, help="file of JWS lines, seq order")
    with_config(p)
    p = sub.add_parser(
        "check-config",
        help="print the effective config (secrets redacted) and every problem; 2 on an error",
    )
    p.add_argument("--offline", action="store_true", help="do not try to connect to the collector")
    with_config(p)
    setup.add_arguments(
        sub.add_parser(
            "setup",
            help="set up this agent: config, keys, cameras, vault, enrollment, service",
        )
    )
    return document(parser, EXAMPLES)


def check_config(path: Path | None, *, offline: bool = False) -> int:
    """The effective config on stdout, then each problem on stderr; 2 if any is an error (or
    the config does not load), 0 with warnings only."""
    from agent.configcheck import COLLECTOR_TIMEOUT_S, problems  # noqa: PLC0415  # only here

    try:
        config = load_config(path)
        _merged, origins = read_layers(layer_paths(path or DEFAULT_PATH))
    except ConfigError as exc:
        print(f"camwarden-agent: invalid config: {_unset(path, exc)}", file=sys.stderr)
        return 2
    print(dumps(config), end="")
    found = problems(config, origins, collector_timeout_s=None if offline else COLLECTOR_TIMEOUT_S)
    for problem in found:
        print(f"camwarden-agent: {problem}", file=sys.stderr)
    return 2 if any(problem.level == "error" for problem in found) else 0


def _unset(path: Path | None, error: ConfigError) -> str:
    """What to do when the required keys are not set (the packaged template), else ``error``."""
    main = path or DEFAULT_PATH
    try:
        merged, _origins = read_layers(layer_paths(main))
    except ConfigError:
        return str(error)
    missing = [key for key in ("agent_id", "site") if key not in merged]
    if not missing:
        return str(error)
    return (
        f"{main}: {' and '.join(missing)} not set: run `camwarden-agent setup` (it asks for"
        " each value), or set them in the file (its comments show how)"
    )


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "keygen":
        key = keygen(args.key)
        print(f"wrote {args.key} (kid {key.thumbprint()})")
        return 0
    if args.command == "pubkey":
        print(json.dumps(public_jwk(load_key(args.key)), sort_keys=True))
        return 0
    if args.command in ("check-config", "setup", "survey"):  # each loads a config, or none
        return _without_loaded_config(args)
    config: AgentConfig = load_config(args.config)
    trust_collector(config)
    if args.command == "scan":
        return _scan(config, cameras=args.camera, as_json=args.json)
    if args.command == "vault":
        return _vault(config, args)
    return _signed(args, config)


def _without_loaded_config(args: argparse.Namespace) -> int:
    if args.command == "setup":  # writes the config it then loads
        return setup.setup(args)
    if args.command == "survey":  # a config only when given
        return survey_command(args)
    return check_config(args.config, offline=args.offline)


def _signed(args: argparse.Namespace, config: AgentConfig) -> int:
    """The commands that need the agent's key: enroll, run, report."""
    key = load_key(config.key_path)
    if args.command in ("enroll", "certificate"):
        return enroll_command(args, config, key)
    if args.command == "run":
        from agent.runner import Agent  # noqa: PLC0415  # keeps keygen/pubkey light
        from agent.trust.vault import open_vault  # noqa: PLC0415  # cryptography

        vault = open_vault(config.state_path, config.vault_key_path)
        agent = Agent(config, key, credentials=vault, reload=lambda: load_config(args.config))
        return asyncio.run(agent.run())
    from agent.runner import report_once  # noqa: PLC0415

    return report_once(config, key, args.out)


SEVERITIES = ("critical", "high", "medium", "low")
BLOCKING = frozenset({"critical", "high"})  # scan exits 1 when a failed finding has one
SCAN_EXIT_CODES = """exit codes:
  0  every camera audited, no high or critical finding failed
  1  a high or critical finding failed (whatever else happened)
  2  usage, config or vault error: nothing was audited
  3  no high or critical finding, but some camera was not fully audited
     (PARTIAL, LOGIN FAILED, UNREACHABLE, UNSUPPORTED): nothing about it is clean"""
# the AUDIT column of the scan table (protocol AuditState)
AUDIT_WORDS: dict[AuditState, str] = {
    "audited": "audited",
    "partial": "PARTIAL",
    "login_failed": "LOGIN FAILED",
    "unreachable": "UNREACHABLE",
    "unsupported": "UNSUPPORTED",
    "not_audited": "NOT AUDITED",
}


def _scan(config: AgentConfig, *, cameras: list[str] | None, as_json: bool) -> int:
    from agent.audit.auditor import Auditor, vault_secrets  # noqa: PLC0415  # heavy: only for scans

    unknown = sorted(set(cameras or ()) - {c.id for c in config.cameras})
    if unknown:
        raise AgentError(f"no camera {', '.join(unknown)} in the config")
    credentials, site_key = vault_secrets(config)
    bar = sys.stderr.isatty()  # progress on the terminal only, never into a pipe or file
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive(config.state_path))
            running = False
        except AgentBusy:
            running = True
            log.info("the agent is running: no default-credential guessing, inventory not saved")
        auditor = Auditor(
            config,
            credentials=credentials,
            site_key=site_key,
            guessing=False if running else None,
            persist_inventory=not running,
        )
        result = asyncio.run(auditor.run(cameras, progress=_progress_bar if bar else None))
    if bar:
        print("\r\033[K", end="", flush=True, file=sys.stderr)
    if as_json:
        document = {
            "cameras": result.cameras,
            "host_findings": result.host_findings,
            "started_at": result.started_at,
            "duration_s": round(result.duration_s, 3),
        }
        print(msgspec.json.format(msgspec.json.encode(document)).decode())
    else:
        print(_table(result.cameras, result.host_findings))
    return scan_exit_code(result.cameras, result.host_findings)


def scan_exit_code(cameras: Sequence[Camera], host: Sequence[Finding]) -> int:
    """1 for a failed high or critical finding (it is never hidden behind 3), else 3 when a
    camera was not fully audited, else 0 (``SCAN_EXIT_CODES``)."""
    failed = [f for c in cameras for f in c.findings] + list(host)
    if any(f.status == "fail" and f.severity in BLOCKING for f in failed):
        return 1
    return 3 if any(c.audit != "audited" for c in cameras) else 0


def _progress_bar(camera: Camera, done: int, total: int) -> None:
    """``[#####.....] 3/10 cameras  lobby-door`` on stderr, rewritten in place."""
    width = 30
    filled = width * done // max(total, 1)
    bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} cameras  {camera.camera_id}"
    print(f"\r\033[K{bar[:100]}", end="", flush=True, file=sys.stderr)


def _failed_controls(findings: Sequence[Finding]) -> str:
    by_severity: dict[str, set[str]] = {}
    for finding in findings:
        if finding.status == "fail":
            by_severity.setdefault(finding.severity, set()).update(finding.controls)
    parts = [
        f"{severity}: {','.join(sorted(by_severity[severity]))}"
        for severity in SEVERITIES
        if severity in by_severity
    ]
    return "; ".join(parts) or "none"


def _table(cameras: Sequence[Camera], host: Sequence[Finding]) -> str:
    """One row per camera; a camera not fully audited says so in AUDIT and, after its failed
    controls, why (its failed controls are what was found, never a clean bill)."""
    rows = [("CAMERA", "ADDRESS", "VENDOR / MODEL / FIRMWARE", "AUDIT", "FAILED CONTROLS")]
    for camera in cameras:
        who = camera.identity
        device = " / ".join(v or "?" for v in (who.vendor, who.model, who.firmware))
        if not camera.reachable:
            device = "(not answering)"
        failed = _failed_controls(camera.findings)
        if camera.audit != "audited":
            failed += f" ({camera.audit_reason or 'no reason given'})"
        word = AUDIT_WORDS[camera.audit]
        rows.append((camera.camera_id, camera.address, device, word, failed))
    rows.append(("(agent host)", "", "", "", _failed_controls(host)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(row[i].ljust(widths[i]) for i in range(4)) + "  " + row[4] for row in rows]
    return "\n".join(lines)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise AgentError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _vault(config: AgentConfig, args: argparse.Namespace) -> int:
    from agent.trust.vault import Vault, load_vault_key  # noqa: PLC0415  # cryptography

    vault = Vault(config.state_path, load_vault_key(config.vault_key_path))
    if args.vault_command == "list":
        for ref, username, set_at in vault.listing():
            print(f"{ref}\t{username}\t{set_at}")
        return 0
    if args.vault_command == "delete":
        if not vault.delete(args.ref):
            raise AgentError(f"no vault entry {args.ref!r}")
        print(f"deleted {args.ref}")
        return 0
    if args.vault_command == "import-site-key":
        text = sys.stdin.readline().strip()
        try:
            vault.set_site_key(bytes.fromhex(text))
        except ValueError as exc:
            raise AgentError("a site key is at least 32 bytes, given as hex on stdin") from exc
        print("site key imported")
        return 0
    current = {ref: user for ref, user, _at in vault.listing()} if vault.exists() else {}
    username = args.username or current.get(args.ref, "admin")
    password = _read_password()
    if not password:
        raise AgentError("empty password: nothing stored")
    vault.set(args.ref, username, password)
    print(f"stored {args.ref} (user {username})")
    return 0


def enroll_command(args: argparse.Namespace, config: AgentConfig, key: OKPKey) -> int:
    """``enroll`` (with the MQTT TLS public key when ``[mqtt] tls``) and ``certificate``."""
    server = args.server or config.collector_url
    if not server:
        raise AgentError("no collector URL: pass --server or set collector_url")
    files = config.mqtt_tls
    if args.command == "certificate":
        if files is None:
            raise AgentError("[mqtt] tls is off: no certificate to fetch")
        found = certificate.fetch(server, config.agent_id, key)
        if found is None:
            raise AgentError(f"no certificate for {config.agent_id} yet: is it approved?")
        certificate.store(files, *found)
        print(f"stored {files.cert}")
        return 0
    enroll_agent(config, key, server, args.token, poll_s=args.poll_s,
                 wait_s=args.wait_s if args.wait else 0.0, say=print)  # fmt: skip
    if files is not None and not files.cert.exists():
        print("MQTT certificate: not yet (enroll --wait)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging("DEBUG" if args.verbose else args.log_level)
    quiet_libraries(args.verbose)
    try:
        return _dispatch(args)
    except (AgentError, ConfigError) as exc:
        print(f"camwarden-agent: error: {exc}", file=sys.stderr)
        return 2 if args.command in ("scan", "survey") else 1


def entrypoint() -> None:
    sys.exit(main())
