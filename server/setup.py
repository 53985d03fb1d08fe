"""``camwarden-server setup``: the first collector, from a fresh package install.

Steps, each skipped when already done and not asked for again:

1. the settings: ``server.d/50-setup.toml`` beside the main config (state directory, database,
   broker over mutual TLS, HTTPS); the packaged ``server.toml`` and the admin's own drop-ins
   are left alone, and a run changes only the values its flags (or answers) name;
2. the database (SQLite under the state directory, or a PostgreSQL URL), migrated, and the
   collector's command key;
3. the first administrator, password from ``--admin-password-file``, ``CAMWARDEN_ADMIN_PASSWORD``
   or a prompt (never the command line);
4. the organisation tree from a CSV file (``server.orgcsv``), previewed before it is stored;
5. the broker CA (``server.pki``) with the broker's and the collector's certificates, and the
   Mosquitto config and files (``packaging/mosquitto``);
6. the dashboard's HTTPS certificate: given, or issued by the same CA (agents trust one CA);
7. the files handed to the service account, and the service enabled where systemd runs.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import ipaddress
import os
import shutil
import ssl
import sys
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from protocol.configfile import Entry, render
from server.config import ServerConfig, load_config
from server.keys import load_or_create
from server.orgcsv import OrgCsvError, Step, Stored, parse, plan
from server.pki import CertificateAuthority, write_pem
from server.storage import Repository
from service import install

if TYPE_CHECKING:
    from server.domain.orgs import Orgs

__all__ = ["add_arguments", "setup"]

USER = "camwarden-server"  # packaging/sysusers.d/camwarden-server.conf
UNIT = "camwarden-server.service"
STATE_DIR = "/var/lib/camwarden-server"  # the unit's StateDirectory=
DROP_IN = "50-setup.toml"
PASSWORD_ENV = "CAMWARDEN_ADMIN_PASSWORD"  # noqa: S105  # a variable's name, not a password
BROKER_CONF = "camwarden.conf"
DYNSEC = "dynamic-security.json"
# the broker config the package ships, else (a source tree) the repository's
PACKAGED = (
    Path("/usr/share/doc/camwarden-server/examples/mosquitto"),
    Path(__file__).resolve().parents[1] / "packaging" / "mosquitto",
)
HEADER = """camwarden collector: written by `camwarden-server setup`, which rewrites this file on
each run (edit the values here or run setup again; your own settings go in server.toml or
another drop-in of server.d/, which setup leaves alone). Every key: server.example.toml."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="ask nothing: flags and defaults only")
    p.add_argument("--state-dir", help=f"the collector's state (default {STATE_DIR})")
    p.add_argument(
        "--database",
        help='"sqlite" (a file in the state directory), a SQLite file path, or a PostgreSQL'
        " URL (postgresql+psycopg://USER@HOST/DB)",
    )
    p.add_argument("--admin", help="the first administrator's user name (default admin)")
    p.add_argument(
        "--admin-password-file",
        type=Path,
        help=f"a file holding the password (mode 0600), else ${PASSWORD_ENV}, else a prompt",
    )
    p.add_argument("--orgs", type=Path, help="the organisation tree as CSV: kind,name,parent,site")
    p.add_argument(
        "--broker-host",
        action="append",
        help="a name or address agents reach the broker at (repeatable; default 127.0.0.1)",
    )
    p.add_argument("--broker-port", type=int, default=None, help="its TLS port (default 8883)")
    p.add_argument("--mosquitto-dir", type=Path, default=Path("/etc/mosquitto"))
    p.add_argument("--mosquitto-state-dir", type=Path, default=Path("/var/lib/mosquitto"))
    p.add_argument(
        "--web-host",
        action="append",
        help="a name or address users and agents reach the collector at (repeatable)",
    )
    p.add_argument("--web-bind", help="the address HTTPS listens on (default 0.0.0.0)")
    p.add_argument("--web-port", type=int, help="the HTTPS port (default 8443)")
    p.add_argument("--web-cert", type=Path, help="your certificate chain (PEM) for HTTPS")
    p.add_argument("--web-key", type=Path, help="its private key (PEM)")
    p.add_argument(
        "--new-certs", action="store_true", help="issue the broker and HTTPS certificates again"
    )
    p.add_argument("--no-enable", action="store_true", help="do not enable or start the service")


def _setting(current: dict[str, Any], dotted: str) -> Any:
    node: Any = current
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _csv_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _check_host(text: str) -> str | None:
    for name in _csv_list(text) or [""]:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            labels = name.rstrip(".").split(".")
            if (
                not name
                or len(name) > 253
                or not all(
                    label and len(label) <= 63 and label.replace("-", "").isalnum()
                    for label in labels
                )
            ):
                return f"{name!r} is neither an IP address nor a host name"
    return None


def _check_port(text: str) -> str | None:
    return None if text.isdigit() and 1 <= int(text) <= 65535 else "a port is 1 to 65535"


def _names(certificate: Path) -> list[str]:
    """The DNS names and addresses a certificate of an earlier run was issued for."""
    from cryptography import x509  # noqa: PLC0415

    try:
        cert = x509.load_pem_x509_certificate(certificate.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return []
    return [*san.get_values_for_type(x509.DNSName),
            *map(str, san.get_values_for_type(x509.IPAddress))]  # fmt: skip


def _database_url(answer: str, state_dir: str) -> str:
    if answer == "sqlite":
        return f"sqlite:///{Path(state_dir) / 'collector.db'}"
    if "://" in answer:
        if not answer.startswith(("sqlite:///", "postgresql")):
            raise install.SetupError("--database: a SQLite path, or a postgresql+psycopg:// URL")
        return answer
    return f"sqlite:///{Path(answer).resolve()}"


class ServerSetup:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.ask = install.Asker(args.yes, out=out)
        self.drop_in = args.config.with_name(f"{args.config.stem}.d") / DROP_IN
        self.current: dict[str, Any] = {}
        if self.drop_in.exists():
            self.current = tomllib.loads(self.drop_in.read_text(encoding="utf-8"))

    def say(self, text: str) -> None:
        self.out.write(f"{text}\n")
        self.out.flush()

    def settings(self) -> dict[str, Any]:
        """The values of the drop-in: current ones, replaced by flags and answers."""
        a, ask, cur = self.args, self.ask, self.current
        state = ask.value(
            "state directory", "--state-dir", a.state_dir, _setting(cur, "state_dir") or STATE_DIR
        )
        db_now = _setting(cur, "database.url")
        database = _database_url(
            ask.value("database (sqlite, a file, or a PostgreSQL URL)", "--database",
                      a.database, db_now or "sqlite"),
            state,
        )  # fmt: skip
        brokers = _csv_list(
            ask.value(
                "broker host names or addresses (comma-separated)",
                "--broker-host",
                ",".join(a.broker_host) if a.broker_host else None,
                ",".join(_names(Path(state) / "pki" / "server.crt") or ["127.0.0.1"]),
                _check_host,
            )
        )
        port = int(ask.value("broker TLS port", "--broker-port",
                             None if a.broker_port is None else str(a.broker_port),
                             str(_setting(cur, "mqtt.port") or 8883), _check_port))  # fmt: skip
        web_hosts = _csv_list(
            ask.value(
                "collector host names or addresses for HTTPS (comma-separated)",
                "--web-host",
                ",".join(a.web_host) if a.web_host else None,
                ",".join(_names(Path(state) / "pki" / "web.crt") or brokers),
                _check_host,
            )
        )
        bind = ask.value("HTTPS listens on", "--web-bind", a.web_bind,
                         _setting(cur, "http.bind") or "0.0.0.0")  # noqa: S104  # fmt: skip
        web_port = int(ask.value("HTTPS port", "--web-port",
                                 None if a.web_port is None else str(a.web_port),
                                 str(_setting(cur, "http.port") or 8443), _check_port))  # fmt: skip
        return {
            "state_dir": state,
            "database": database,
            "brokers": brokers,
            "broker_port": port,
            "web_hosts": web_hosts,
            "bind": bind,
            "web_port": web_port,
        }

    def write_settings(self, s: dict[str, Any], web: tuple[str, str]) -> None:
        pki = str(Path(s["state_dir"]) / "pki")
        mqtt = [
            Entry("host", s["brokers"][0], "The broker, over mutual TLS (Mosquitto)."),
            Entry("port", s["broker_port"]),
            Entry("tls", True),
            Entry("ca_file", f"{pki}/ca.crt"),
            Entry("cert_file", f"{pki}/collector.crt", "CN camwarden-collector"),
            Entry("key_file", f"{pki}/collector.key"),
            Entry("dynamic_security", True, "Agents get their broker role on approval."),
        ]
        http = [
            Entry("bind", s["bind"], "HTTPS: the dashboard, the API and the agents."),
            Entry("port", s["web_port"]),
            Entry("tls_cert_file", web[0]),
            Entry("tls_key_file", web[1]),
        ]
        tables = [
            ("", [Entry("state_dir", s["state_dir"], "Keys, PKI and the SQLite database.")]),
            ("[database]", [Entry("url", s["database"], "SQLAlchemy URL of the database.")]),
            ("[mqtt]", mqtt),
            ("[http]", http),
            ("[pki]", [Entry("ca_dir", pki, "The broker CA: agents' certificates on approval.")]),
        ]
        text = render(HEADER, tables)
        install.write_file(self.drop_in, text.encode(), 0o640, USER)
        install.share_directory(self.drop_in.parent, 0o750, USER)  # the service lists it
        self.say(f"settings: {self.drop_in}")

    def config(self) -> ServerConfig:
        return load_config(self.args.config)


def _admin_password(args: argparse.Namespace) -> str | None:
    if args.admin_password_file is not None:
        return install.read_secret_file(args.admin_password_file, "--admin-password-file")
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    return None


def _admin(run: ServerSetup, repo: Repository) -> None:
    from server.domain.scope import CLI, Scope, ScopeError  # noqa: PLC0415  # argon2, queries
    from server.domain.users import Users  # noqa: PLC0415

    s = Users(Scope(repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC)))
    name = run.ask.value("administrator user name", "--admin", run.args.admin, "admin")
    password = _admin_password(run.args)
    existing = {u.username: u for u in s.users()}
    try:
        if name in existing:
            if password is None:
                run.say(f"administrator {name}: exists, kept")
                return
            s.set_password(existing[name].id, password)
            run.say(f"administrator {name}: password changed")
            return
        if password is None:
            password = run.ask.secret(f"password of {name}", "--admin-password-file")
        s.create_user(name, password, "admin", None)
    except ScopeError as exc:
        raise install.SetupError(f"administrator {name}: {exc}") from exc
    run.say(f"administrator {name}: created")


def _orgs(run: ServerSetup, repo: Repository, path: Path) -> None:
    from server.domain.orgs import Orgs  # noqa: PLC0415
    from server.domain.scope import CLI, Scope, ScopeError  # noqa: PLC0415

    s = Orgs(Scope(repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC)))
    try:
        with path.open("rb") as f:
            data = f.read(2 * 1024 * 1024)
        rows = parse(data)
        tree = [Stored(n.id, n.parent_id, n.kind, n.name, n.site) for n in s.org_tree()]
        steps = plan(rows, tree)
    except OSError as exc:
        raise install.SetupError(f"--orgs: cannot read {path}: {exc.strerror}") from exc
    except OrgCsvError as exc:
        raise install.SetupError(f"{path}: the organisation tree is refused:\n{exc}") from exc
    new = [step for step in steps if step.action == "add"]
    run.say(f"organisation tree from {path}: {len(new)} to add, {len(steps) - len(new)} stored")
    for step in steps:
        run.say(f"  {step.text()}")
    if not new or not run.ask.confirm("add them?"):
        return
    try:
        _apply(s, new, tree)
    except ScopeError as exc:
        raise install.SetupError(f"{path}: {exc}") from exc
    run.say(f"organisation tree: {len(new)} added")


def _apply(s: Orgs, new: Sequence[Step], tree: Sequence[Stored]) -> None:
    from server.orgcsv import paths  # noqa: PLC0415

    ids = {key: unit.id for key, unit in paths(tree).items()}
    for step in new:
        row = step.row
        parent_id = ids[tuple(n.casefold() for n in row.parent)] if row.parent else None
        if row.site and parent_id is not None:  # plan(): a site always sits under a system
            node = s.map_site(row.site, parent_id, row.name)
        else:
            node = s.create_org(parent_id=parent_id, kind=row.kind, name=row.name)
        ids[tuple(n.casefold() for n in row.path)] = node.id


def _addresses(hosts: Sequence[str]) -> tuple[list[str], list[Any]]:
    names, addresses = [], []
    for host in hosts:
        try:
            addresses.append(ipaddress.ip_address(host))
        except ValueError:
            names.append(host)
    return names, addresses


def _pki(run: ServerSetup, s: dict[str, Any]) -> CertificateAuthority:
    pki = Path(s["state_dir"]) / "pki"
    if (pki / "ca.crt").exists():
        ca = CertificateAuthority.load(pki)
        run.say(f"broker CA: {pki / 'ca.crt'} kept")
    else:
        ca = CertificateAuthority.create()
        ca.save(pki)
        run.say(f"broker CA: {pki / 'ca.crt'} created")
    if run.args.new_certs or set(_names(pki / "server.crt")) != set(s["brokers"]):
        write_pem(ca.issue_server_certificate(*_addresses(s["brokers"])), pki / "server")
        run.say(f"broker certificate for {', '.join(s['brokers'])}: {pki / 'server.crt'}")
    if not (pki / "collector.crt").exists():
        write_pem(ca.issue_collector_certificate(), pki / "collector")
    return ca


def _broker_files(run: ServerSetup, pki: Path, port: int) -> None:
    """The CA, the broker's certificate and key and the CRL into Mosquitto's directory, and the
    packaged config (its paths and dynamic-security plugin made this machine's)."""
    etc, state = run.args.mosquitto_dir, run.args.mosquitto_state_dir
    source = next((d for d in PACKAGED if (d / BROKER_CONF).exists()), None)
    if source is None:
        raise install.SetupError(f"no {BROKER_CONF} in {' or '.join(map(str, PACKAGED))}")
    certs = etc / "certs" / "camwarden"
    for name, mode in (("ca.crt", 0o644), ("server.crt", 0o644), ("crl.pem", 0o644),
                       ("server.key", 0o640)):  # fmt: skip
        install.write_file(certs / name, (pki / name).read_bytes(), mode, "mosquitto")
    # root and the mosquitto group only: the broker reads them after dropping to user mosquitto
    install.share_directory(certs, 0o750, "mosquitto")
    conf = (source / BROKER_CONF).read_text(encoding="utf-8")
    conf = conf.replace("/etc/mosquitto/", f"{etc}/").replace("/var/lib/mosquitto/", f"{state}/")
    conf = conf.replace("listener 8883\n", f"listener {port}\n")
    plugin = sorted(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so"))
    if plugin:
        conf = (
            "\n".join(
                f"plugin {plugin[0]}" if line.startswith("plugin ") else line
                for line in conf.splitlines()
            )
            + "\n"
        )
    install.write_file(etc / "conf.d" / BROKER_CONF, conf.encode(), 0o644)
    dynsec = state / "camwarden-dynamic-security.json"
    if not dynsec.exists():  # the plugin rewrites it: installed once
        install.write_file(dynsec, (source / DYNSEC).read_bytes(), 0o600)
        if os.geteuid() == 0:
            with contextlib.suppress(LookupError):  # no mosquitto user: not installed yet
                shutil.chown(dynsec, "mosquitto", "mosquitto")
    run.say(f"broker config: {etc / 'conf.d' / BROKER_CONF}")


def _web_certificate(
    run: ServerSetup, s: dict[str, Any], ca: CertificateAuthority
) -> tuple[str, str]:
    a = run.args
    if (a.web_cert is None) != (a.web_key is None):
        raise install.SetupError("--web-cert and --web-key go together")
    if a.web_cert is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                a.web_cert, a.web_key
            )
        except (OSError, ssl.SSLError) as exc:
            raise install.SetupError(
                f"--web-cert/--web-key: not a certificate and its key: {exc}"
            ) from exc
        run.say(f"HTTPS certificate: {a.web_cert} (yours)")
        return str(a.web_cert.resolve()), str(a.web_key.resolve())
    stem = Path(s["state_dir"]) / "pki" / "web"
    current = _setting(run.current, "http.tls_cert_file")
    if current and current != f"{stem}.crt" and not a.new_certs:
        run.say(f"HTTPS certificate: {current} kept")
        return current, _setting(run.current, "http.tls_key_file")
    if a.new_certs or set(_names(stem.with_suffix(".crt"))) != set(s["web_hosts"]):
        write_pem(ca.issue_server_certificate(*_addresses(s["web_hosts"])), stem)
        run.say(f"HTTPS certificate for {', '.join(s['web_hosts'])}: {stem}.crt (generated)")
    run.say(
        "  to use your own later: camwarden-server setup --web-cert CHAIN.pem --web-key KEY.pem"
        f" --yes, then systemctl restart {UNIT}; browsers and agents must trust its issuer"
    )
    return f"{stem}.crt", f"{stem}.key"


def setup(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run every step; 0 when done, 1 with one clear line when a step cannot go on."""
    out = out or sys.stdout
    run = ServerSetup(args, out)
    try:
        s = run.settings()
        state = Path(s["state_dir"])
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca = _pki(run, s)
        web = _web_certificate(run, s, ca)
        run.write_settings(s, web)
        config = run.config()
        load_or_create(config.state_dir)
        repo = Repository.open_migrated(config)
        try:
            run.say(f"database: {config.database_url.split('@')[-1]} migrated")
            _admin(run, repo)
            if args.orgs is not None:
                _orgs(run, repo, args.orgs)
        finally:
            repo.close()
        _broker_files(run, state / "pki", s["broker_port"])
        install.hand_over(state, USER)
        install.enable_service("mosquitto.service", not args.no_enable, out, restart=True)
        install.enable_service(UNIT, not args.no_enable, out)
    except install.SetupError as exc:
        print(f"camwarden-server: setup: {exc}", file=sys.stderr)
        return 1
    run.say("next: camwarden-server tokens create --site SITE, then each agent's setup")
    return 0
