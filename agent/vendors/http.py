"""The one HTTP client factory for the vendor APIs (ISAPI, Dahua CGI, VAPIX).

Every adapter that speaks HTTP builds its session here, so the safety limits live in one place:

* every socket made through the audit's scope gate (``gated_connector``, ``agent.scope``): no
  connection to an address outside ``[network] camera_subnets``, the ONVIF sessions included;
* digest authentication through aiohttp's ``DigestAuthMiddleware`` (Basic is never offered by
  the agent);
* the adapter's timeout on connect and on each read, and a small connection pool;
* bodies are streamed and refused over ``max_response_bytes`` (``BadResponse``), counted after
  decompression and before they are parsed; a larger declared ``Content-Length`` is refused early;
* the content type is checked against what the endpoint documents (``BadResponse``);
* statuses are sorted the way the checks need them: 401 ``AuthFailed`` (or ``LockedOut`` when
  the vendor's lock detector recognises the body), 403 ``AuthFailed``, 404/501 ``Unsupported``,
  502-504 ``Unreachable``, anything else ``BadResponse``;
* passwords some vendor APIs take in the query string (Dahua ``modifyPassword``, VAPIX
  ``pwdgrp.cgi``) are passed as ``secret_params``: they are added to the request only, never to
  the path our errors name (aiohttp's errors that carry the sent URL are re-raised naming the
  path as given), and aiohttp logs no request lines.

aiohttp rather than httpx: it is onvif-zeep-async's transport, loaded by every audit anyway,
and costs about an eighth of httpx's CPU per request on a kept-alive connection
(docs/adr/0013-audit-worker.md); the vendor reads are most of an audit's HTTP requests.

HTTPS: hardened cameras close plain HTTP or answer every request on it with a redirect to
HTTPS (baseline COM-01). Redirects are never followed; instead ``https_only`` asks plain HTTP
once, without credentials, and an adapter that finds it closed or redirecting to ``https://``
talks to the target's HTTPS port from then on (``HttpAdapter``, and the ONVIF client). The same
answer to ``GET /`` (``landing``) carries the web server's ``Server`` header: identification
tries first the adapter whose vendor it names (``HttpAdapter.server_banners``).

Requests without credentials that need no session (``landing``, the web checks' probes) go
through ``anonymous_session``: a new connection closed after the answer, the same limits.

TLS: cameras ship self-signed certificates, so the HTTPS client does not verify the chain
(``TLS_VERIFY_REASON``); ``agent.audit.identify`` records it in the identity's source. The adapters
only read configuration through it; the TLS facts of a camera (versions, ciphers, certificate,
shared keys: COM-02/COM-03) are collected by a separate handshake scan and never inferred from a
connection that succeeded here.
"""

from __future__ import annotations

import functools
import re
import ssl
from abc import abstractmethod
from collections.abc import AsyncIterable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import quote

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.client_middlewares import ClientHandlerType, ClientMiddlewareType
from aiohttp.payload import Payload

from agent import scope
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
    "client_session",
    "digest",
    "fetch",
    "gated_connector",
    "https_only",
    "landing",
    "make_session",
    "unverified_tls",
]

TLS_VERIFY_REASON: Final = (
    "cameras present self-signed certificates; the chain is not verified for configuration "
    "reads, and certificate and protocol facts are audited by the TLS scan, not assumed here"
)
_CHUNK: Final = 16 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_POOL: Final = 2  # connections per adapter session
_KEEPALIVE_S: Final = 5.0
JSON_TYPES: Final = frozenset({"application/json"})
# Query parameters that carry passwords in the vendor APIs we call (``secret_params`` only):
# these, Dahua's SNMP read community (a remediation sets it), and a Dahua recorder's stored
# channel login (``RemoteDevice.<block>.Password``).
SECRET_QUERY_KEYS: Final = frozenset(
    {"pwd", "pwdOld", "SNMP.GetCommunity", "SNMP.V1ReadCommunity"}  # Dahua, Axis communities
)
_CHANNEL_PASSWORD: Final = re.compile(r"RemoteDevice\.[^.&=]+\.Password")
NO_AUTH: Final[Sequence[ClientMiddlewareType]] = ()  # for pre-auth endpoints: sent as it is


def _secret_key(key: str) -> bool:
    """A query parameter that carries a secret: sent, never named in an error."""
    return key in SECRET_QUERY_KEYS or _CHANNEL_PASSWORD.fullmatch(key) is not None


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete, size-checked HTTP answer."""

    status: int
    content_type: str  # media type only, lower case, without parameters
    body: bytes
    headers: Mapping[str, str]

    def text(self) -> str:
        return self.body.decode("utf-8")


LockDetector = Callable[[Reply], CameraError | None]
"""Looks at a 401/403 answer and returns ``LockedOut`` when the vendor signals a lock."""


def base_url(target: Target, *, https: bool = False) -> str:
    if https:
        return f"https://{target.address}:{target.ports.get(Interface.HTTPS, 443)}"
    return f"http://{target.address}:{target.ports.get(Interface.HTTP, 80)}"


class _Digest(aiohttp.DigestAuthMiddleware):
    """aiohttp's digest middleware, which sends the request again after a 401 challenge without
    releasing the 401: a challenge whose body is not read yet (a large or slow one, a garbage
    answer) would hold its pooled connection until garbage collection. Released here, when the
    request is sent again."""

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: ClientHandlerType
    ) -> aiohttp.ClientResponse:
        sent: list[aiohttp.ClientResponse] = []

        async def send(again: aiohttp.ClientRequest) -> aiohttp.ClientResponse:
            for challenge in sent:
                challenge.release()
            sent[:] = [await handler(again)]
            return sent[0]

        return await super().__call__(request, send)


def digest(credential: Credential | None) -> Sequence[ClientMiddlewareType]:
    """A fresh digest state: no cached challenge, so a wrong password is sent exactly once."""
    if credential is None:
        return NO_AUTH
    return (_Digest(credential.username, credential.password),)


@functools.cache
def unverified_tls() -> ssl.SSLContext:
    """One unverifying context (``TLS_VERIFY_REASON``) for every session of the process
    instead of one per session (CPU per camera and adapter, and with the CA bundle loaded about
    1 MB of RSS per concurrent client)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # TLS_VERIFY_REASON
    return ctx


def _timeout(timeout_s: float) -> aiohttp.ClientTimeout:
    """``timeout_s`` on the connect and on each read; the whole call is bounded by the
    adapter's ``asyncio.timeout``."""
    return aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)


def gated_connector(**options: Any) -> aiohttp.TCPConnector:
    """A connector of the agent's sessions: the unverifying TLS context
    (``TLS_VERIFY_REASON``) and every socket made through the scope gate (``agent.scope``)."""
    return aiohttp.TCPConnector(
        ssl=unverified_tls(), socket_factory=scope.socket_factory, **options
    )


def client_session(
    timeout_s: float,
    connector: aiohttp.TCPConnector,
    *,
    base: str | None = None,
    middlewares: Sequence[ClientMiddlewareType] = NO_AUTH,
) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=base,
        connector=connector,
        middlewares=middlewares,
        timeout=_timeout(timeout_s),
        headers={"User-Agent": "camwarden-agent"},
        trust_env=False,  # a proxy from the environment must never see camera credentials
    )


def make_session(
    target: Target,
    config: AdapterConfig,
    credential: Credential | None,
    *,
    https: bool = False,
    timeout_s: float | None = None,
) -> aiohttp.ClientSession:
    """The session of one adapter instance (or of one upload: ``timeout_s``); close it with
    ``close()``. Requests name a path on ``target``; the credential answers digest challenges."""
    return client_session(
        config.timeout_s if timeout_s is None else timeout_s,
        gated_connector(limit=_POOL, keepalive_timeout=_KEEPALIVE_S),
        base=base_url(target, https=https),
        middlewares=digest(credential),
    )


def anonymous_session(timeout_s: float) -> aiohttp.ClientSession:
    """A session for one request without credentials (``landing``, the web checks' probes): the
    unverifying TLS context (``TLS_VERIFY_REASON``), a new connection closed after the answer,
    ``timeout_s`` on the connect and on each read, no proxy from the environment. Redirects are
    the caller's to refuse (``allow_redirects=False``)."""
    return client_session(timeout_s, gated_connector(force_close=True))


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
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    max_bytes: int,
    accept: Collection[str],
    auth: Sequence[ClientMiddlewareType] | None = None,
    json: object = None,
    content: bytes | FileBody | None = None,
    headers: Mapping[str, str] | None = None,
    lock_detector: LockDetector | None = None,
    secret_params: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> Reply:
    """One request; the complete answer if it is a 2xx of an ``accept``-ed type, else raises.

    ``auth`` (``digest(...)`` or ``NO_AUTH``) replaces the session's credential for this request
    (``try_login``, pre-auth endpoints); by default the session's is used. ``secret_params``
    (keys in ``SECRET_QUERY_KEYS``) join the query of the request sent and nothing else: errors
    name ``url`` as given. ``timeout_s`` replaces the session's timeout (uploads).
    """
    if secret_params and not all(_secret_key(k) for k in secret_params):
        raise TypeError(f"not a password parameter: {sorted(secret_params)}")  # a bug
    extra: dict[str, Any] = {} if timeout_s is None else {"timeout": _timeout(timeout_s)}
    try:
        async with session.request(
            method,
            url,
            params=secret_params,  # merged into the query of ``url``
            json=json,
            data=content,
            headers=headers,
            middlewares=auth,
            allow_redirects=False,
            **extra,
        ) as response:
            declared = response.headers.get("Content-Length", "")
            body = await read_capped(
                response.content.iter_chunked(_CHUNK), declared, url, max_bytes
            )
    except aiohttp.ClientResponseError as exc:  # its text names the URL sent, secrets included
        raise BadResponse(f"{url}: {type(exc).__name__}: {exc.message[:160]}") from None
    media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    reply = Reply(response.status, media, body, response.headers)
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


class FileBody(Payload):
    """A request body streamed from a file in chunks, between an optional head and tail
    (multipart framing). Every write starts again from the beginning of the file, so a digest
    challenge answered with a 401 is met by sending the body a second time (aiohttp replays
    only payloads it can rewind)."""

    def __init__(self, path: Path, *, head: bytes = b"", tail: bytes = b"", chunk: int = 64 * 1024):
        super().__init__(path)
        self.path, self.head, self.tail, self.chunk = path, head, tail, chunk
        self.length = len(head) + path.stat().st_size + len(tail)

    @property
    def size(self) -> int:
        """Sent as the Content-Length."""
        return self.length

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a file body is streamed, not decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        left = self.length if content_length is None else min(content_length, self.length)
        if self.head:
            await writer.write(self.head[:left])
            left -= min(left, len(self.head))
        with self.path.open("rb") as fh:  # local disk: short blocking reads
            while left and (data := fh.read(min(self.chunk, left))):
                await writer.write(data)
                left -= len(data)
        await writer.write(self.tail[:left])


class HttpAdapter(Adapter):
    """An adapter whose vendor API is HTTP: one session per instance, digest with the agent's
    credential, and one-shot digest attempts for ``try_login``."""

    # ``Server`` header products (before any "/version", lower case) of the vendor's web
    # servers: identification tries this adapter first on a camera that sends one
    server_banners: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self, target: Target, config: AdapterConfig, credential: Credential | None = None
    ) -> None:
        super().__init__(target, config, credential)
        self._session: aiohttp.ClientSession | None = None  # made on the first request
        self._transport_known = False
        self._https = False

    @classmethod
    def recognises(cls, landing: Landing) -> bool:
        return landing.server.split("/", 1)[0].strip().lower() in cls.server_banners

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def session(self) -> aiohttp.ClientSession:
        """The session to use: plain HTTP, or HTTPS once ``https_only`` said so (asked on the
        adapter's first request, and again while neither port takes a connection)."""
        if not self._transport_known:
            only = await https_only(self.target, self.config, "/")
            self._transport_known = only is not None
            if only:
                await self.close()
                self._https = True
        if self._session is None:
            self._session = make_session(
                self.target, self.config, self.credential, https=self._https
            )
        return self._session

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

    async def _request(self, method: str, path: str, accept: Collection[str], **kw: Any) -> Reply:
        return await fetch(
            await self.session(),
            method,
            path,
            max_bytes=self.config.max_response_bytes,
            accept=accept,
            lock_detector=self.detect_lock,
            **kw,
        )

    async def get(
        self, path: str, accept: Collection[str], *, secret_params: Mapping[str, str] | None = None
    ) -> Reply:
        return await self._request("GET", path, accept, secret_params=secret_params)

    async def put(
        self, path: str, body: bytes, content_type: str, accept: Collection[str]
    ) -> Reply:
        return await self._request(
            "PUT", path, accept, content=body, headers={"Content-Type": content_type}
        )

    async def set_by_query(
        self, path: str, params: Mapping[str, str], accept: Collection[str]
    ) -> None:
        """A CGI write carrying ``key=value`` pairs in the query after ``path`` (Dahua
        configManager setConfig, Axis param.cgi update); anything but "OK" is a refusal.
        Secret pairs (``SECRET_QUERY_KEYS``) go last, as ``secret_params`` (never in an error)."""
        shown = {k: v for k, v in params.items() if not _secret_key(k)}
        secret = {k: v for k, v in params.items() if _secret_key(k)}
        query = "&".join(f"{quote(k, safe='.[]')}={quote(v, safe='')}" for k, v in shown.items())
        reply = await self.get(f"{path}&{query}" if query else path, accept, secret_params=secret)
        if reply.body.strip() != b"OK":
            raise BadResponse(f"{self.vendor}: {path} did not answer OK")

    async def post_json(self, path: str, payload: object, *, anonymous: bool = False) -> Reply:
        auth = NO_AUTH if anonymous else None
        return await self._request("POST", path, JSON_TYPES, json=payload, auth=auth)

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
        """Stream ``body`` (e.g. a firmware image) with the adapter's credential; ``timeout_s``
        on the connect and each read of this request instead of the adapter's."""
        headers = {"Content-Type": content_type}
        return await self._request(
            method, path, accept, content=body, headers=headers, timeout_s=timeout_s
        )

    async def digest_login(
        self, path: str, username: str, password: str, accept: Collection[str]
    ) -> bool:
        """One digest attempt on ``path``: True on 2xx; a refusal raises ``AuthFailed``.

        A fresh digest middleware has no cached challenge, so the wrong password reaches the
        camera exactly once (a cached, stale nonce would make it send it a second time).
        """
        await self._request("GET", path, accept, auth=digest(Credential(username, password)))
        return True

    async def _try_login(self, interface: Interface, username: str, password: str) -> bool:
        await self.session()
        if interface is not self.interface:
            raise Unsupported(
                f"{self.vendor} adapter tries credentials over {self.interface.value} only"
            )
        return await self.login_probe(username, password)

    @abstractmethod
    async def login_probe(self, username: str, password: str) -> bool:
        """One authentication attempt against the vendor's cheapest protected URL."""
