"""Any ONVIF Profile S camera: identity, users, services, time, streams, one-shot logins,
and the anonymous-access probe of AUTH-10."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from agent.vendors.base import (
    Adapter,
    AdapterConfig,
    AuthFailed,
    Unsupported,
    translate,
)
from agent.vendors.models import (
    Account,
    Capability,
    Credential,
    DeviceIdentity,
    Interface,
    ServiceState,
    Setting,
    SettingValue,
    StreamInfo,
    Target,
    TimeInfo,
    vendor_settings,
)
from agent.vendors.onvif import const, parsers
from agent.vendors.onvif.client import OnvifClient, load_documents


class OnvifAdapter(Adapter):
    vendor = const.VENDOR
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.IDENTITY,
            Capability.ACCOUNTS,
            Capability.SERVICES,
            Capability.TIME,
            Capability.STREAMS,
            Capability.LOGIN,
            Capability.FIRMWARE_UPGRADE,
            Capability.SET_PASSWORD,
            Capability.NETWORK,
            Capability.SETTINGS,
        }
    )
    # ONVIF Core SetDiscoveryMode and SetDynamicDNS (the vendor APIs write the rest)
    settable: ClassVar[frozenset[Setting]] = vendor_settings("onvif")

    def __init__(
        self, target: Target, config: AdapterConfig, credential: Credential | None = None
    ) -> None:
        super().__init__(target, config, credential)
        self.client = OnvifClient(target, config, credential)

    @classmethod
    async def prepare(cls) -> None:
        await load_documents()

    async def close(self) -> None:
        await self.client.close()

    @property
    def https(self) -> bool:
        return self.client.https

    async def _identify(self) -> DeviceIdentity:
        device = await self.client.device()
        return parsers.parse_device_information(await device.GetDeviceInformation())

    async def _accounts(self) -> tuple[Account, ...]:
        device = await self.client.device()
        return parsers.parse_users(await device.GetUsers())

    async def _services(self) -> ServiceState:
        device = await self.client.device()
        return parsers.parse_services(
            await _optional(device.GetDiscoveryMode), await _optional(device.GetDynamicDNS)
        )

    async def _time(self) -> TimeInfo:
        clock = await self.client.system_date_and_time()
        ntp = await _optional((await self.client.device()).GetNTP) if self.credential else None
        return parsers.parse_time(clock, ntp)

    async def _streams(self) -> tuple[StreamInfo, ...]:
        media = await self.client.media()
        streams = []
        for profile, token in parsers.profile_tokens(await media.GetProfiles()):
            uri = await media.GetStreamUri(_stream_request(token))
            streams.append(parsers.parse_stream_uri(profile, uri))
        return tuple(streams)

    async def _try_login(self, interface: Interface, username: str, password: str) -> bool:
        if interface is not Interface.ONVIF:
            raise Unsupported("the ONVIF adapter tries credentials over ONVIF only")
        device = await self.client.device(Credential(username, password))
        try:
            await device.GetDeviceInformation()
        finally:
            await self.client.discard(device)
        return True

    async def _upload_firmware(self, image: Path, length: int) -> None:
        """ONVIF Core ``StartFirmwareUpgrade``, then an HTTP POST of the image to the
        ``UploadUri`` it names (on the camera's own address only); 200 means accepted."""
        from agent.vendors.http import FileBody, fetch, make_session  # noqa: PLC0415

        device = await self.client.device()
        answer = await device.StartFirmwareUpgrade()
        uri = parsers.upload_uri(answer, self.target.address)
        await asyncio.sleep(parsers.upload_delay(answer))
        # per operation; the whole upload is bounded by upload_firmware's timeout
        timeout_s = self.config.timeout_s * 6
        async with make_session(
            self.target, self.config, self.credential, timeout_s=timeout_s
        ) as http:
            await fetch(
                http,
                "POST",
                uri,
                max_bytes=self.config.max_response_bytes,
                accept=frozenset({"text/plain", "", "application/octet-stream"}),
                content=FileBody(image),
                headers={"Content-Type": "application/octet-stream"},
            )

    async def _set_password(self, username: str, password: str, current: str | None) -> None:
        """``SetUser`` with the account's current level (read with ``GetUsers``)."""
        device = await self.client.device()
        level = parsers.user_level(await device.GetUsers(), username)
        await device.SetUser(
            {"User": [{"Username": username, "Password": password, "UserLevel": level}]}
        )

    async def _write_settings(self, changes: dict[Setting, SettingValue]) -> None:
        """``SetDiscoveryMode`` (Discoverable/NonDiscoverable), ``SetDynamicDNS``
        (ClientUpdates/NoUpdate); a refusal is a SOAP fault."""
        device = await self.client.device()
        for setting, value in changes.items():
            if setting is Setting.DISCOVERABLE:
                mode = "Discoverable" if value else "NonDiscoverable"
                await device.SetDiscoveryMode({"DiscoveryMode": mode})
            else:
                await device.SetDynamicDNS({"Type": "ClientUpdates" if value else "NoUpdate"})

    async def _network_settings(self) -> tuple[str, ...]:
        device = await self.client.device()
        return parsers.network_fingerprint(
            await device.GetNetworkInterfaces(), await device.GetNetworkProtocols()
        )

    async def unauthenticated_operations(self) -> dict[str, bool]:
        """AUTH-10: which protected operations answered a caller without credentials.

        True: the camera ran the operation (an answer, or a fault other than NotAuthorized
        such as ``ter:NoProfile``); False: it refused the anonymous caller.
        """

        async def probe() -> dict[str, bool]:
            device = await self.client.anonymous()
            media = await self.client.anonymous_media()
            calls: dict[str, Any] = {
                "GetDeviceInformation": device.authless_GetDeviceInformation,
                "GetProfiles": media.authless_GetProfiles,
                "GetStreamUri": lambda: media.authless_GetStreamUri(
                    _stream_request(const.PLACEHOLDER_PROFILE)
                ),
                "GetNetworkInterfaces": device.authless_GetNetworkInterfaces,
                "GetUsers": device.authless_GetUsers,
            }
            return {op: await _answered(calls[op]) for op in const.PROTECTED_PROBES}

        # one request timeout per operation probed: a loaded camera answering each in time must
        # not turn the whole probe into a timeout
        limit = self.config.timeout_s * len(const.PROTECTED_PROBES)
        return await self._call(
            Capability.IDENTITY, "unauthenticated_operations", probe, timeout_s=limit
        )


async def _optional(call: Callable[[], Awaitable[Any]]) -> Any:
    """The answer of an operation a device may lack, or None when it says it lacks it
    (``ter:ActionNotSupported``, "not implemented": ``Unsupported``): one missing operation
    leaves its field unknown instead of spoiling the others."""
    try:
        return await call()
    except Exception as exc:
        if isinstance(translate(exc), Unsupported):
            return None
        raise


def _stream_request(token: str) -> dict[str, Any]:
    return {
        "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
        "ProfileToken": token,
    }


async def _answered(call: Any) -> bool:
    from zeep.exceptions import Fault  # noqa: PLC0415  # loaded with onvif already

    try:
        await call()
    except Fault as fault:
        return not isinstance(translate(fault), AuthFailed)  # other faults: the operation ran
    except Exception as exc:
        if isinstance(translate(exc), AuthFailed):  # HTTP 401 without a SOAP body
            return False
        raise
    return True
