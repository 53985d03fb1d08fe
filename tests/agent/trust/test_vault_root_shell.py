"""The vault from a root shell: ``vault set`` run by root with the packaged key file (0640
root:<service group>) writes a vault that the service account reads with the same key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.trust.vault import open_vault

SERVICE = 65534  # nobody:nogroup stands for camwarden:camwarden

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as root and service")


@pytest.fixture
def site() -> Iterator[Path]:
    # a directory the service account can walk into (pytest's tmp_path is root's, 0700)
    root = Path(tempfile.mkdtemp(prefix="cw-vault-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root)


def _agent(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from agent.cli import entrypoint; entrypoint()", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _read_as_service(state: Path, key: Path) -> str:
    """What the daemon's code (open_vault) reads, in a child process of the service account
    (this interpreter may live where that account cannot run it anew)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the service account, read, report, exit
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(SERVICE)
            os.setuid(SERVICE)
            vault = open_vault(state, key)
            credential = vault.credential("lobby") if vault else None
            text = f"{credential.username} {credential.password}" if credential else "none"
            os.write(write, text.encode())
            code = 0
        except BaseException as exc:  # noqa: BLE001  # reported to the parent
            os.write(write, f"error: {exc}".encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


def _setup(site: Path, key_mode: int) -> tuple[Path, Path, Path]:
    state = site / "state"
    state.mkdir(mode=0o700)
    os.chown(state, SERVICE, SERVICE)
    key = site / "vault.key"
    key.write_bytes(os.urandom(32))
    os.chown(key, 0, SERVICE)
    key.chmod(key_mode)
    config = site / "agent.toml"
    config.write_text(
        f'agent_id = "a"\nsite = "s"\nstate_dir = "{state}"\nvault_key_file = "{key}"\n'
    )
    return state, key, config


def test_root_shell_writes_what_the_service_reads(site: Path) -> None:
    state, key, config = _setup(site, 0o640)
    done = _agent(
        "vault",
        "set",
        "lobby",
        "--username",
        "operator",
        "--config",
        str(config),
        stdin="Hard-To-Guess-9431\n",
    )
    assert done.returncode == 0, done.stderr
    for name in ("vault.bin", "vault.lock"):
        assert (state / name).stat().st_uid == SERVICE, name
    assert _read_as_service(state, key) == "operator Hard-To-Guess-9431"
    listed = _agent("vault", "list", "--config", str(config))
    assert listed.returncode == 0
    assert listed.stdout.startswith("lobby\toperator\t")


def test_a_key_open_to_others_is_refused_with_the_fix(site: Path) -> None:
    _state, key, config = _setup(site, 0o644)
    done = _agent("vault", "list", "--config", str(config))
    assert done.returncode == 1
    assert f"chown root:camwarden {key} && chmod 0640 {key}" in done.stderr


def test_no_key_file_names_what_to_set(site: Path) -> None:
    config = site / "agent.toml"
    config.write_text(f'agent_id = "a"\nsite = "s"\nstate_dir = "{site}"\n')
    done = _agent("vault", "list", "--config", str(config))
    assert done.returncode == 1
    assert 'vault_key_file = "/etc/camwarden/vault.key"' in done.stderr


def test_a_key_the_service_cannot_read_says_what_to_do(site: Path) -> None:
    state, key, config = _setup(site, 0o600)  # root's alone: the service account is shut out
    done = _agent("vault", "set", "lobby", "--config", str(config), stdin="Hard-To-Guess-9431\n")
    assert done.returncode == 0, done.stderr
    answer = _read_as_service(state, key)
    assert answer.startswith(f"error: cannot open the vault key {key}: Permission denied")
    assert "give the file mode 0640, owner root, group the service's" in answer
