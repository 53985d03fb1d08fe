"""A ngclient fetcher that resumes target downloads with HTTP Range and never buffers a file.

Metadata goes the usual ngclient way (a temporary file, ``max_length`` enforced). A target URL
(under ``target_base_url``; hash-prefixed, so the URL names the content) is downloaded into a
partial file ``<partial_dir>/<sha256(url)>.part`` that survives the process: a later attempt
asks for ``Range: bytes=<size>-`` and appends. ``download_file`` yields that file to ngclient,
which verifies length and hashes over the *whole* file, resumed prefix included, before it is
used (``Updater.download_target``). Limits: the declared ``Content-Length``, the bytes received
and the partial file never exceed ``max_length`` (the signed length): more is
``DownloadLengthMismatchError`` and the partial file is deleted (endless-data attack). A 200
answer to a Range request restarts from zero; a 416 means the partial file is complete.

Memory: one chunk (``chunk_size``) at a time, whatever the file size.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import urllib3
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024


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

    @contextlib.contextmanager
    def download_file(self, url: str, max_length: int) -> Iterator[IO[bytes]]:
        if not url.startswith(self.target_base_url):
            with super().download_file(url, max_length) as temp:
                yield temp
            return
        self.partial_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.partial_path(url)
        with open(path, "a+b") as part:
            try:
                self._complete(url, part, max_length)
            except exceptions.DownloadLengthMismatchError:
                part.close()
                path.unlink(missing_ok=True)
                raise
            part.seek(0)
            yield part

    def _complete(self, url: str, part: IO[bytes], max_length: int) -> None:
        have = part.seek(0, os.SEEK_END)
        self.resumed_from = have
        if have > max_length:
            raise exceptions.DownloadLengthMismatchError(
                f"partial file of {have} bytes exceeds the signed length {max_length}"
            )
        if have == max_length:
            return  # complete; ngclient verifies the hashes
        headers = {"Range": f"bytes={have}-"} if have else {}
        response = self._get(url, headers)
        complete = False
        try:
            if response.status == 416 and have:
                return
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
            part.seek(0, os.SEEK_END)
            try:
                for chunk in response.stream(self.chunk_size):
                    have += len(chunk)
                    if have > max_length:
                        raise exceptions.DownloadLengthMismatchError(
                            f"received more than the signed length {max_length}"
                        )
                    part.write(chunk)
            except urllib3.exceptions.HTTPError as exc:
                part.flush()
                raise exceptions.DownloadError(f"download of {url} interrupted: {exc}") from exc
            part.flush()  # no fsync: a torn tail after a power cut fails verification, restarts
            complete = True
        finally:
            _finish(response, complete=complete)

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
