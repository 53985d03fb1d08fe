"""A site installed the way the README's "Install a site" guide does it, on loopback.

``camwarden-server setup`` makes the collector (SQLite, admin, organisation tree, broker CA and
Mosquitto config, HTTPS); a real Mosquitto runs the config it wrote and the collector serves
HTTPS with the certificate it generated. ``camwarden-agent setup`` then writes the agent's
config, keys and vault, finds the lab camera by sweeping the camera subnet, enrolls with the
token, fetches its broker certificate; the agent it set up delivers its first signed report over
mutual TLS. A second run of each setup changes nothing.
"""

from __future__ import annotations

import io
import shutil
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from agent.cli import main as agent_main
from agent.vault import Vault, load_vault_key
from lab.testing import private_base
from server.cli import main as server_main
from server.storage import Repository
from server.storage.models import Message
from tests.support.mosquitto import free_port, wait_port
from tests.support.stack import AGENT, SERVER, start, start_lab, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOST = "127.0.0.1"
PASSWORD = "Kq7!vR2#mZ9x-site"  # the lab camera's, made up
ORGS = """kind,name,parent,site
province,Tỉnh X,,
agency,Sở Y,Tỉnh X,
system,Camera trụ sở,Tỉnh X/Sở Y,
site,Trụ sở chính,Tỉnh X/Sở Y/Camera trụ sở,hq
"""


def secret(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def collector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[dict[str, str]]:
    """The collector as setup leaves it, with its broker and ``run`` started."""
    if not list(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so")):
        pytest.skip("mosquitto's dynamic-security plugin is not installed")
    etc, state, mosq = tmp_path / "etc", tmp_path / "srv", tmp_path / "mosquitto"
    broker_port, web_port = free_port(HOST), free_port(HOST)
    (tmp_path / "orgs.csv").write_text(ORGS)
    argv = [
        "--config", str(etc / "server.toml"), "setup", "--yes", "--state-dir", str(state),
        "--admin-password-file", str(secret(tmp_path / "admin-pw", "a long admin pass 42")),
        "--orgs", str(tmp_path / "orgs.csv"), "--broker-host", HOST,
        "--broker-port", str(broker_port), "--web-host", HOST, "--web-bind", HOST,
        "--web-port", str(web_port), "--mosquitto-dir", str(mosq),
        "--mosquitto-state-dir", str(mosq / "state"), "--no-enable",
    ]  # fmt: skip
    assert server_main(argv) == 0
    first = capsys.readouterr().out
    assert "organisation tree: 4 added" in first
    assert "then run: systemctl enable --now camwarden-server" in first
    assert server_main(argv) == 0  # again: nothing new
    again = capsys.readouterr().out
    assert "0 to add, 4 stored" in again
    assert "administrator admin: password changed" in again
    assert mode(state / "pki" / "ca.key") == 0o600
    assert mode(etc / "server.d" / "50-setup.toml") == 0o640
    conf = (mosq / "conf.d" / "camwarden.conf").read_text()
    assert f"listener {broker_port}\n" in conf
    main = mosq / "mosquitto.conf"  # what Debian's mosquitto.conf adds, and loopback only
    main.write_text(
        f"persistence_location {mosq}/\nlog_dest file {mosq}/mosquitto.log\nuser root\n"
        + conf.replace(f"listener {broker_port}\n", f"listener {broker_port} {HOST}\n")
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen([binary, "-c", str(main)], stderr=subprocess.DEVNULL)
    server = None
    try:
        server = start([*SERVER, "--config", str(etc / "server.toml"), "run"],
                       tmp_path / "collector.log")  # fmt: skip
        wait_port(HOST, broker_port)
        ca = state / "pki" / "ca.crt"
        trust = ssl.create_default_context(cafile=str(ca))
        deadline = time.monotonic() + 60
        while True:  # HTTPS with the generated certificate, trusted through the setup CA
            try:
                if httpx.get(f"https://{HOST}:{web_port}/healthz", verify=trust).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "collector.log").read_text()[-3000:]
            time.sleep(0.3)
        yield {"etc": str(etc), "state": str(state), "ca": str(ca),
               "url": f"https://{HOST}:{web_port}", "broker": f"{HOST}:{broker_port}"}  # fmt: skip
    finally:
        if server is not None:
            stop(server)
        broker.terminate()
        broker.wait(10)


def test_install_site(
    collector: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = private_base()
    lab_conf = tmp_path / "lab.toml"
    lab_conf.write_text(
        f'[lab]\nloopback_base = "{base}"\nrtsp = false\n'
        f'[[camera]]\nid = "door"\npersona = "hikvision"\n'
        f'users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]\n'
    )
    lab, cameras = start_lab(lab_conf, tmp_path)
    address = str(cameras["door"]["address"])
    server = ["--config", f"{collector['etc']}/server.toml"]
    assert server_main([*server, "tokens", "create", "--site", "hq", "--approved"]) == 0
    token = secret(tmp_path / "token", capsys.readouterr().out.strip())
    # setup's --collector-ca sets it in this process too: restored after the test
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent")
    site = tmp_path / "site"
    config = site / "agent.toml"
    argv = [
        "setup", "--config", str(config), "--yes", "--agent-id", "pi-lobby-01", "--site", "hq",
        "--collector-url", collector["url"], "--collector-ca", collector["ca"],
        "--broker", collector["broker"], "--camera-subnet", f"{base}/24",
        "--port-offset", "10000", "--discover", "--camera-username", "admin",
        "--camera-password-file", str(secret(tmp_path / "camera-pw", PASSWORD)),
        "--token-file", str(token), "--key-file", str(site / "agent.key"),
        "--state-dir", str(site / "state"), "--vault-key-file", str(site / "vault.key"),
        "--wait-s", "60", "--poll-s", "0.5", "--no-enable",
    ]  # fmt: skip
    agent = None
    try:
        assert agent_main(argv) == 0
        out = capsys.readouterr().out
        ident = "cam-" + address.replace(".", "-")
        assert f"add {address}" in out
        assert "enrolled pi-lobby-01 at site hq: approved" in out
        assert mode(config) == 0o640
        assert mode(site / "agent.key") == 0o600
        assert mode(site / "vault.key") in (0o600, 0o640)
        vault = Vault(site / "state", load_vault_key(site / "vault.key", {}))
        assert [(ref, user) for ref, user, _at in vault.listing()] == [(ident, "admin")]
        assert (site / "state" / "mqtt.crt").exists()
        key_before = (site / "agent.key").read_bytes()
        assert agent_main(["check-config", "--offline", "--config", str(config)]) == 0
        capsys.readouterr()

        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # --yes asks nothing
        again = [a for a in argv if a != "--discover"]
        assert agent_main(again) == 0
        second = capsys.readouterr().out
        assert f"agent key: {site / 'agent.key'} kept" in second
        assert "enrollment: done before, kept" in second
        assert (site / "agent.key").read_bytes() == key_before

        agent = start([*AGENT, "run", "--config", str(config)], tmp_path / "agent.log")
        db = Repository.open(f"sqlite:///{collector['state']}/collector.db")
        try:
            deadline = time.monotonic() + 90
            query = (
                select(func.count())
                .select_from(Message)
                .where(Message.agent_id == "pi-lobby-01", Message.type == "report")
            )
            while True:
                with db.engine.connect() as conn:
                    if conn.execute(query).scalar_one():
                        break
                log = (tmp_path / "agent.log").read_text()[-3000:]
                assert time.monotonic() < deadline, log
                time.sleep(0.5)
        finally:
            db.close()
    finally:
        if agent is not None:
            stop(agent)
        stop(lab)
