"""``camwarden-agent setup``: a site's agent, from a fresh package install to its first report.

Steps, each skipped when already done and not asked for again (a second run changes only
what its flags or answers name):

1. ``agent.toml``: agent id, site, collector URL, broker (mutual TLS), camera subnets and
   cameras, written commented; keys it does not manage are kept as they are;
2. the agent key (``keygen``) and the vault key (32 random bytes, mode 0640, root and the
   service's group), never replaced unless ``--new-key`` asks for a new agent key;
3. cameras found on the camera subnets (the agent's own TCP sweep, inside ``camera_subnets``
   only), offered one by one, their credential stored in the vault;
4. enrollment with the token (from a file or a prompt, never the command line), the wait for
   approval (bounded, with progress), the broker certificate;
5. the state handed to the service account and the service enabled where systemd runs.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import secrets
import socket
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from agent.config import DEFAULT_PATH, AgentConfig, load_config
from agent.configcheck import service_uid
from agent.errors import AgentError
from agent.inventory.discover import Host, Scope, sweep
from agent.trust.enrollment import enroll_agent, trust_collector
from agent.trust.identity import ENROLLMENT_FILE, keygen, load_key
from protocol.configfile import ConfigError, Entry, render
from service import install

__all__ = ["add_arguments", "setup"]

USER = "camwarden"  # packaging/sysusers.d/camwarden-agent.conf
UNIT = "camwarden-agent.service"
VAULT_KEY = "/etc/camwarden/vault.key"
SWEEP_TIMEOUT_S = 1.0
MAX_WAIT_S = 24 * 3600.0
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
HEADER = """camwarden agent: written by `camwarden-agent setup` (run it again to change a value; it
keeps the keys it does not manage). Every key is explained in
/usr/share/doc/camwarden-agent/examples/agent.toml. Check with: camwarden-agent check-config"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=DEFAULT_PATH, help="the config file to write")
    p.add_argument("--yes", action="store_true", help="ask nothing: flags and defaults only")
    p.add_argument("--agent-id", help="this agent's name (letters, digits, _.-)")
    p.add_argument("--site", help="the site's name, as the collector's organisation tree has it")
    p.add_argument("--collector-url", help="the collector, e.g. https://collector.tinh-x.vn:8443")
    p.add_argument(
        "--collector-ca",
        type=Path,
        help="the CA of the collector's HTTPS certificate (its pki/ca.crt), when generated",
    )
    p.add_argument("--broker", help="the broker as HOST:PORT (mutual TLS; default port 8883)")
    p.add_argument("--camera-subnet", action="append", help="a camera subnet, CIDR (repeatable)")
    p.add_argument("--port-offset", type=int, help="added to every camera port (a test lab)")
    p.add_argument(
        "--discover", action="store_true", help="sweep the camera subnets and add what answers"
    )
    p.add_argument(
        "--camera", action="append", metavar="ID=ADDRESS", help="add a camera (repeatable)"
    )
    p.add_argument("--camera-username", help="the cameras' account for audits (default admin)")
    p.add_argument(
        "--camera-password-file", type=Path, help="a file holding that account's password"
    )
    p.add_argument("--token-file", type=Path, help="a file holding the enrollment token")
    p.add_argument("--wait-s", type=float, default=900.0, help="wait this long for approval")
    p.add_argument("--poll-s", type=float, default=5.0, help="seconds between asks")
    p.add_argument("--key-file", help="the agent key (default /var/lib/camwarden/agent.key)")
    p.add_argument("--state-dir", help="the agent's state (default /var/lib/camwarden)")
    p.add_argument("--vault-key-file", help=f"the vault key (default {VAULT_KEY})")
    p.add_argument(
        "--new-key", action="store_true", help="replace the agent key (then enroll again)"
    )
    p.add_argument("--no-enable", action="store_true", help="do not enable or start the service")


def _name(text: str) -> str | None:
    ok = 0 < len(text) <= 64 and text[0].isalnum() and set(text) <= NAME_CHARS
    return None if ok else "letters, digits and '_.-', starting with a letter or digit, at most 64"


def _url(text: str) -> str | None:
    return None if text.startswith(("https://", "http://")) else "an http(s):// URL"


def _broker(text: str) -> str | None:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "8883")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return "HOST:PORT, e.g. 192.0.2.5:8883"
    return None


def _subnets(text: str) -> str | None:
    for part in [p.strip() for p in text.split(",") if p.strip()] or [""]:
        try:
            net = ipaddress.IPv4Network(part)
        except ValueError:
            return f"{part!r} is not an IPv4 network such as 192.168.1.0/24"
        if net.num_addresses > 4096:
            return f"{part} has more than 4096 addresses: give the cameras' own subnet"
    return None


class AgentSetup:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.ask = install.Asker(args.yes, out=out)
        self.path: Path = args.config
        self.current: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.current = tomllib.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise install.SetupError(
                    f"{self.path}: cannot read it ({exc}): fix or remove it"
                ) from exc

    def say(self, text: str) -> None:
        self.out.write(f"{text}\n")
        self.out.flush()

    def config_values(self) -> dict[str, Any]:
        """The current file with the asked-for values set (flags, answers, defaults)."""
        a, ask = self.args, self.ask
        data = dict(self.current)
        cur = self.current
        data["agent_id"] = ask.value(
            "agent id", "--agent-id", a.agent_id, cur.get("agent_id") or socket.gethostname(),
            _name,
        )  # fmt: skip
        data["site"] = ask.value("site", "--site", a.site, cur.get("site"), _name)
        data["collector_url"] = ask.value(
            "collector URL", "--collector-url", a.collector_url, cur.get("collector_url"), _url
        )
        for key, flag, default in (("key_file", a.key_file, "/var/lib/camwarden/agent.key"),
                                   ("state_dir", a.state_dir, "/var/lib/camwarden"),
                                   ("vault_key_file", a.vault_key_file, VAULT_KEY)):  # fmt: skip
            data[key] = flag or cur.get(key) or default
        if a.collector_ca is not None:
            data["collector_ca_file"] = str(self.path.parent / "collector-ca.crt")
        mqtt = dict(cur.get("mqtt", {}))
        now = f"{mqtt['host']}:{mqtt.get('port', 8883)}" if "host" in mqtt else None
        broker = ask.value("broker HOST:PORT", "--broker", a.broker, now, _broker)
        host, _, port = broker.rpartition(":") if ":" in broker else (broker, "", "8883")
        mqtt.update({"host": host, "port": int(port), "tls": True})
        data["mqtt"] = mqtt
        network = dict(cur.get("network", {}))
        subnets = ask.value(
            "camera subnets (CIDR, comma-separated)",
            "--camera-subnet",
            ",".join(a.camera_subnet) if a.camera_subnet else None,
            ",".join(network.get("camera_subnets", ())) or None,
            _subnets,
        )
        network["camera_subnets"] = [p.strip() for p in subnets.split(",") if p.strip()]
        if a.port_offset is not None:
            network["port_offset"] = a.port_offset
        data["network"] = network
        return data


def _render(data: dict[str, Any]) -> str:
    """``agent.toml``: the managed keys commented, then whatever else the file had."""
    notes = {
        "agent_id": "This agent's name: its MQTT client id and a level of its topics.",
        "site": "The site it watches, as the collector's organisation tree names it.",
        "collector_url": "The collector: enrollment, certificates, advisories, firmware.",
        "key_file": "The agent's Ed25519 key (mode 0600); it never leaves this host.",
        "state_dir": "Outbox, report chain, enrollment, vault.",
        "vault_key_file": "The vault key (0640 root:camwarden), also loaded by the unit.",
        "host": "The broker: mutual TLS with the certificate enrollment fetched.",
        "camera_subnets": "The ONLY addresses an audit sends a packet to (baseline §5).",
        "id": "",
    }
    top = [
        Entry(k, v, notes.get(k, ""))
        for k, v in data.items()
        if not isinstance(v, dict) and not (isinstance(v, list) and _tables(v))
    ]
    tables: list[tuple[str, list[Entry]]] = [("", top)]
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(_table(f"[{key}]", value, notes))
        elif isinstance(value, list) and _tables(value):
            tables.extend(_table(f"[[{key}]]", item, notes) for item in value)
    return render(HEADER, tables)


def _tables(value: list[Any]) -> bool:
    """An array of tables (``[[cameras]]``), not an array of values."""
    return bool(value) and all(isinstance(item, dict) for item in value)


def _table(title: str, values: dict[str, Any], notes: dict[str, str]) -> tuple[str, list[Entry]]:
    """One table; its own sub-tables (``assumed_lockout``) are written inline."""
    return title, [Entry(k, v, notes.get(k, "")) for k, v in values.items()]


def _keys(run: AgentSetup, config: AgentConfig) -> None:
    key_path = config.key_path
    if run.args.new_key and key_path.exists():
        key_path.unlink()
        (config.state_path / ENROLLMENT_FILE).unlink(missing_ok=True)
        if config.mqtt_tls is not None:  # issued to the old key's enrollment
            config.mqtt_tls.cert.unlink(missing_ok=True)
        run.say(f"agent key: {key_path} removed (--new-key): enrolling again")
    if key_path.exists():
        load_key(key_path, service_uid(config.state_path))  # refuses a key others can read
        run.say(f"agent key: {key_path} kept")
    else:
        config.state_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = keygen(key_path)
        install.hand_over(config.state_path, USER)  # the service's key, as the unit reads it
        run.say(f"agent key: {key_path} created (kid {key.thumbprint()})")
    vault_key = config.vault_key_path
    if vault_key is None:  # config_values() always sets it; a hand-edited file may not
        raise install.SetupError("vault_key_file is not set in the configuration")
    if vault_key.exists():
        run.say(f"vault key: {vault_key} kept")
    else:
        install.write_file(
            vault_key, secrets.token_bytes(32), 0o640 if os.geteuid() == 0 else 0o600, USER
        )
        run.say(f"vault key: {vault_key} created")


def _discover(run: AgentSetup, config: AgentConfig) -> list[Host]:
    scope = Scope(config.network.subnets, config.network.port_offset)
    found: list[Host] = []
    for network in config.network.subnets:
        run.say(f"looking for cameras on {network} ...")
        found += asyncio.run(sweep(network, scope, timeout_s=SWEEP_TIMEOUT_S))
    return found


def _cameras(run: AgentSetup, config: AgentConfig, data: dict[str, Any]) -> list[str]:
    """Cameras added to ``data`` (from ``--camera`` and, if asked, discovery): their ids."""
    cameras: list[dict[str, Any]] = list(data.get("cameras", []))
    known = {c.get("address") for c in cameras} | {c.get("id") for c in cameras}
    wanted: list[tuple[str, str]] = []
    for item in run.args.camera or []:
        ident, sep, address = item.partition("=")
        if not sep or _name(ident) or not address:
            raise install.SetupError(
                f"--camera {item!r}: give ID=ADDRESS, e.g. lobby-door=192.0.2.10"
            )
        wanted.append((ident, address))
    discover = run.args.discover or (
        not run.args.yes and run.ask.confirm("look for cameras on the camera subnets?")
    )
    if discover:
        hosts = _discover(run, config)
        run.say(f"found {len(hosts)} host(s) answering on camera ports")
        for host in hosts:
            ident = "cam-" + host.address.replace(".", "-")
            ports = ", ".join(map(str, host.open_ports))
            if host.address in known:
                run.say(f"  {host.address} (ports {ports}): already configured")
            elif run.ask.confirm(f"  add {host.address} (ports {ports}) as {ident}?"):
                wanted.append((ident, host.address))
    added = []
    for ident, address in wanted:
        if ident in known or address in known:
            continue
        if not Scope(config.network.subnets).contains(address):
            raise install.SetupError(f"camera {ident} ({address}) is outside the camera subnets")
        cameras.append({"id": ident, "address": address, "credentials_ref": ident})
        known |= {ident, address}
        added.append(ident)
    data["cameras"] = cameras
    return added


def _credentials(run: AgentSetup, config: AgentConfig, added: Sequence[str]) -> None:
    if not added:
        return
    from agent.trust.vault import Vault, load_vault_key  # noqa: PLC0415  # cryptography

    a = run.args
    username = run.ask.value("the cameras' user name", "--camera-username",
                             a.camera_username, "admin")  # fmt: skip
    if a.camera_password_file is not None:
        password = install.read_secret_file(a.camera_password_file, "--camera-password-file")
    else:
        question = f"password of {username} on the cameras"
        password = run.ask.secret(question, "--camera-password-file")
    vault = Vault(config.state_path, load_vault_key(config.vault_key_path, {}))
    for ref in added:
        vault.set(ref, username, password)
    run.say(f"vault: credential of {username} stored for {', '.join(added)}")


def _progress(run: AgentSetup) -> Callable[[float], None]:
    def show(waited: float) -> None:
        run.say(f"  waiting for approval: {waited:.0f} s (approve it in the dashboard, or:"
                " camwarden-server agents approve AGENT_ID)")  # fmt: skip

    return show


def _enroll(run: AgentSetup, config: AgentConfig) -> None:
    files = config.mqtt_tls
    token = None
    enrollment = config.state_path / ENROLLMENT_FILE
    if enrollment.exists():
        run.say("enrollment: done before, kept")
        if files is None or files.cert.exists():
            return
    elif run.args.token_file is not None:
        token = install.read_secret_file(run.args.token_file, "--token-file")
    else:
        token = run.ask.secret("enrollment token", "--token-file")
    key = load_key(config.key_path, service_uid(config.state_path))
    server = config.collector_url
    if server is None:  # config_values() always sets it; a hand-edited file may not
        raise install.SetupError("collector_url is not set in the configuration")
    wait_s = min(max(run.args.wait_s, 0.0), MAX_WAIT_S)
    enroll_agent(config, key, server, token, poll_s=run.args.poll_s, wait_s=wait_s,
                 progress=_progress(run), say=run.say)  # fmt: skip
    if files is not None and not files.cert.exists():
        raise install.SetupError(
            "no broker certificate yet: once the agent is approved, run camwarden-agent setup"
            " again (it fetches the certificate, then enables the service)"
        )


def _same_identity(data: dict[str, Any], new_key: bool) -> None:
    """Refuse, before any file changes, to rename an enrolled agent or move it to another site:
    the collector knows it by both (``--new-key`` enrolls again under the new ones)."""
    enrollment = Path(data["state_dir"]) / ENROLLMENT_FILE
    if new_key or not enrollment.exists():
        return
    try:
        before = json.loads(enrollment.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise install.SetupError(f"{enrollment}: unreadable ({exc})") from exc
    if (before.get("agent_id"), before.get("site")) != (data["agent_id"], data["site"]):
        raise install.SetupError(
            f"this agent is enrolled as {before.get('agent_id')} at site {before.get('site')}:"
            " to enroll under a new name or site, add --new-key"
        )


def _collector_ca(run: AgentSetup, source: Path, target: Path) -> None:
    from cryptography import x509  # noqa: PLC0415

    try:
        pem = source.read_bytes()[: 64 * 1024]
        x509.load_pem_x509_certificate(pem)
    except (OSError, ValueError) as exc:
        raise install.SetupError(f"--collector-ca: {source} is not a PEM certificate") from exc
    install.write_file(target, pem, 0o644)
    run.say(f"collector CA: {target} (HTTPS to the collector trusts it only)")


def setup(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Every step; 0 when done, 1 with one clear line when a step cannot go on."""
    out = out or sys.stdout
    try:
        run = AgentSetup(args, out)
        data = run.config_values()
        _same_identity(data, args.new_key)
        run.path.parent.mkdir(parents=True, exist_ok=True)
        if args.collector_ca is not None:
            _collector_ca(run, args.collector_ca, Path(data["collector_ca_file"]))
        install.write_file(run.path, _render(data).encode(), 0o640, USER)
        config = load_config(run.path)
        trust_collector(config)
        _keys(run, config)
        added = _cameras(run, config, data)
        if added:
            install.write_file(run.path, _render(data).encode(), 0o640, USER)
            config = load_config(run.path)
        run.say(f"config: {run.path} ({len(config.cameras)} camera(s))")
        _credentials(run, config, added)
        _enroll(run, config)
        install.hand_over(config.state_path, USER)
        install.enable_service(UNIT, not args.no_enable, out)
    except (install.SetupError, AgentError, ConfigError, OSError) as exc:
        print(f"camwarden-agent: setup: {exc}", file=sys.stderr)
        return 1
    return 0
