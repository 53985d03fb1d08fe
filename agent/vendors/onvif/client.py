"""The one wrapper around onvif-zeep-async.

``ONVIFService`` objects are built directly rather than through ``ONVIFCamera``: the camera
object opens an extra aiohttp session for snapshots in its constructor and clears the
process's proxy variables, and the agent needs neither. What is shared per process is what
onvif-zeep-async already keeps in module globals: the parsed WSDL documents (one per WSDL
file, the expensive part). The SQLite WSDL cache is off (``no_cache``): every WSDL is read from
the package, never fetched, so the cache would only add a file and a database handle.

Clock offset: the pre-auth ``GetSystemDateAndTime`` is asked first, without credentials, and
its offset from the agent's clock is added to the WS-UsernameToken ``Created`` of every
authenticated call (cameras refuse tokens more than a few minutes off their own clock).

Logs: onvif-zeep-async's own transport writes every SOAP envelope to its DEBUG log, and
``SetUser`` carries the new password in clear; the transport that replaces it logs none.

Transport: each service's aiohttp session is replaced by one of ``agent.vendors.http`` (its
sockets made through the scope gate, ``agent.scope``; no proxy from the environment) and
zeep's transport by ``_capped_transport()``, the same limits as the vendor APIs:

* a request goes only to the camera's own address (``agent.scope.own_url``): a camera naming
  another host as its media service (``GetCapabilities`` XAddr) gets nothing, credentials
  included, and the operation fails with ``ForeignUrl``;
* redirects are not followed; 401/403 are ``AuthFailed`` at once;
* the body is streamed and refused past ``max_response_bytes`` (``BadResponse``), the request
  bounded by ``timeout_s`` from its start to the last byte;
* a body that declares a DTD or an entity, in whatever encoding, is refused before zeep parses
  it (``agent.probes._xml.refuse_dtd``), and zeep parses answers with DTDs, entities and
  external documents forbidden and lxml's size limits on (``_answer_settings``).
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from agent import scope
from agent.probes._xml import refuse_dtd
from agent.vendors import http
from agent.vendors.base import AdapterConfig, AuthFailed, BadResponse, translate
from agent.vendors.http import base_url, https_only
from agent.vendors.models import Credential, Interface, Target
from agent.vendors.onvif import const, parsers

__all__ = ["OnvifClient", "load_documents"]

# onvif-zeep-async caches parsed WSDL documents per process but checks the cache without a
# lock: N cameras opened at once each parse devicemgmt.wsdl (~9 MB) and media.wsdl (~5 MB) in
# parallel, and the peak stays as fragmentation. Service set-up is serialised per event loop,
# so the first camera parses and the others reuse (measured in bench/adapters_rss.py).
_SETUP_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _setup_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _SETUP_LOCKS.get(loop)
    if lock is None:
        lock = _SETUP_LOCKS[loop] = asyncio.Lock()
    return lock


def _wsdl(name: str) -> str:
    import onvif  # noqa: PLC0415  # ~40 MB RSS: only when a camera is audited over ONVIF

    return str(Path(onvif.__file__).parent / "wsdl" / name)


_POOL: Final = 2  # connections per ONVIF service
_KEEPALIVE_S: Final = 5.0


@functools.cache
def _answer_settings() -> Any:
    """zeep's parse settings for camera answers: onvif-zeep-async's lenient typing (cameras
    stray from the schema), without its ``xml_huge_tree`` and with DTDs, entities and external
    documents forbidden."""
    from zeep import Settings  # noqa: PLC0415  # see _wsdl

    return Settings(
        strict=False,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )


@functools.cache
def _capped_transport() -> type[Any]:
    """onvif-zeep-async's transport (it retries a request the camera dropped before it was
    written) with the vendor APIs' limits (see the module docstring)."""
    from aiohttp import ClientResponse, ClientSession  # noqa: PLC0415
    from onvif.client import AsyncTransportProtocolErrorHandler  # noqa: PLC0415  # see _wsdl

    class CappedTransport(AsyncTransportProtocolErrorHandler):  # type: ignore[misc]
        def __init__(self, session: ClientSession, address: str, config: AdapterConfig) -> None:
            super().__init__(session=session, verify_ssl=False, cache=None)
            self.address = address
            self.limits = config

        async def _post_internal(
            self, address: str, message: str | bytes, headers: dict[str, str]
        ) -> tuple[ClientResponse, bytes]:
            scope.own_url(address, self.address, "ONVIF service address")
            headers = dict(headers or {})
            headers.setdefault("Content-Type", 'text/xml; charset="utf-8"')
            data = message.encode("utf-8") if isinstance(message, str) else message
            async with (
                asyncio.timeout(self.limits.timeout_s),
                self.session.post(
                    address, data=data, headers=headers, allow_redirects=False
                ) as response,
            ):
                if response.status in (401, 403):
                    raise AuthFailed(f"{address}: HTTP {response.status}")
                body = await http.read_capped(
                    response.content.iter_chunked(16 * 1024),
                    response.headers.get("Content-Length", ""),
                    address,
                    self.limits.max_response_bytes,
                )
            if body and not response.content_type.startswith("multipart/"):  # MTOM: zeep's
                refuse_dtd(body)  # settings still refuse a DTD in the SOAP part
            return response, body

        async def get(
            self,
            address: str,
            params: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None,
        ) -> Any:
            raise BadResponse(f"{address}: documents come from the package, not a camera")

    return CappedTransport


_NEVER_CONTACTED: Final = "http://preload.invalid" + const.DEVICE_PATH  # setup() sends nothing


async def load_documents() -> None:
    """Parse the device and media WSDL documents now, once per process, outside any camera's
    time limit: ~14 MB of XML takes seconds on a small or busy box, which would otherwise be
    charged to the first ONVIF call of whichever cameras come first (and time them out).
    onvif-zeep-async keeps the parsed documents for every later service."""
    from onvif import ONVIFService  # noqa: PLC0415  # see _wsdl

    for wsdl, binding in (
        (const.DEVICE_WSDL, const.DEVICE_BINDING),
        (const.MEDIA_WSDL, const.MEDIA_BINDING),
    ):
        service = ONVIFService(
            _NEVER_CONTACTED,
            None,
            None,
            _wsdl(wsdl),
            no_cache=True,
            binding_name=binding,
            binding_key=(wsdl, _NEVER_CONTACTED),
        )
        try:
            async with _setup_lock():
                await service.setup()
        finally:
            await service.close()


class OnvifClient:
    """ONVIF services of one camera. ``close()`` releases every session it opened."""

    def __init__(
        self, target: Target, config: AdapterConfig, credential: Credential | None
    ) -> None:
        port = target.ports.get(Interface.ONVIF) or target.ports.get(Interface.HTTP, 80)
        self.device_xaddr = f"http://{target.address}:{port}{const.DEVICE_PATH}"
        self.credential = credential
        self.https = False  # the device service answered on HTTPS only (agent.vendors.http)
        self._target = target
        self._config = config
        self._transport_known = False
        self._services: list[Any] = []
        self._anonymous: Any = None
        self._device: Any = None
        self._media: Any = None
        self._offset: timedelta | None = None
        self._clock_read = False

    async def _open(
        self, xaddr: str, wsdl: str, binding: str, credential: Credential | None
    ) -> Any:
        from onvif import ONVIFService  # noqa: PLC0415  # see _wsdl

        scope.own_url(xaddr, self._target.address, "ONVIF service address")

        service = ONVIFService(
            xaddr,
            credential.username if credential else None,
            credential.password if credential else None,
            _wsdl(wsdl),
            encrypt=True,  # PasswordDigest, never the clear-text PasswordText
            no_cache=True,
            dt_diff=self._offset,
            binding_name=binding,
            binding_key=(wsdl, xaddr),
        )
        self._services.append(service)  # closed by close() even if setup() fails
        await service._session.close()  # replaced by ours (module docstring: Transport)
        service._session = http.client_session(
            self._config.timeout_s,
            http.gated_connector(limit=_POOL, keepalive_timeout=_KEEPALIVE_S),
        )
        service._connector = service._session.connector
        service.transport = _capped_transport()(
            service._session, self._target.address, self._config
        )
        async with _setup_lock():
            await service.setup()
        for client in (service.zeep_client, service.zeep_client_authless):
            client.settings = _answer_settings()
        return service

    async def _device_xaddr(self) -> str:
        """The device service's address: on plain HTTP unless that is closed or redirects to
        HTTPS, then on the target's HTTPS port (asked until one of them takes a connection)."""
        if not self._transport_known:
            only = await https_only(self._target, self._config, self.device_xaddr)
            self._transport_known = only is not None
            if only:
                self.device_xaddr = base_url(self._target, https=True) + const.DEVICE_PATH
                self.https = True
        return self.device_xaddr

    async def anonymous(self) -> Any:
        """The device service without credentials: only ``authless_*`` calls go through it."""
        if self._anonymous is None:
            self._anonymous = await self._open(
                await self._device_xaddr(), const.DEVICE_WSDL, const.DEVICE_BINDING, None
            )
        return self._anonymous

    async def system_date_and_time(self) -> Any:
        """Pre-auth GetSystemDateAndTime; also fixes the WS-UsernameToken clock offset."""
        service = await self.anonymous()
        answer = await service.authless_GetSystemDateAndTime()
        when = parsers.camera_utc(answer)
        if when is not None and not self._clock_read:
            self._offset = when - datetime.now(UTC)
        self._clock_read = True
        return answer

    async def _prepare_clock(self) -> None:
        if self._clock_read:
            return
        try:
            await self.system_date_and_time()
        except Exception as exc:
            # Quirk (AXIS OS): every ONVIF request needs credentials, GetSystemDateAndTime too;
            # refused here, the token is sent with the agent's clock.
            if not isinstance(translate(exc), AuthFailed):
                raise
            self._clock_read = True

    async def device(self, credential: Credential | None = None) -> Any:
        """The device service with ``credential`` (default: the agent's own)."""
        if credential is None and self.credential is None:
            raise AuthFailed("this ONVIF operation needs a credential and none is configured")
        await self._prepare_clock()
        if credential is not None:
            return await self._open(
                await self._device_xaddr(), const.DEVICE_WSDL, const.DEVICE_BINDING, credential
            )
        if self._device is None:
            self._device = await self._open(
                await self._device_xaddr(),
                const.DEVICE_WSDL,
                const.DEVICE_BINDING,
                self.credential,
            )
        return self._device

    async def media(self) -> Any:
        if self._media is None:
            device = await self.device()
            capabilities = await device.GetCapabilities({"Category": "Media"})
            xaddr = getattr(getattr(capabilities, "Media", None), "XAddr", None)
            if not xaddr:
                raise ValueError("GetCapabilities names no media service")
            self._media = await self._open(
                str(xaddr), const.MEDIA_WSDL, const.MEDIA_BINDING, self.credential
            )
        return self._media

    async def anonymous_media(self) -> Any:
        """The media service without credentials (AUTH-10); its address asked pre-auth."""
        device = await self.anonymous()
        capabilities = await device.authless_GetCapabilities({"Category": "Media"})
        xaddr = getattr(getattr(capabilities, "Media", None), "XAddr", None)
        if not xaddr:
            raise ValueError("GetCapabilities names no media service")
        return await self._open(str(xaddr), const.MEDIA_WSDL, const.MEDIA_BINDING, None)

    async def discard(self, service: Any) -> None:
        """Close one service now (the one-shot login services)."""
        self._services.remove(service)
        await service.close()

    async def close(self) -> None:
        services, self._services = self._services, []
        self._anonymous = self._device = self._media = None
        for service in services:
            await service.close()
