"""The one HTTP client factory for the vendor APIs (ISAPI, Dahua CGI, VAPIX).

Every adapter that speaks HTTP builds its client here, so the safety limits live in one place:

* digest authentication through ``httpx.DigestAuth`` (Basic is never offered by the agent);
* the adapter's timeout on connect, read, write and pool, and a small connection pool;
* bodies are streamed and refused over ``max_response_bytes`` (``BadResponse``), counted after
  decompression and before they are parsed; a larger declared ``Content-Length`` is refused early;
* the content type is checked against what the endpoint documents (``BadResponse``);
* statuses are sorted the way the checks need them: 401 ``AuthFailed`` (or ``LockedOut`` when
  the vendor's lock detector recognises the body), 403 ``AuthFailed``, 404/501 ``Unsupported``,
  502-504 ``Unreachable``, anything else ``BadResponse``;
* passwords some vendor APIs take in the query string (Dahua ``modifyPassword``, VAPIX
  ``pwdgrp.cgi``) are passed as ``secret_params``: they are added to the request only, never to
  the path our errors name, and httpx's own request log line shows them as ``***``.

HTTPS: hardened cameras close plain HTTP or answer every request on it with a redirect to
HTTPS (baseline COM-01). Redirects are never followed; instead ``https_only`` asks plain HTTP
once, without credentials, and an adapter that finds it closed or redirecting to ``https://``
talks to the target's HTTPS port from then on (``HttpAdapter``, and the ONVIF client). The same
answer to ``GET /`` (``landing``) carries the web server's ``Server`` header: identification
tries first the adapter whose vendor it names (``HttpAdapter.server_banners``).

Requests without credentials that need no session (``landing``, the web checks' probes) go
through ``anonymous_session`` instead: aiohttp, loaded with the ONVIF library anyway, at about a
third of httpx's CPU per request on a new connection, with the same limits.

TLS: cameras ship self-signed certificates, so the HTTPS client does not verify the chain
(``TLS_VERIFY_REASON``); ``agent.identify`` records it in the identity's source. The adapters
only read configuration through it; the TLS facts of a camera (versions, ciphers, certificate,
shared keys: COM-02/COM-03) are collected by a separate handshake scan and never inferred from a
connection that succeeded here.
"""

from __future__ import annotations

import functools
import logging
import ssl
from abc import abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

import httpx

from agent.vendors.base import (
    Adapter,
    AdapterConfig,
    AuthFailed,
    BadResponse,
    CameraError,
    Unreachable,
    Unsupported,
)
from agent.vendors.models import Credential, Interface, Landing, Target

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "JSON_TYPES",
    "SECRET_QUERY_KEYS",
    "TLS_VERIFY_REASON",
    "FileBody",
    "HttpAdapter",
    "LockDetector",
    "Reply",
    "anonymous_session",
    "base_url",
    "digest",
    "fetch",
    "https_only",
    "landing",
    "make_client",
    "unverified_tls",
]

TLS_VERIFY_REASON: Final = (
    "cameras present self-signed certificates; the chain is not verified for configuration "
    "reads, and certificate and protocol facts are audited by the TLS scan, not assumed here"
)
_LIMITS: Final = httpx.Limits(max_connections=2, max_keepalive_connections=1, keepalive_expiry=5)
_CHUNK: Final = 16 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_NO_AUTH: Final = httpx.Auth()  # sends the request as it is: for pre-auth endpoints
JSON_TYPES: Final = frozenset({"application/json"})
# Query parameters that carry passwords in the vendor APIs we call (``secret_params`` only).
SECRET_QUERY_KEYS: Final = frozenset({"pwd", "pwdOld"})


class _SecretQueryFilter(logging.Filter):
    """httpx logs every request with its full URL (INFO): mask the password parameters, whatever
    level the site configures for the ``httpx`` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _masked(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def _masked(url: httpx.URL) -> httpx.URL:
    if SECRET_QUERY_KEYS.isdisjoint(url.params.keys()):
        return url
    pairs = [(k, "***" if k in SECRET_QUERY_KEYS else v) for k, v in url.params.multi_items()]
    return url.copy_with(params=pairs)


_SECRET_QUERY_FILTER: Final = _SecretQueryFilter()


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete, size-checked HTTP answer."""

    status: int
    content_type: str  # media type only, lower case, without parameters
    body: bytes
    headers: httpx.Headers

    def text(self) -> str:
        return self.body.decode("utf-8")


LockDetector = Callable[[Reply], CameraError | None]
"""Looks at a 401/403 answer and returns ``LockedOut`` when the vendor signals a lock."""


def base_url(target: Target, *, https: bool = False) -> str:
    if https:
        return f"https://{target.address}:{target.ports.get(Interface.HTTPS, 443)}"
    return f"http://{target.address}:{target.ports.get(Interface.HTTP, 80)}"


def digest(credential: Credential | None) -> httpx.DigestAuth | None:
    """A fresh digest state: no cached challenge, so a wrong password is sent exactly once."""
    if credential is None:
        return None
    return httpx.DigestAuth(credential.username, credential.password)


@functools.cache
def unverified_tls() -> ssl.SSLContext:
    """One unverifying context (``TLS_VERIFY_REASON``) for every client of the process: httpx
    builds a new one per client otherwise (CPU per camera and adapter, and with the CA bundle
    loaded about 1 MB of RSS per concurrent client)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # TLS_VERIFY_REASON
    return ctx


def make_client(
    target: Target, config: AdapterConfig, credential: Credential | None, *, https: bool = False
) -> httpx.AsyncClient:
    """The HTTP client of one adapter instance; close it with ``aclose()``."""
    logging.getLogger("httpx").addFilter(_SECRET_QUERY_FILTER)  # once: filters are a set
    return httpx.AsyncClient(
        base_url=base_url(target, https=https),
        auth=digest(credential),
        timeout=httpx.Timeout(config.timeout_s),
        limits=_LIMITS,
        verify=unverified_tls(),
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment must never see camera credentials
        headers={"User-Agent": "camwarden-agent"},
    )


def anonymous_session(timeout_s: float) -> aiohttp.ClientSession:
    """An aiohttp session for one request without credentials (``landing``, the web checks'
    probes): the unverifying TLS context (``TLS_VERIFY_REASON``), a new connection closed after
    the answer, ``timeout_s`` on the connect and on each read, no proxy from the environment.
    Such a request costs about a third of the CPU of httpx's (docs/adr/0013-audit-worker.md);
    redirects are the caller's to refuse (``allow_redirects=False``)."""
    import aiohttp  # noqa: PLC0415  # onvif-zeep-async's transport: loaded by every audit

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=unverified_tls(), force_close=True),
        timeout=aiohttp.ClientTimeout(sock_connect=timeout_s, sock_read=timeout_s),
        headers={"User-Agent": "camwarden-agent"},
        trust_env=False,  # a proxy from the environment must never see a camera's answers
    )


async def https_only(target: Target, config: AdapterConfig, url: str) -> bool | None:
    """Whether the camera's web interface is on HTTPS only (``Landing.https_only`` of
    ``landing``); None when neither port takes a connection."""
    answer = await landing(target, config, url)
    return None if answer is None else answer.https_only


async def landing(target: Target, config: AdapterConfig, url: str) -> Landing | None:
    """What plain HTTP answers at ``url`` (a path on the target, or a full ``http://`` URL):
    HTTPS only when it redirects to ``https://``, or refuses the connection while the HTTPS port
    takes one; None when neither port takes a connection (the camera is down or rebooting: ask
    again on the next request); otherwise not HTTPS only, any other answer or failure (a hang, a
    reset) being left to the real request to report. One ``GET`` without credentials, redirect
    not followed, body not read; an answer is kept in ``config.web_answers`` (one camera's
    audit) and given again for the same ``url``."""
    known = config.web_answers
    if known is not None and url in known:
        return known[url]
    answer = await _landing(target, config, url)
    if known is not None and answer is not None:
        known[url] = answer
    return answer


async def _landing(target: Target, config: AdapterConfig, url: str) -> Landing | None:
    import aiohttp  # noqa: PLC0415  # see anonymous_session

    plain = url if url.startswith("http://") else base_url(target) + url
    async with anonymous_session(config.timeout_s) as session:
        try:
            async with session.get(plain, allow_redirects=False) as response:
                location = response.headers.get("Location", "")
                redirect = response.status in _REDIRECTS and location.lower().startswith("https://")
                return Landing(redirect, response.headers.get("Server", "").strip())
        except aiohttp.ClientConnectorError:
            pass
        except (aiohttp.ClientError, TimeoutError):
            return Landing(https_only=False)
    async with anonymous_session(config.timeout_s) as session:
        try:
            async with session.get(base_url(target, https=True) + "/", allow_redirects=False):
                return Landing(https_only=True)
        except aiohttp.ClientConnectorError:
            return None
        except (aiohttp.ClientError, TimeoutError):
            return Landing(https_only=True)  # the port took the connection; the request reports


async def read_capped(
    chunks: AsyncIterable[bytes], declared: str, url: str, max_bytes: int
) -> bytes:
    """The whole body of a streamed response (its decoded ``chunks``, whichever client read
    them); ``BadResponse`` past ``max_bytes``: a ``declared`` length (the ``Content-Length``
    header, "" without one) is refused before reading, then the bytes are counted as they
    arrive."""
    if declared.isdigit() and int(declared) > max_bytes:
        raise BadResponse(f"{url}: body of {declared} bytes exceeds {max_bytes}")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise BadResponse(f"{url}: body exceeds {max_bytes} bytes")
    return bytes(body)


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_bytes: int,
    accept: Collection[str],
    auth: httpx.Auth | None = None,
    json: object = None,
    content: bytes | AsyncIterable[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
    lock_detector: LockDetector | None = None,
    secret_params: Mapping[str, str] | None = None,
) -> Reply:
    """One request; the complete answer if it is a 2xx of an ``accept``-ed type, else raises.

    ``auth`` overrides the client's credential (``try_login``); by default the client's is used.
    ``secret_params`` (keys in ``SECRET_QUERY_KEYS``) join the query of the request sent and
    nothing else: errors name ``url`` as given.
    """
    target: str | httpx.URL = url
    if secret_params:
        if not SECRET_QUERY_KEYS.issuperset(secret_params):
            raise TypeError(f"not a password parameter: {sorted(secret_params)}")  # a bug
        target = httpx.URL(url).copy_merge_params(secret_params)  # params= would replace
    request = client.build_request(method, target, json=json, content=content, headers=headers)
    response = await client.send(
        request, auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT, stream=True
    )
    try:
        declared = response.headers.get("Content-Length", "")
        body = await read_capped(response.aiter_bytes(_CHUNK), declared, url, max_bytes)
    finally:
        await response.aclose()
    media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    reply = Reply(response.status_code, media, body, response.headers)
    _check_status(url, reply, lock_detector)
    if media not in accept:
        raise BadResponse(f"{url}: content type {media or 'none'!r}, expected {sorted(accept)}")
    return reply


def _check_status(url: str, reply: Reply, lock_detector: LockDetector | None) -> None:
    status = reply.status
    if 200 <= status < 300:
        return
    if status in (401, 403):
        locked = lock_detector(reply) if lock_detector is not None else None
        raise locked or AuthFailed(f"{url}: HTTP {status}")
    if status in (404, 501):
        raise Unsupported(f"{url}: HTTP {status}")
    if status in (502, 503, 504):
        raise Unreachable(f"{url}: HTTP {status}")
    raise BadResponse(f"{url}: unexpected HTTP {status}")


class FileBody:
    """A request body streamed from a file in chunks, between an optional head and tail
    (multipart framing). Iterable again from the start, so a digest challenge answered with a
    401 can be met by sending the body a second time (httpx refuses to replay a generator)."""

    def __init__(self, path: Path, *, head: bytes = b"", tail: bytes = b"", chunk: int = 64 * 1024):
        self.path, self.head, self.tail, self.chunk = path, head, tail, chunk

    def __len__(self) -> int:
        return len(self.head) + self.path.stat().st_size + len(self.tail)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self.head:
            yield self.head
        with self.path.open("rb") as fh:  # local disk: short blocking reads
            while data := fh.read(self.chunk):
                yield data
        if self.tail:
            yield self.tail


class HttpAdapter(Adapter):
    """An adapter whose vendor API is HTTP: one client per instance, digest with the agent's
    credential, and one-shot digest attempts for ``try_login``."""

    # ``Server`` header products (before any "/version", lower case) of the vendor's web
    # servers: identification tries this adapter first on a camera that sends one
    server_banners: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self, target: Target, config: AdapterConfig, credential: Credential | None = None
    ) -> None:
        super().__init__(target, config, credential)
        self.http = make_client(target, config, credential)
        self._transport_known = False
        self._https = False

    @classmethod
    def recognises(cls, landing: Landing) -> bool:
        return landing.server.split("/", 1)[0].strip().lower() in cls.server_banners

    async def close(self) -> None:
        await self.http.aclose()

    async def client(self) -> httpx.AsyncClient:
        """The client to use: plain HTTP, or HTTPS once ``https_only`` said so (asked on the
        adapter's first request, and again while neither port takes a connection)."""
        if not self._transport_known:
            only = await https_only(self.target, self.config, "/")
            self._transport_known = only is not None
            if only:
                await self.http.aclose()
                self.http = make_client(self.target, self.config, self.credential, https=True)
                self._https = True
        return self.http

    @property
    def https(self) -> bool:
        return self._https

    @property
    def interface(self) -> Interface:
        """Where this adapter's requests (and login attempts) go: HTTP or HTTPS."""
        return Interface.HTTPS if self.https else Interface.HTTP

    def detect_lock(self, reply: Reply) -> CameraError | None:
        """``LockedOut`` if a refused answer says the account or source is locked."""
        return None

    async def get(
        self, path: str, accept: Collection[str], *, secret_params: Mapping[str, str] | None = None
    ) -> Reply:
        return await fetch(
            await self.client(),
            "GET",
            path,
            max_bytes=self.config.max_response_bytes,
            accept=accept,
            lock_detector=self.detect_lock,
            secret_params=secret_params,
        )

    async def put(
        self, path: str, body: bytes, content_type: str, accept: Collection[str]
    ) -> Reply:
        return await fetch(
            self.http,
            "PUT",
            path,
            max_bytes=self.config.max_response_bytes,
            accept=accept,
            content=body,
            headers={"Content-Type": content_type, "Content-Length": str(len(body))},
            lock_detector=self.detect_lock,
        )

    async def post_json(self, path: str, payload: object, *, anonymous: bool = False) -> Reply:
        return await fetch(
            await self.client(),
            "POST",
            path,
            max_bytes=self.config.max_response_bytes,
            accept=JSON_TYPES,
            json=payload,
            auth=_NO_AUTH if anonymous else None,
            lock_detector=self.detect_lock,
        )

    async def send_body(
        self,
        method: str,
        path: str,
        body: FileBody,
        *,
        content_type: str,
        accept: Collection[str],
        timeout_s: float | None = None,
    ) -> Reply:
        """Stream ``body`` (e.g. a firmware image) with the adapter's credential."""
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        client = await self.client()
        if timeout_s is not None:
            client.timeout = httpx.Timeout(timeout_s)
        return await fetch(
            client,
            method,
            path,
            max_bytes=self.config.max_response_bytes,
            accept=accept,
            content=body,
            headers=headers,
            lock_detector=self.detect_lock,
        )

    async def digest_login(
        self, path: str, username: str, password: str, accept: Collection[str]
    ) -> bool:
        """One digest attempt on ``path``: True on 2xx; a refusal raises ``AuthFailed``.

        A fresh ``DigestAuth`` has no cached challenge, so the wrong password reaches the camera
        exactly once (a cached, stale nonce would make httpx send it a second time).
        """
        await fetch(
            await self.client(),
            "GET",
            path,
            max_bytes=self.config.max_response_bytes,
            accept=accept,
            auth=httpx.DigestAuth(username, password),
            lock_detector=self.detect_lock,
        )
        return True

    async def _try_login(self, interface: Interface, username: str, password: str) -> bool:
        await self.client()
        if interface is not self.interface:
            raise Unsupported(
                f"{self.vendor} adapter tries credentials over {self.interface.value} only"
            )
        return await self.login_probe(username, password)

    @abstractmethod
    async def login_probe(self, username: str, password: str) -> bool:
        """One authentication attempt against the vendor's cheapest protected URL."""
