"""TUF ngclient around the collector's repository: trusted root, refresh, verified download.

Trust: ``<cache>/metadata/root.json`` once ngclient has stored one (it follows root rotation and
keeps the newest root it verified); before that, the ``tuf_root`` of the enrollment answer
(``<state_dir>/enrollment.json``, trust on first use like ``collector_jwk``). Every ngclient
failure is translated here, at one edge, into ``FirmwareError``:

* ``metadata_rejected``: expired (freeze), older version (rollback), mixed snapshot/targets,
  bad signatures, metadata too large;
* ``target_unknown``: the signed targets do not list the command's target;
* ``download_rejected``: length or hashes differ from the signed metadata, or more bytes than
  signed (endless data); the partial file is discarded;
* ``download_failed``: the transport failed; the partial file is kept for the next attempt.

Blocking (ngclient is synchronous): the executor runs it in a worker thread.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions
from tuf.api.metadata import Metadata, Root, TargetFile
from tuf.ngclient import Updater, UpdaterConfig

from agent.firmware.errors import FirmwareError
from agent.firmware.fetcher import ResumableFetcher
from agent.firmware.manifest import ImageFacts, image_facts

log = logging.getLogger(__name__)

ENROLLMENT_FILE = "enrollment.json"


def enrollment_root(state_dir: Path) -> bytes | None:
    """The ``tuf_root`` the collector handed out at enrollment, as JSON bytes."""
    try:
        answer = json.loads((state_dir / ENROLLMENT_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    root = answer.get("tuf_root") if isinstance(answer, dict) else None
    return json.dumps(root).encode() if isinstance(root, dict) else None


@dataclass(frozen=True, slots=True)
class Downloaded:
    path: Path
    facts: ImageFacts
    resumed_from: int


class FirmwareUpdater:
    def __init__(
        self,
        cache_dir: Path,
        collector_url: str,
        bootstrap_root: bytes | None,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self.cache_dir = cache_dir
        self.metadata_dir = cache_dir / "metadata"
        self.target_dir = cache_dir / "images"
        base = collector_url.rstrip("/")
        self.metadata_url = f"{base}/tuf/metadata/"
        self.target_url = f"{base}/tuf/targets/"
        self.fetcher = ResumableFetcher(self.target_url, cache_dir / "partial", timeout_s=timeout_s)
        self._bootstrap = bootstrap_root
        self._updater: Updater | None = None
        self._info: TargetFile | None = None

    def _open(self) -> Updater:
        for d in (self.metadata_dir, self.target_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        local = (self.metadata_dir / "root.json").exists()
        if not local and self._bootstrap is None:
            raise FirmwareError("metadata_rejected", "no trusted TUF root (not enrolled?)")
        return Updater(
            str(self.metadata_dir),
            self.metadata_url,
            str(self.target_dir),
            self.target_url,
            fetcher=self.fetcher,
            config=UpdaterConfig(),
            bootstrap=None if local else self._bootstrap,
        )

    def find(self, target: str) -> ImageFacts:
        """Refresh the metadata (a fresh ngclient each time) and return the target's facts."""
        try:
            self._updater = updater = self._open()
            updater.refresh()
            info = updater.get_targetinfo(target)
        except exceptions.DownloadError as exc:
            if isinstance(exc, exceptions.DownloadLengthMismatchError):
                raise FirmwareError("metadata_rejected", f"metadata too large: {exc}") from exc
            raise FirmwareError("download_failed", f"metadata: {exc}") from exc
        except exceptions.RepositoryError as exc:
            raise FirmwareError("metadata_rejected", f"{type(exc).__name__}: {exc}") from exc
        except (ValueError, OSError) as exc:
            raise FirmwareError("metadata_rejected", f"{type(exc).__name__}: {exc}") from exc
        if info is None:
            raise FirmwareError("target_unknown", f"{target} is not in the signed targets")
        self._info = info
        return image_facts(info.path, info.length, info.hashes, info.custom)

    def image_path(self, facts: ImageFacts) -> Path:
        return self.target_dir / f"{facts.sha256}.img"

    def cached(self, facts: ImageFacts) -> bool:
        return self.image_path(facts).exists()

    def download(self, facts: ImageFacts) -> Downloaded:
        """Download (resuming) and verify the image ``find`` returned; retry once from zero
        when a resumed download does not verify (the kept prefix may be the culprit).

        Same checks as ``Updater.download_target`` (the signed length as the download's limit,
        then the signed length and hashes over the whole file), but in one pass: the fetcher
        hashes while it writes (``ResumableFetcher.fetch_target``) instead of reading the file
        again, and the verified partial file is renamed into place instead of copied. Two
        passes less over hundreds of megabytes on an SD card.
        """
        info = self._info
        if self._updater is None or info is None or info.path != facts.path:
            raise ValueError("download() needs the facts of the last find()")
        dest = self.image_path(facts)
        if dest.exists():
            return Downloaded(dest, facts, facts.length)
        url = self._url(facts)
        for attempt in (1, 2):
            try:
                verified = self.fetcher.fetch_target(url, info)
            except exceptions.DownloadError as exc:
                if isinstance(exc, exceptions.DownloadLengthMismatchError):
                    self._discard(facts)
                    raise FirmwareError("download_rejected", str(exc)) from exc
                raise FirmwareError("download_failed", str(exc)) from exc
            except exceptions.RepositoryError as exc:  # LengthOrHashMismatchError
                resumed = self.fetcher.resumed_from
                self._discard(facts)
                if resumed and attempt == 1:
                    log.warning("resumed download of %s did not verify; restarting", facts.path)
                    continue
                raise FirmwareError("download_rejected", f"{type(exc).__name__}: {exc}") from exc
            break
        verified.replace(dest)
        return Downloaded(dest, facts, self.fetcher.resumed_from)

    def _url(self, facts: ImageFacts) -> str:
        """The target URL as ngclient forms it: hash-prefixed under consistent snapshots
        (read from the root ngclient verified and stored)."""
        root = Metadata[Root].from_bytes((self.metadata_dir / "root.json").read_bytes())
        if root.signed.consistent_snapshot:
            dirname, sep, basename = facts.path.rpartition("/")
            return f"{self.target_url}{dirname}{sep}{facts.sha256}.{basename}"
        return f"{self.target_url}{facts.path}"

    def _discard(self, facts: ImageFacts) -> None:
        self.fetcher.discard(self._url(facts))

    def remove(self, facts: ImageFacts) -> None:
        self.image_path(facts).unlink(missing_ok=True)
