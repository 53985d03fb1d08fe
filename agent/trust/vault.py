"""The agent's credential vault: camera credentials and the site key, encrypted at rest.

``<state_dir>/vault.bin`` holds one AES-256-GCM ciphertext::

    b"CWVAULT1" | 12-byte random nonce | ciphertext + 16-byte tag

The 8-byte header is the associated data, so a file of another format or version never
decrypts. The plaintext is JSON: the per-site fingerprint key (AUTH-03) and the entries
(``credentials_ref`` -> username, password, when set, the password's zxcvbn scores). A fresh
nonce is drawn for every write; writes are rare (an operator command), far below the 2^32
messages per key of the NIST limit for random 96-bit nonces.

Why AES-256-GCM and not Fernet: Fernet is AES-128-CBC with an HMAC-SHA256 tag, uses half of
its 32-byte key for each, and has no associated data; GCM gives a 256-bit key, one primitive
(AEAD) and a bound header, in the same ``cryptography`` package, with nothing to tune.

The 32-byte key comes from, in order:

1. the systemd credential ``$CREDENTIALS_DIRECTORY/vault.key`` (the packaged unit loads it with
   ``LoadCredential=vault.key:/etc/camwarden/vault.key``);
2. ``vault_key_file`` from the config: the same file, ``/etc/camwarden/vault.key`` as packaged,
   so that ``vault set`` from a root shell uses the unit's key. Mode 0640 owned by root (root
   and the service's group read it) or 0600 owned by the user running; a key others can read
   or the group can write is refused, not used. Root writing the vault gives ``vault.bin`` and
   ``vault.lock`` to the owner of the state directory (the service account).

A key file holds the 32 key bytes raw, or as 64 hex digits (whitespace around them ignored).
Every write goes through ``agent.state.atomic_write`` (temporary file, fsync, rename, directory
fsync) under ``vault.lock``, so two ``vault set`` commands never lose an entry. Nothing here
logs or prints a password, and ``VaultError`` messages never contain one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

from agent.credentials.passwords import MIN_SITE_KEY_BYTES, SiteKey, remember, stored_scores
from agent.errors import AgentError
from agent.state import atomic_write
from agent.vendors.models import Credential

__all__ = [
    "CREDENTIAL_NAME",
    "KEY_BYTES",
    "Entry",
    "Vault",
    "VaultError",
    "load_vault_key",
]

KEY_BYTES: Final = 32
DEFAULT_KEY_FILE: Final = "/etc/camwarden/vault.key"  # 0640 root:camwarden, LoadCredential=
CREDENTIAL_NAME: Final = "vault.key"  # LoadCredentialEncrypted=vault.key:... in the unit
HEADER: Final = b"CWVAULT1"
_NONCE: Final = 12
_MAX_VAULT_BYTES: Final = 4 * 1024 * 1024
MAX_RECORD: Final = 64 * 1024


class VaultError(AgentError):
    """The vault or its key cannot be used (missing, readable by others, wrong key, corrupt)."""


class Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    username: str
    password: str
    set_at: str  # ISO 8601 UTC: the password's age for AUTH-04 rotation policies
    # zxcvbn scores computed at ``set`` time (agent.credentials.passwords.stored_scores), so
    # that an audit does not load zxcvbn (~11 MiB RSS); absent in vaults written before them
    scores: tuple[int, ...] | None = None

    def __repr__(self) -> str:  # never print the password
        return f"Entry(username={self.username!r}, set_at={self.set_at!r})"


class _Contents(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    version: int = 1
    site_key: str  # base64 of the per-site fingerprint key
    entries: dict[str, Entry] = {}
    # small records kept as secret as the credentials: a remediation's settings snapshots
    records: dict[str, str] = {}


def _parse_key(raw: bytes, source: str) -> bytes:
    if len(raw) == KEY_BYTES:
        return raw
    text = raw.strip()
    if len(text) == 2 * KEY_BYTES:
        with contextlib.suppress(binascii.Error, ValueError):
            return bytes.fromhex(text.decode("ascii"))
    raise VaultError(
        f"{source}: a vault key is {KEY_BYTES} raw bytes or {2 * KEY_BYTES} hex digits"
    )


def _check_key_file(key_file: Path, info: os.stat_result) -> None:
    """Owner-only (0600), or 0640 when root owns it: root and the service's group read it."""
    mode = stat.S_IMODE(info.st_mode)
    fix = f"run: chown root:camwarden {key_file} && chmod 0640 {key_file}"
    if info.st_uid not in (0, os.geteuid()):
        raise VaultError(f"the vault key {key_file} belongs to another user; {fix}")
    allowed = 0o040 if info.st_uid == 0 else 0
    if mode & 0o077 & ~allowed:
        raise VaultError(f"the vault key {key_file} is open to others (mode {mode:04o}); {fix}")


def load_vault_key(key_file: Path | None, environ: dict[str, str] | None = None) -> bytes:
    """The vault key: the systemd credential first, else ``key_file`` (owner-only)."""
    env = os.environ if environ is None else environ
    directory = env.get("CREDENTIALS_DIRECTORY")
    if directory:
        credential = Path(directory) / CREDENTIAL_NAME
        if credential.exists():
            return _parse_key(credential.read_bytes(), f"systemd credential {CREDENTIAL_NAME}")
    if key_file is None:
        raise VaultError(
            f"no vault key: neither the systemd credential {CREDENTIAL_NAME} nor vault_key_file;"
            f' set vault_key_file = "{DEFAULT_KEY_FILE}" in the config (the file the unit'
            " loads)"
        )
    try:
        fd = os.open(key_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise VaultError(
            f"cannot open the vault key {key_file}: {exc.strerror}; run as root or as the"
            f" service user, and give the file mode 0640, owner root, group the service's"
        ) from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise VaultError(f"the vault key {key_file} is not a regular file")
        _check_key_file(key_file, info)
        return _parse_key(fh.read(KEY_BYTES * 4), str(key_file))


class Vault:
    """``<state_dir>/vault.bin``. Reads decrypt the whole file; writes replace it atomically."""

    def __init__(self, state_dir: Path, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise VaultError(f"a vault key has {KEY_BYTES} bytes")
        self.path = state_dir / "vault.bin"
        self._lock_path = state_dir / "vault.lock"
        self._key = key

    def __repr__(self) -> str:
        return f"Vault({str(self.path)!r})"

    # reading

    def _read(self) -> _Contents | None:
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise VaultError(f"cannot read {self.path}: {exc.strerror}") from exc
        if len(data) > _MAX_VAULT_BYTES or not data.startswith(HEADER):
            raise VaultError(f"{self.path} is not a camwarden vault")
        nonce, sealed = data[len(HEADER) : len(HEADER) + _NONCE], data[len(HEADER) + _NONCE :]
        try:
            plain = AESGCM(self._key).decrypt(nonce, sealed, HEADER)
        except InvalidTag as exc:
            raise VaultError(f"{self.path}: wrong vault key, or the file is damaged") from exc
        try:
            return msgspec.json.decode(plain, type=_Contents)
        except msgspec.DecodeError as exc:
            raise VaultError(f"{self.path}: unreadable contents") from exc

    def _contents(self) -> _Contents:
        contents = self._read()
        if contents is None:
            raise VaultError(f"no vault at {self.path}: add a credential with `vault set`")
        return contents

    def exists(self) -> bool:
        return self.path.exists()

    def credential(self, ref: str) -> Credential | None:
        entry = self._contents().entries.get(ref)
        return None if entry is None else Credential(entry.username, entry.password)

    def credentials(self) -> dict[str, Credential]:
        """Every entry at once (one decryption per audit, not one per camera)."""
        contents = self._read()
        if contents is None:
            return {}
        for entry in contents.entries.values():
            if entry.scores is not None:
                remember(entry.username, entry.password, entry.scores)
        return {ref: Credential(e.username, e.password) for ref, e in contents.entries.items()}

    def listing(self) -> list[tuple[str, str, str]]:
        """(ref, username, set_at) of every entry: what ``vault list`` shows."""
        contents = self._read()
        if contents is None:
            return []
        return [(ref, e.username, e.set_at) for ref, e in sorted(contents.entries.items())]

    def site_key(self) -> SiteKey | None:
        contents = self._read()
        return None if contents is None else SiteKey(base64.b64decode(contents.site_key))

    # writing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            owner = self._service_owner()
            if owner is not None:
                os.fchown(fd, *owner)
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, contents: _Contents) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._key).encrypt(nonce, msgspec.json.encode(contents), HEADER)
        atomic_write(self.path, HEADER + nonce + sealed, owner=self._service_owner())

    def _service_owner(self) -> tuple[int, int] | None:
        """Root writing from a shell gives the file to the state directory's owner (the
        service account), so the daemon can read what root wrote; None for anyone else."""
        if os.geteuid() != 0:
            return None
        info = self.path.parent.stat()
        return (info.st_uid, info.st_gid)

    def _fresh(self) -> _Contents:
        return _Contents(site_key=base64.b64encode(os.urandom(MIN_SITE_KEY_BYTES)).decode())

    def set(self, ref: str, username: str, password: str, *, now: datetime | None = None) -> None:
        if not ref or not password:
            raise VaultError("a vault entry needs a reference and a non-empty password")
        when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        scores = stored_scores(password, username)  # zxcvbn here, in the short `vault set`
        with self._locked():
            contents = self._read() or self._fresh()
            entries = {
                **contents.entries,
                ref: Entry(username=username, password=password, set_at=when, scores=scores),
            }
            self._write(msgspec.structs.replace(contents, entries=entries))

    def delete(self, ref: str) -> bool:
        """Remove ``ref``; False if there was no such entry."""
        with self._locked():
            contents = self._read()
            if contents is None or ref not in contents.entries:
                return False
            entries = {k: v for k, v in contents.entries.items() if k != ref}
            self._write(msgspec.structs.replace(contents, entries=entries))
        return True

    def record(self, ref: str) -> str | None:
        contents = self._read()
        return None if contents is None else contents.records.get(ref)

    def set_record(self, ref: str, text: str) -> None:
        """Keep ``text`` under ``ref`` (at most ``MAX_RECORD`` characters)."""
        if not ref or len(text) > MAX_RECORD:
            raise VaultError(f"a vault record needs a reference and at most {MAX_RECORD} chars")
        with self._locked():
            contents = self._read() or self._fresh()
            records = {**contents.records, ref: text}
            self._write(msgspec.structs.replace(contents, records=records))

    def set_site_key(self, secret: bytes) -> None:
        """Replace the site key (agents of one site share it, so fingerprints compare)."""
        SiteKey(secret)  # refuses a short key
        with self._locked():
            contents = self._read() or self._fresh()
            encoded = base64.b64encode(secret).decode()
            self._write(msgspec.structs.replace(contents, site_key=encoded))


def open_vault(state_dir: Path, key_file: Path | None) -> Vault | None:
    """The agent's vault, or None when no vault key is configured at all (then the agent runs
    without camera credentials). A key that is configured but unusable is a ``VaultError``."""
    if key_file is None and not os.environ.get("CREDENTIALS_DIRECTORY"):
        return None
    try:
        key = load_vault_key(key_file)
    except VaultError:
        if key_file is None:  # a credentials directory without vault.key: none configured
            return None
        raise
    return Vault(state_dir, key)
