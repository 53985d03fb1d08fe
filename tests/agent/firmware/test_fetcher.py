"""The one-pass target download against the collector's TUF server on loopback: a resumed
prefix is hashed with the rest, a bad prefix restarts the download, and every algorithm the
signed metadata lists is checked the way ``TargetFile.verify_length_and_hashes`` checks it."""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any

import pytest
from tuf.api import exceptions
from tuf.api.metadata import TargetFile

from agent.firmware import fetcher
from agent.firmware.errors import FirmwareError
from agent.firmware.updater import FirmwareUpdater
from server.firmware.tuf_repo import TufRepository
from tests.agent.commands.world import TARGET
from tests.agent.conftest import Collector

pytestmark = pytest.mark.integration


def _updater(collector: Collector, tmp_path: Path) -> FirmwareUpdater:
    root = TufRepository.under(collector.state).trusted_root()
    return FirmwareUpdater(tmp_path / "agent", collector.base_url, root)


def _stored(collector: Collector) -> Path:
    return next((collector.state / "tuf" / "targets").rglob("*.fw.bin"))


def _url(updater: FirmwareUpdater, collector: Collector) -> str:
    return f"{updater.target_url}{TARGET.rsplit('/', 1)[0]}/{_stored(collector).name}"


def _keep(updater: FirmwareUpdater, collector: Collector, prefix: bytes) -> Path:
    """What an interrupted attempt leaves behind: ``prefix`` in the partial file."""
    path = updater.fetcher.partial_path(_url(updater, collector))
    path.parent.mkdir(mode=0o700, parents=True)
    path.write_bytes(prefix)
    return path


@pytest.mark.parametrize("kept", [1, 1000, -1, 0], ids=["1", "1000", "all-but-1", "complete"])
def test_a_resumed_download_verifies_over_the_whole_file(
    collector_tuf: Collector, tmp_path: Path, kept: int
) -> None:
    data = _stored(collector_tuf).read_bytes()
    up = _updater(collector_tuf, tmp_path)
    facts = up.find(TARGET)
    part = _keep(up, collector_tuf, data[:kept] if kept else data)
    got = up.download(facts)
    assert got.resumed_from == len(data[:kept] if kept else data)
    assert got.path.read_bytes() == data
    assert not part.exists()


@pytest.mark.parametrize("complete", [False, True])
def test_a_corrupt_kept_prefix_restarts_the_download_from_zero(
    collector_tuf: Collector, tmp_path: Path, caplog: pytest.LogCaptureFixture, complete: bool
) -> None:
    data = _stored(collector_tuf).read_bytes()
    bad = bytes([data[0] ^ 1]) + data[1 : len(data) if complete else 1000]
    up = _updater(collector_tuf, tmp_path)
    facts = up.find(TARGET)
    _keep(up, collector_tuf, bad)
    with caplog.at_level(logging.WARNING, "agent.firmware.updater"):
        got = up.download(facts)
    assert "did not verify; restarting" in caplog.text
    assert got.resumed_from == 0
    assert got.path.read_bytes() == data


def test_a_partial_file_longer_than_signed_is_rejected_and_deleted(
    collector_tuf: Collector, tmp_path: Path
) -> None:
    data = _stored(collector_tuf).read_bytes()
    up = _updater(collector_tuf, tmp_path)
    facts = up.find(TARGET)
    part = _keep(up, collector_tuf, data + b"\0")
    with pytest.raises(FirmwareError) as refused:
        up.download(facts)
    assert refused.value.reason == "download_rejected"
    assert not part.exists()


def test_every_listed_algorithm_is_checked_as_tuf_checks_it(
    collector_tuf: Collector, tmp_path: Path
) -> None:
    """Hashes made by tuf's own ``TargetFile.from_data`` (so the algorithm names, blake2b-256
    included, mean what they mean to tuf); one wrong hash or an unknown algorithm fails."""
    data = _stored(collector_tuf).read_bytes()
    up = _updater(collector_tuf, tmp_path)
    url = _url(up, collector_tuf)
    signed = TargetFile.from_data(TARGET, data, ["sha256", "sha512", "blake2b-256"])
    assert up.fetcher.fetch_target(url, signed).read_bytes() == data
    up.fetcher.discard(url)
    wrong = dict(signed.hashes, sha512="00" * 64)
    unknown = dict(signed.hashes, nosuchhash="00")
    for hashes in (wrong, unknown):
        with pytest.raises(exceptions.LengthOrHashMismatchError):
            up.fetcher.fetch_target(url, TargetFile(len(data), hashes, TARGET))
        up.fetcher.discard(url)
    with pytest.raises(exceptions.LengthOrHashMismatchError, match="length"):
        up.fetcher.fetch_target(url, TargetFile(len(data) + 1, signed.hashes, TARGET))


@pytest.mark.parametrize(("rate", "where"), [(0.0, "inline"), (math.inf, "worker")])
def test_the_first_chunk_decides_whether_hashing_moves_to_a_worker_thread(
    collector_tuf: Collector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rate: float,
    where: str,
) -> None:
    """Hashing faster than ``INLINE_HASH_RATE`` stays inline; slower, every chunk after the
    first is hashed by the worker. Either way every byte is hashed once, in order."""
    data = _stored(collector_tuf).read_bytes()
    up = _updater(collector_tuf, tmp_path)
    up.fetcher.chunk_size = 256
    threads: list[str] = []
    update = fetcher._update

    def recording(digests: list[Any], chunk: memoryview) -> None:
        threads.append(threading.current_thread().name)
        update(digests, chunk)

    monkeypatch.setattr(fetcher, "INLINE_HASH_RATE", rate)
    monkeypatch.setattr(fetcher, "_update", recording)
    signed = TargetFile.from_data(TARGET, data, ["sha256", "sha512"])
    assert up.fetcher.fetch_target(_url(up, collector_tuf), signed).read_bytes() == data
    assert len(threads) == -(-len(data) // 256) > 2
    workers = {n.startswith("firmware-hash") for n in threads[1:]}
    assert workers == {where == "worker"}
    assert threads[0] == threading.current_thread().name
