"""A ngclient fetcher that resumes target downloads with HTTP Range and verifies them in one pass.

Metadata goes the usual ngclient way (``download_file``: a temporary file, ``max_length``
enforced). A target (its URL is hash-prefixed, so it names the content) is fetched with
``fetch_target`` into a partial file ``<partial_dir>/<sha256(url)>.part`` that survives the
process: a later attempt asks for ``Range: bytes=<size>-`` and appends. Every byte of the file
goes once through the hashes the signed target metadata lists: the resumed prefix is read back
from the partial file, the rest is hashed as it is written. The length and every hash are then
compared with the signed ``TargetFile`` (the checks of its ``verify_length_and_hashes``, which
would read the whole file a second time) before the file is used. Limits: the declared
``Content-Length``, the bytes received and the partial file never exceed the signed length: more
is ``DownloadLengthMismatchError`` and the partial file is deleted (endless-data attack). A 200
answer to a Range request restarts from zero; a 416 means the partial file is complete.

Time: where hashing is slow (SHA-256 in software: ~250 MB/s on a Xeon, less on a Raspberry Pi)
it costs about as much CPU as the server spends sending the bytes, so a worker thread hashes one
chunk while the next one is received and written (hashlib releases the GIL). Where it is fast
(CPU SHA extensions: over 1 GB/s) the thread's hand-offs cost more than they save, so the first
chunk, hashed inline, is timed and decides.
Memory: two reusable buffers of ``chunk_size`` bytes, whatever the file size.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import urllib3
from tuf.api import exceptions
from tuf.api.metadata import TargetFile
from tuf.ngclient.fetcher import FetcherInterface

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
INLINE_HASH_RATE = 1e9  # bytes/s from which hashing inline beats the worker thread


class _Hash(Protocol):
    def update(self, data: memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


class ResumableFetcher(FetcherInterface):
    def __init__(
        self,
        target_base_url: str,
        partial_dir: Path,
        *,
        timeout_s: float = 30.0,
        chunk_size: int = CHUNK,
    ) -> None:
        self.target_base_url = target_base_url
        self.partial_dir = partial_dir
        self.chunk_size = chunk_size
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=urllib3.Retry(total=0, redirect=0),
            headers={"User-Agent": "camwarden-agent"},
        )
        self.resumed_from = 0  # bytes already present when the last target download started

    def _get(self, url: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        try:
            response = self._http.request(
                "GET", url, headers=headers, preload_content=False, decode_content=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise exceptions.DownloadError(f"cannot fetch {url}: {exc}") from exc
        return response

    def _fetch(self, url: str) -> Iterator[bytes]:
        response = self._get(url, {})
        if response.status != 200:
            _finish(response, complete=False)
            raise exceptions.DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
        return self._chunks(response)

    def _chunks(self, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        complete = False
        try:
            yield from response.stream(self.chunk_size)
            complete = True
        except urllib3.exceptions.HTTPError as exc:
            raise exceptions.DownloadError(f"download interrupted: {exc}") from exc
        finally:
            _finish(response, complete=complete)

    def partial_path(self, url: str) -> Path:
        return self.partial_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.part"

    def fetch_target(self, url: str, target: TargetFile) -> Path:
        """Download ``url`` into its partial file, resuming, and verify the whole file against
        ``target`` (the signed length and every signed hash); return the verified partial file.

        Raises ``DownloadLengthMismatchError`` (partial file deleted) for more bytes than
        signed, ``DownloadError`` (partial file kept) when the transport fails and
        ``LengthOrHashMismatchError`` when the complete file does not verify.
        """
        digests = _digests(target)
        self.partial_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.partial_path(url)
        with open(path, "a+b") as part:
            try:
                length = self._complete(url, part, target.length, digests)
            except exceptions.DownloadLengthMismatchError:
                part.close()
                path.unlink(missing_ok=True)
                raise
        _verify(target, length, digests)
        return path

    def _complete(
        self, url: str, part: io.BufferedRandom, max_length: int, digests: list[_Hash]
    ) -> int:
        """Bring the partial file to its end, feeding every byte of it to ``digests`` once;
        return its length."""
        have = part.seek(0, os.SEEK_END)
        self.resumed_from = have
        if have > max_length:
            raise exceptions.DownloadLengthMismatchError(
                f"partial file of {have} bytes exceeds the signed length {max_length}"
            )
        buffers = (memoryview(bytearray(self.chunk_size)), memoryview(bytearray(self.chunk_size)))
        if have == max_length:
            _hash_prefix(part, have, buffers[0], digests)
            return have  # complete
        headers = {"Range": f"bytes={have}-"} if have else {}
        response = self._get(url, headers)
        complete = False
        try:
            if response.status == 416 and have:
                _hash_prefix(part, have, buffers[0], digests)
                return have
            if response.status == 200 and have:
                log.info("server ignored the range request; downloading %s from the start", url)
                part.truncate(0)
                have = 0
            elif response.status not in (200, 206):
                raise exceptions.DownloadHTTPError(
                    f"HTTP {response.status} for {url}", response.status
                )
            if have:
                log.info("resuming %s at byte %d of %d", url, have, max_length)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and have + int(declared) > max_length:
                raise exceptions.DownloadLengthMismatchError(
                    f"server announces {have + int(declared)} bytes, signed length {max_length}"
                )
            _hash_prefix(part, have, buffers[0], digests)
            try:
                have = _receive(
                    response, part, have, max_length=max_length, buffers=buffers, digests=digests
                )
            except urllib3.exceptions.HTTPError as exc:
                part.flush()
                raise exceptions.DownloadError(f"download of {url} interrupted: {exc}") from exc
            part.flush()  # no fsync: a torn tail after a power cut fails verification, restarts
            complete = True
        finally:
            _finish(response, complete=complete)
        return have

    def discard(self, url: str) -> None:
        self.partial_path(url).unlink(missing_ok=True)


def _finish(response: urllib3.BaseHTTPResponse, *, complete: bool) -> None:
    """Give the connection back only when its response was read to the end; an unread body
    (an error page, an endless stream we cut off) must never reach the next request."""
    if not complete:
        response.close()
        conn = getattr(response, "connection", None)
        if conn is not None:
            conn.close()
    response.release_conn()


def _digests(target: TargetFile) -> list[_Hash]:
    """One hash object per algorithm the signed metadata lists (TUF's names: hashlib's, and
    ``blake2b-256``); an algorithm this Python lacks fails verification, as in ngclient."""
    try:
        return [
            hashlib.blake2b(digest_size=32) if algo == "blake2b-256" else hashlib.new(algo)
            for algo in target.hashes
        ]
    except (ValueError, TypeError) as exc:
        raise exceptions.LengthOrHashMismatchError(f"unsupported hash algorithm: {exc}") from exc


def _hash_prefix(
    part: io.BufferedRandom, length: int, buffer: memoryview, digests: list[_Hash]
) -> None:
    """Feed the first ``length`` bytes of the partial file (what an earlier attempt wrote)
    to ``digests``; leaves the file position at its end."""
    part.seek(0)
    left = length
    while left:
        got = part.readinto(buffer[: min(left, len(buffer))])
        if not got:
            raise exceptions.DownloadError("partial file shrank while resuming")
        left -= got
        _update(digests, buffer[:got])
    part.seek(0, os.SEEK_END)


def _receive(
    response: urllib3.BaseHTTPResponse,
    part: io.BufferedRandom,
    have: int,
    *,
    max_length: int,
    buffers: tuple[memoryview, memoryview],
    digests: list[_Hash],
) -> int:
    """Append the body to the partial file and to ``digests``, never beyond ``max_length``;
    return the file's length. The first chunk is hashed inline and timed; if hashing is slower
    than ``INLINE_HASH_RATE``, chunks then alternate between the two buffers: one is hashed by
    the worker while the next is received into the other."""
    hasher: ThreadPoolExecutor | None = None
    hashing: Future[None] | None = None
    try:
        for turn in itertools.count():
            buffer = buffers[turn % 2]  # the other one may still be being hashed
            got = response.readinto(buffer)
            if not got:
                break
            have += got
            if have > max_length:
                raise exceptions.DownloadLengthMismatchError(
                    f"received more than the signed length {max_length}"
                )
            chunk = buffer[:got]
            part.write(chunk)
            if hasher is not None:
                if hashing is not None:
                    hashing.result()  # frees the buffer the next turn receives into
                hashing = hasher.submit(_update, digests, chunk)
            elif turn:
                _update(digests, chunk)
            else:
                started = time.perf_counter()
                _update(digests, chunk)
                if got > INLINE_HASH_RATE * (time.perf_counter() - started):
                    continue
                hasher = ThreadPoolExecutor(1, thread_name_prefix="firmware-hash")
        if hashing is not None:
            hashing.result()
    finally:
        if hasher is not None:
            hasher.shutdown()
    return have


def _update(digests: list[_Hash], chunk: memoryview) -> None:
    for digest in digests:
        digest.update(chunk)


def _verify(target: TargetFile, length: int, digests: list[_Hash]) -> None:
    """``TargetFile.verify_length_and_hashes`` on digests taken while the file was written:
    the same checks and exception, without reading the file again (an unknown algorithm
    already failed in ``_digests``, before the download)."""
    if length != target.length:
        raise exceptions.LengthOrHashMismatchError(
            f"Observed length {length} does not match expected length {target.length}"
        )
    for (algo, expected), digest in zip(target.hashes.items(), digests, strict=True):
        observed = digest.hexdigest()
        if observed != expected:  # public values: no constant-time need (nor its ASCII limit)
            raise exceptions.LengthOrHashMismatchError(
                f"Observed {algo} hash {observed} does not match expected hash {expected}"
            )
