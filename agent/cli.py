"""``camwarden-agent``: keygen, pubkey, enroll, run, report --once, check-config.

``main(argv) -> int`` never raises for an operator error: it prints one clear line to stderr
and returns 1 (2 for an invalid config in ``check-config``). Under systemd the log goes to the
journal with structured fields (``agent.daemon``), else to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from joserfc.jwk import OKPKey

from agent import __version__, certificate
from agent.config import DEFAULT_PATH, AgentConfig, load_config
from agent.daemon import log_handler
from agent.errors import AgentError
from agent.identity import enroll, keygen, load_key
from protocol.configfile import ConfigError, dumps
from protocol.keys import public_jwk

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camwarden-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
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
    p.add_argument("--key", type=Path, required=True)
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
    p = sub.add_parser("report", help="air-gapped sites: write pending messages to a file")
    p.add_argument("--once", action="store_true", required=True, help="one report, then exit")
    p.add_argument("--out", type=Path, required=True, help="file of JWS lines, seq order")
    with_config(p)
    p = sub.add_parser(
        "check-config", help="print the effective config, secrets redacted; exit 2 if invalid"
    )
    with_config(p)
    return parser


def check_config(path: Path | None) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"camwarden-agent: invalid config: {exc}", file=sys.stderr)
        return 2
    print(dumps(config), end="")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "keygen":
        key = keygen(args.key)
        print(f"wrote {args.key} (kid {key.thumbprint()})")
        return 0
    if args.command == "pubkey":
        print(json.dumps(public_jwk(load_key(args.key)), sort_keys=True))
        return 0
    if args.command == "check-config":
        return check_config(args.config)
    config: AgentConfig = load_config(args.config)
    key = load_key(config.key_path)
    if args.command in ("enroll", "certificate"):
        return enroll_command(args, config, key)
    if args.command == "run":
        from agent.runner import Agent  # noqa: PLC0415  # keeps keygen/pubkey light

        return asyncio.run(Agent(config, key, reload=lambda: load_config(args.config)).run())
    from agent.runner import report_once  # noqa: PLC0415

    return report_once(config, key, args.out)


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
    answer = enroll(
        server,
        args.token,
        agent_id=config.agent_id,
        site=config.site,
        key=key,
        hostname=socket.gethostname(),
        state_dir=config.state_path,
        mqtt_public_key=certificate.tls_key(files.key) if files else None,
    )
    print(f"enrolled {config.agent_id} at site {config.site}: {answer['status']}")
    if files is not None and answer.get("mqtt_certificate"):
        certificate.store(files, answer["mqtt_certificate"], answer["mqtt_ca"])
    elif files is not None and args.wait:
        print("waiting for approval and the MQTT certificate")
        certificate.wait(server, config, key, files, poll_s=args.poll_s, limit_s=args.wait_s)
    if files is not None:
        done = files.cert.exists()
        print(f"MQTT certificate: {files.cert if done else 'not yet (enroll --wait)'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, handlers=[log_handler("camwarden-agent", os.environ, sys.stderr)]
    )
    try:
        return _dispatch(args)
    except (AgentError, ConfigError) as exc:
        print(f"camwarden-agent: error: {exc}", file=sys.stderr)
        return 1


def entrypoint() -> None:
    sys.exit(main())
