"""The firmware repository, secured with The Update Framework (python-tuf Metadata API).

Role separation (docs/adr/0010-firmware-distribution.md):

* ``root`` and ``targets`` are signed OFFLINE. Their private keys never reach the collector: the
  collector writes an unsigned *bundle* (``export_bundle``), ``camwarden-server firmware sign``
  adds signatures on the offline machine (``sign_bundle``, pure), and ``import_signed`` checks
  the thresholds and publishes. Root rotation goes through the same bundle: the next root must
  meet the threshold of the current root AND of itself.
* ``snapshot`` and ``timestamp`` are signed ONLINE with keys under ``<tuf>/online`` (mode 0600),
  with short expiries; ``refresh`` re-signs them well before they expire (``camwarden-server
  run`` calls it every tick).

Layout under ``<state_dir>/tuf`` (consistent snapshots, as ngclient expects by default)::

    metadata/  N.root.json  V.targets.json  V.snapshot.json  timestamp.json   (served)
    targets/   <dir>/<sha256>.<name>                                         (served)
    online/    snapshot.key  timestamp.key                                   (never served)
    incoming/  uploads being hashed

Every write is atomic (temporary file, then rename) and ordered so that a reader never sees a
timestamp that names files not yet written; a file lock serialises writers across processes.
Errors: ``RepositoryError`` (with ``NotInitialised``, ``BadBundle``) for everything refused here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, Key, Signer, SSlibKey
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from service.files import atomic_write, write_private

BUNDLE_FORMAT: Final = "camwarden-tuf-bundle/1"
ONLINE_ROLES: Final = (Snapshot.type, Timestamp.type)
_METADATA_NAME = re.compile(r"^(?:[1-9][0-9]{0,9}\.)?(root|targets|snapshot|timestamp)\.json$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_SERIALIZER = JSONSerializer(compact=False)


class RepositoryError(Exception):
    """The repository refused an operation (the message says why)."""


class NotInitialised(RepositoryError):
    """``firmware init`` has not been run, or its first bundle not imported yet."""


class BadBundle(RepositoryError):
    """A bundle is malformed, stale, or its signatures do not meet a threshold."""


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """How long each role's metadata stays valid after signing."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=180)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A file the next targets metadata lists, with the custom fields agents read."""

    path: str
    length: int
    sha256: str
    custom: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RoleStatus:
    role: str
    version: int
    expires: datetime
    keyids: tuple[str, ...]
    threshold: int


def valid_target_path(path: str) -> bool:
    parts = path.split("/")
    return 1 <= len(parts) <= 4 and all(_SEGMENT.match(p) and ".." not in p for p in parts)


def valid_metadata_name(name: str) -> bool:
    return _METADATA_NAME.match(name) is not None


def due(expires: datetime, lifetime: timedelta, now: datetime) -> bool:
    """Re-sign once less than half of the lifetime is left (pure; tested at the edges)."""
    return expires - now < lifetime / 2


# -- keys ------------------------------------------------------------------------------------


def generate_key(path: Path) -> SSlibKey:
    """A new Ed25519 key: private PEM at ``path`` (0600, never overwritten), public at .pub."""
    signer = CryptoSigner.generate_ed25519()
    write_private(path, signer.private_bytes)
    public = signer.public_key
    if not isinstance(public, SSlibKey):  # CryptoSigner holds an SSlibKey: never seen otherwise
        raise RepositoryError(f"the new key is a {type(public).__name__}, not an SSlibKey")
    public_path(path).write_text(json.dumps(public.to_dict() | {"keyid": public.keyid}, indent=2))
    return public


def public_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def load_signer(path: Path) -> CryptoSigner:
    try:
        private = load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise RepositoryError(f"{path.name} is not a private key") from exc
    return CryptoSigner(private)


def load_public(path: Path) -> Key:
    try:
        data = json.loads(path.read_text())
        keyid = data.pop("keyid")
        return Key.from_dict(keyid, data)
    except (ValueError, KeyError, TypeError) as exc:
        raise RepositoryError(f"{path.name} is not a public key file") from exc


# -- metadata helpers --------------------------------------------------------------------------


def _expiry(now: datetime, lifetime: timedelta) -> datetime:
    return (now + lifetime).replace(microsecond=0)


def _parse(data: Any, role: str) -> Metadata[Any]:
    try:
        md: Metadata[Any] = Metadata.from_bytes(json.dumps(data).encode())
    except (DeserializationError, TypeError, ValueError) as exc:
        raise BadBundle(f"the bundle's {role} metadata is malformed: {exc}") from exc
    if md.signed.type != role:
        raise BadBundle(f"the bundle's {role} entry holds {md.signed.type} metadata")
    return md


def _meets(delegator: Root, role: str, md: Metadata[Any]) -> None:
    try:
        delegator.verify_delegate(role, md.signed_bytes, md.signatures)
    except UnsignedMetadataError as exc:
        raise BadBundle(f"{role} version {md.signed.version}: {exc}") from exc


def _bundle(bundle: bytes) -> dict[str, Any]:
    """The bundle's JSON object; BadBundle if it is not one of ours."""
    try:
        data = json.loads(bundle)
    except ValueError as exc:
        raise BadBundle("not a bundle (JSON)") from exc
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BadBundle(f"not a {BUNDLE_FORMAT} bundle")
    return data


def sign_bundle(bundle: bytes, signer: Signer) -> tuple[bytes, list[str]]:
    """Add ``signer``'s signature to every role of the bundle it may sign (pure, offline).

    A root key signs the next root when it is a root key of the current or of the next root; a
    targets key signs the targets metadata when the effective root (next if any, else current)
    lists it for targets. Returns the new bundle and the roles signed.
    """
    data = _bundle(bundle)
    keyid = signer.public_key.keyid
    current = _parse(data["current_root"], Root.type).signed if data.get("current_root") else None
    nxt = _parse(data["root"], Root.type) if data.get("root") else None
    effective = nxt.signed if nxt else current
    if effective is None:
        raise BadBundle("the bundle holds no root")
    signed: list[str] = []
    if nxt is not None and any(
        keyid in r.roles[Root.type].keyids for r in (current, nxt.signed) if r is not None
    ):
        nxt.sign(signer, append=True)
        data["root"] = nxt.to_dict()
        signed.append(Root.type)
    if data.get("targets") and keyid in effective.roles[Targets.type].keyids:
        targets = _parse(data["targets"], Targets.type)
        targets.sign(signer, append=True)
        data["targets"] = targets.to_dict()
        signed.append(Targets.type)
    return json.dumps(data, indent=1, sort_keys=True).encode(), signed


def describe_bundle(bundle: bytes) -> list[str]:
    """What a bundle asks to sign, one line each, for the offline signer to read first."""
    data = json.loads(bundle)
    lines: list[str] = []
    if data.get("root"):
        root = _parse(data["root"], Root.type).signed
        for name, role in root.roles.items():
            lines.append(
                f"root v{root.version}: {name} keys {', '.join(k[:12] for k in role.keyids)} "
                f"threshold {role.threshold}"
            )
    if data.get("targets"):
        targets = _parse(data["targets"], Targets.type).signed
        lines.append(f"targets v{targets.version}, expires {targets.expires.isoformat()}")
        for path, tf in sorted(targets.targets.items()):
            lines.append(f"  {path}  {tf.length} bytes  sha256 {tf.hashes.get('sha256', '?')}")
    return lines


# -- the repository --------------------------------------------------------------------------


class TufRepository:
    def __init__(self, root: Path, lifetimes: Lifetimes = Lifetimes()) -> None:
        self.dir = root
        self.metadata_dir = root / "metadata"
        self.targets_dir = root / "targets"
        self.incoming_dir = root / "incoming"
        self._online_dir = root / "online"
        self._pending_root = root / "pending-root.json"
        self.lifetimes = lifetimes

    @classmethod
    def under(cls, state_dir: str | Path, lifetimes: Lifetimes = Lifetimes()) -> TufRepository:
        return cls(Path(state_dir) / "tuf", lifetimes)

    # -- files ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_md(self, md: Metadata[Any], name: str) -> None:
        atomic_write(self.metadata_dir / name, md.to_bytes(_SERIALIZER), 0o644)

    def _load(self, name: str) -> Metadata[Any] | None:
        path = self.metadata_dir / name
        return Metadata.from_bytes(path.read_bytes()) if path.exists() else None

    def metadata_file(self, name: str) -> Path | None:
        """The served file of a metadata name (``3.root.json``, ``timestamp.json``...)."""
        if not valid_metadata_name(name):
            return None
        path = self.metadata_dir / name
        return path if path.is_file() else None

    def target_file(self, path: str) -> Path | None:
        """The served file of a hash-prefixed target path; None unless it exists."""
        if not valid_target_path(path):
            return None
        file = self.targets_dir / path
        return file if file.is_file() else None

    def stored_path(self, target: str, sha256: str) -> Path:
        """Where the content of ``target`` lives (consistent snapshot: hash-prefixed name)."""
        head, _, name = target.rpartition("/")
        return self.targets_dir / head / f"{sha256}.{name}"

    # -- current state -------------------------------------------------------------------

    def root_version(self) -> int:
        versions = [
            int(p.name.split(".", 1)[0]) for p in self.metadata_dir.glob("*.root.json")
        ]  # the directory holds only files we wrote, named N.root.json
        return max(versions, default=0)

    def initialised(self) -> bool:
        return self.root_version() > 0 and (self.metadata_dir / "timestamp.json").exists()

    def trusted_root(self) -> bytes | None:
        """The newest root, the one agents are given at enrollment (they update from it)."""
        version = self.root_version()
        return (self.metadata_dir / f"{version}.root.json").read_bytes() if version else None

    def _root(self) -> Metadata[Root] | None:
        version = self.root_version()
        return self._load(f"{version}.root.json") if version else None

    def _chain(self) -> tuple[Metadata[Timestamp], Metadata[Snapshot], Metadata[Targets]]:
        timestamp = self._load("timestamp.json")
        if timestamp is None:
            raise NotInitialised("the repository has not been initialised and signed yet")
        snap_version = timestamp.signed.snapshot_meta.version
        snapshot = self._load(f"{snap_version}.snapshot.json")
        if snapshot is None:  # written before the timestamp that names it
            raise RepositoryError(f"{snap_version}.snapshot.json named by timestamp is missing")
        targets_version = snapshot.signed.meta["targets.json"].version
        targets = self._load(f"{targets_version}.targets.json")
        if targets is None:  # written before the snapshot that names it
            raise RepositoryError(f"{targets_version}.targets.json named by snapshot is missing")
        return timestamp, snapshot, targets

    def published_targets(self) -> dict[str, TargetFile]:
        """The targets agents can download now (empty before the first signed import)."""
        if not self.initialised():
            return {}
        return dict(self._chain()[2].signed.targets)

    def status(self) -> list[RoleStatus]:
        root = self._root()
        if root is None:
            raise NotInitialised("no root yet: run firmware init, sign and import its bundle")
        result = [self._status(root.signed, Root.type, root.signed)]
        if self.initialised():
            result += [self._status(root.signed, md.signed.type, md.signed) for md in self._chain()]
        return result

    @staticmethod
    def _status(root: Root, role: str, signed: Any) -> RoleStatus:
        r = root.roles[role]
        return RoleStatus(role, signed.version, signed.expires, tuple(r.keyids), r.threshold)

    # -- set-up and rotation (unsigned roots wait in pending-root.json) ------------------------

    def _online_signer(self, role: str) -> CryptoSigner:
        return load_signer(self._online_dir / f"{role}.key")

    def _online_keys(self) -> dict[str, Key]:
        keys: dict[str, Key] = {}
        self._online_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for role in ONLINE_ROLES:
            path = self._online_dir / f"{role}.key"
            keys[role] = load_public(public_path(path)) if path.exists() else generate_key(path)
        return keys

    def prepare_root(
        self,
        root_keys: Sequence[Key],
        root_threshold: int,
        targets_keys: Sequence[Key],
        targets_threshold: int,
        now: datetime,
    ) -> int:
        """Write the next root (v1 at set-up, else current+1), unsigned, for the next bundle.

        The online snapshot and timestamp keys are created on first use and kept across
        rotations. Returns the version prepared.
        """
        if not (1 <= root_threshold <= len(root_keys)):
            raise RepositoryError("the root threshold must be between 1 and the number of keys")
        if not (1 <= targets_threshold <= len(targets_keys)):
            raise RepositoryError("the targets threshold must be between 1 and the number of keys")
        with self._locked():
            online = self._online_keys()
            root = Root(version=self.root_version() + 1, expires=_expiry(now, self.lifetimes.root))
            root.roles = {
                Root.type: Role([], root_threshold),
                Targets.type: Role([], targets_threshold),
                Snapshot.type: Role([], 1),
                Timestamp.type: Role([], 1),
            }
            for key in root_keys:
                root.add_key(key, Root.type)
            for key in targets_keys:
                root.add_key(key, Targets.type)
            for role, key in online.items():
                root.add_key(key, role)
            atomic_write(self._pending_root, Metadata(root).to_bytes(_SERIALIZER), 0o644)
            return root.version

    def export_bundle(self, targets: Sequence[TargetSpec], now: datetime) -> bytes:
        """The unsigned bundle: the pending root if any, and targets listing ``targets``."""
        pending = (
            Metadata[Root].from_bytes(self._pending_root.read_bytes())
            if self._pending_root.exists()
            else None
        )
        current = self._root()
        if pending is None and current is None:
            raise NotInitialised("run firmware init first")
        version = self._chain()[2].signed.version + 1 if self.initialised() else 1
        listed = Targets(version=version, expires=_expiry(now, self.lifetimes.targets))
        for spec in targets:
            if not valid_target_path(spec.path):
                raise RepositoryError(f"invalid target path {spec.path!r}")
            listed.targets[spec.path] = TargetFile(
                spec.length, {"sha256": spec.sha256}, spec.path, {"custom": dict(spec.custom)}
            )
        data = {
            "format": BUNDLE_FORMAT,
            "created_at": now.isoformat(),
            "current_root": current.to_dict() if current else None,
            "root": pending.to_dict() if pending else None,
            "targets": Metadata(listed).to_dict(),
        }
        return json.dumps(data, indent=1, sort_keys=True).encode()

    def import_signed(self, bundle: bytes, now: datetime) -> list[str]:
        """Check every threshold, then publish root (if any), targets, snapshot and timestamp.

        Refuses a bundle whose versions are not the next ones (stale or replayed bundles).
        Returns what was published, e.g. ``["root v2", "targets v3"]``.
        """
        data = _bundle(bundle)
        with self._locked():
            current = self._root()
            published: list[str] = []
            root = current
            if data.get("root"):
                root = _parse(data["root"], Root.type)
                expected = (current.signed.version if current else 0) + 1
                if root.signed.version != expected:
                    raise BadBundle(f"root version {root.signed.version}, expected {expected}")
                if current is not None:
                    _meets(current.signed, Root.type, root)  # the old root vouches for the new
                _meets(root.signed, Root.type, root)  # and the new root for itself
            if root is None:
                raise NotInitialised("no root: run firmware init first")
            targets = _parse(data.get("targets"), Targets.type)
            _meets(root.signed, Targets.type, targets)
            if self.initialised():
                timestamp, snapshot, live = self._chain()
                if targets.signed.version <= live.signed.version:
                    raise BadBundle(
                        f"targets version {targets.signed.version} is not newer than the "
                        f"published {live.signed.version}"
                    )
                snap_version = snapshot.signed.version + 1
                ts_version = timestamp.signed.version + 1
            else:
                snap_version = ts_version = 1
            for path, tf in targets.signed.targets.items():
                if not self.stored_path(path, tf.hashes.get("sha256", "")).is_file():
                    raise BadBundle(f"target {path} is not stored on this collector")
            if root is not current:
                self._write_md(root, f"{root.signed.version}.root.json")
                published.append(f"root v{root.signed.version}")
            self._write_md(targets, f"{targets.signed.version}.targets.json")
            published.append(f"targets v{targets.signed.version}")
            self._publish_online(targets.signed.version, snap_version, ts_version, now)
            self._pending_root.unlink(missing_ok=True)
            return published

    def _publish_online(
        self, targets_version: int, snap_version: int, ts_version: int, now: datetime
    ) -> None:
        snapshot = Snapshot(
            version=snap_version,
            expires=_expiry(now, self.lifetimes.snapshot),
            meta={"targets.json": MetaFile(version=targets_version)},
        )
        snap_md = Metadata(snapshot)
        snap_md.sign(self._online_signer(Snapshot.type))
        self._write_md(snap_md, f"{snap_version}.snapshot.json")
        timestamp = Timestamp(
            version=ts_version,
            expires=_expiry(now, self.lifetimes.timestamp),
            snapshot_meta=MetaFile(version=snap_version),
        )
        ts_md = Metadata(timestamp)
        ts_md.sign(self._online_signer(Timestamp.type))
        self._write_md(ts_md, "timestamp.json")  # last: it names what is already written

    def refresh(self, now: datetime) -> bool:
        """Re-sign snapshot and timestamp when either is past half its lifetime."""
        if not self.initialised():
            return False
        with self._locked():
            timestamp, snapshot, targets = self._chain()
            snap_due = due(snapshot.signed.expires, self.lifetimes.snapshot, now)
            if not (snap_due or due(timestamp.signed.expires, self.lifetimes.timestamp, now)):
                return False
            self._publish_online(
                targets.signed.version,
                snapshot.signed.version + 1,
                timestamp.signed.version + 1,
                now,
            )
            return True
