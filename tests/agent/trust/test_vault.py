"""The credential vault: encrypted at rest, owner-only key, atomic writes, no secret printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.cli import main
from agent.trust.vault import HEADER, KEY_BYTES, Vault, VaultError, load_vault_key

SECRET = "Vault#Secret-2024!"


def key_file(directory: Path, mode: int = 0o600, data: bytes | None = None) -> Path:
    path = directory / "vault.key"
    path.write_bytes(os.urandom(KEY_BYTES) if data is None else data)
    path.chmod(mode)
    return path


def test_entries_are_encrypted_and_round_trip(tmp_path: Path) -> None:
    vault = Vault(tmp_path, load_vault_key(key_file(tmp_path), {}))
    vault.set("lobby", "admin", SECRET)
    vault.set("gate", "root", "another-Secret-1")
    data = (tmp_path / "vault.bin").read_bytes()
    assert data.startswith(HEADER)
    assert SECRET.encode() not in data
    assert b"admin" not in data
    assert (tmp_path / "vault.bin").stat().st_mode & 0o777 == 0o600
    credential = vault.credential("lobby")
    assert credential is not None
    assert (credential.username, credential.password) == ("admin", SECRET)
    assert SECRET not in repr(credential)
    assert [(ref, user) for ref, user, _at in vault.listing()] == [
        ("gate", "root"),
        ("lobby", "admin"),
    ]
    site_key = vault.site_key()
    assert site_key is not None
    assert len(site_key.secret) >= 32
    assert vault.delete("gate")
    assert not vault.delete("gate")
    assert list(vault.credentials()) == ["lobby"]
    assert vault.site_key() == site_key  # the site key survives every rewrite


def test_records_are_kept_encrypted_beside_the_credentials(tmp_path: Path) -> None:
    """A remediation's settings snapshot: sealed in the same file, bounded, credentials kept."""
    vault = Vault(tmp_path, load_vault_key(key_file(tmp_path), {}))
    vault.set("lobby", "admin", SECRET)
    vault.set_record("settings-snapshots/lobby", '{"cmd-1": {"snmp_community": "Str0ng-c0mm"}}')
    assert b"Str0ng-c0mm" not in (tmp_path / "vault.bin").read_bytes()
    assert vault.record("settings-snapshots/lobby") == (
        '{"cmd-1": {"snmp_community": "Str0ng-c0mm"}}'
    )
    assert vault.record("settings-snapshots/gate") is None
    assert vault.credential("lobby") is not None
    with pytest.raises(VaultError, match="at most"):
        vault.set_record("big", "x" * (64 * 1024 + 1))


def test_wrong_key_and_damage_are_refused(tmp_path: Path) -> None:
    Vault(tmp_path, os.urandom(KEY_BYTES)).set("lobby", "admin", SECRET)
    with pytest.raises(VaultError, match="wrong vault key"):
        Vault(tmp_path, os.urandom(KEY_BYTES)).credentials()
    (tmp_path / "vault.bin").write_bytes(b"not a vault")
    with pytest.raises(VaultError, match="not a camwarden vault"):
        Vault(tmp_path, os.urandom(KEY_BYTES)).credentials()


def test_key_sources(tmp_path: Path) -> None:
    for mode in (0o644, 0o660):  # others read, or the group writes: refused
        readable = key_file(tmp_path, mode)
        with pytest.raises(VaultError, match="open to others"):
            load_vault_key(readable, {})
    with pytest.raises(VaultError, match="no vault key"):
        load_vault_key(None, {})
    hexed = key_file(tmp_path, 0o600, os.urandom(KEY_BYTES).hex().encode() + b"\n")
    assert len(load_vault_key(hexed, {})) == KEY_BYTES
    with pytest.raises(VaultError, match="raw bytes or 64 hex"):
        load_vault_key(key_file(tmp_path, 0o600, b"short"), {})
    credentials = tmp_path / "creds"
    credentials.mkdir()
    systemd = os.urandom(KEY_BYTES)
    (credentials / "vault.key").write_bytes(systemd)
    # the systemd credential wins over a configured key file (even an unusable one)
    assert load_vault_key(readable, {"CREDENTIALS_DIRECTORY": str(credentials)}) == systemd


def test_cli_set_list_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = key_file(tmp_path)
    config = tmp_path / "agent.toml"
    config.write_text(
        f'agent_id = "a"\nsite = "s"\nstate_dir = "{tmp_path / "state"}"\n'
        f'vault_key_file = "{key}"\n'
    )
    read, write = os.pipe()
    os.write(write, f"{SECRET}\n".encode())
    os.close(write)
    with os.fdopen(read) as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        assert (
            main(["vault", "set", "lobby", "--username", "operator", "--config", str(config)]) == 0
        )
    assert main(["vault", "list", "--config", str(config)]) == 0
    assert main(["vault", "delete", "lobby", "--config", str(config)]) == 0
    assert main(["vault", "delete", "lobby", "--config", str(config)]) == 1
    out, err = capsys.readouterr()
    assert "lobby\toperator\t" in out
    assert SECRET not in out + err
