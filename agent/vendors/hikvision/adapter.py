"""Hikvision over ISAPI: identity, users, services, lockout policy, time, one-shot logins."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

from agent.vendors.base import AuthFailed, BadResponse, CameraError, LockedOut, Unsupported
from agent.vendors.hikvision import const, parsers
from agent.vendors.http import FileBody, HttpAdapter, Reply
from agent.vendors.models import (
    Account,
    Capability,
    DeviceIdentity,
    LockoutPolicy,
    RecorderChannel,
    ServiceState,
    Setting,
    SettingValue,
    TimeInfo,
    vendor_settings,
)


class HikvisionAdapter(HttpAdapter):
    vendor = const.VENDOR
    server_banners = const.SERVER_BANNERS
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.IDENTITY,
            Capability.ACCOUNTS,
            Capability.SERVICES,
            Capability.LOCKOUT_POLICY,
            Capability.TIME,
            Capability.LOGIN,
            Capability.FIRMWARE_UPGRADE,
            Capability.SET_PASSWORD,
            Capability.SETTINGS,
            Capability.CHANNELS,
        }
    )
    settable: ClassVar[frozenset[Setting]] = vendor_settings("hikvision")

    def detect_lock(self, reply: Reply) -> CameraError | None:
        signal = parsers.lock_signal(reply.body)
        return LockedOut(f"hikvision: {signal}") if signal else None

    async def _xml(self, path: str) -> bytes:
        return (await self.get(path, const.XML_TYPES)).body

    async def _identify(self) -> DeviceIdentity:
        return parsers.parse_device_info(await self._xml(const.DEVICE_INFO))

    async def activated(self) -> bool:
        """``/SDK/activateStatus``: False on a camera still waiting for its first password.

        Pre-auth by design (the web page asks it before any login), so it also answers
        without a credential; it is read with the client as configured.
        """

        async def read() -> bool:
            return parsers.parse_activated(await self._xml(const.ACTIVATE_STATUS))

        return await self._call(Capability.IDENTITY, "activated", read)

    async def _accounts(self) -> tuple[Account, ...]:
        return parsers.parse_users(await self._xml(const.USERS))

    async def _service_flag(self, path: str, root: str) -> bool | None:
        try:
            return parsers.parse_enabled(await self._xml(path), root)
        except Unsupported:  # the firmware has no such service (404): unknown, not off
            return None

    async def _digest_only(self, path: str, root: str) -> bool | None:
        try:
            return parsers.parse_digest_only(await self._xml(path), root)
        except Unsupported:  # older firmware: no such resource (404), unknown
            return None

    async def _services(self) -> ServiceState:
        try:
            snmp, community = parsers.parse_snmp(await self._xml(const.SNMP_V2C))
        except Unsupported:  # no SNMP resource (404): unknown
            snmp, community = None, None
        try:
            rtsp_auth = parsers.parse_rtsp_auth(await self._xml(const.STREAMING_CHANNEL))
        except Unsupported:  # no such channel (404): unknown
            rtsp_auth = None
        rtsp_digest = await self._digest_only(const.RTSP_CERTIFICATE, "RTSPCertificate")
        web_digest = await self._digest_only(const.WEB_CERTIFICATE, "WebCertificate")
        return ServiceState(
            telnet=await self._service_flag(const.TELNETD, "Telnetd"),
            ssh=await self._service_flag(const.SSH, "SSH"),
            upnp=await self._service_flag(const.UPNP, "UPnP"),
            p2p=await self._service_flag(const.EZVIZ, "EZVIZ"),
            snmp=snmp,
            snmp_community=community,
            rtsp_auth=rtsp_auth,
            rtsp_digest_only=rtsp_digest,
            http_digest_only=web_digest,
        )

    async def _channels(self) -> tuple[RecorderChannel, ...]:
        listing = await self._xml(const.INPUT_PROXY)  # Unsupported (404) on a camera
        try:
            status: bytes | None = await self._xml(const.INPUT_PROXY_STATUS)
        except Unsupported:  # older recorders: the list only, online unknown
            status = None
        return parsers.parse_input_proxy(listing, status)

    async def _set_channel_login(
        self, channel: RecorderChannel, username: str, password: str
    ) -> None:
        """``PUT /ISAPI/ContentMgmt/InputProxy/channels/<id>`` with the channel's own
        ``InputProxyChannel`` (read from the list) carrying the new login; a ResponseStatus."""
        document = parsers.channel_document(
            await self._xml(const.INPUT_PROXY), channel.key, username, password
        )
        path = f"{const.INPUT_PROXY}/{quote(channel.key, safe='')}"
        reply = await self.put(path, document, "application/xml", const.XML_TYPES)
        if not parsers.status_ok(reply.body):
            raise BadResponse("hikvision: the channel login change was not answered OK")

    async def _lockout_policy(self) -> LockoutPolicy:
        return parsers.parse_lockout(await self._xml(const.ILLEGAL_LOGIN_LOCK))

    async def _time(self) -> TimeInfo:
        clock = await self._xml(const.TIME)
        try:
            servers: bytes | None = await self._xml(const.NTP_SERVERS)
        except Unsupported:
            servers = None
        return parsers.parse_time(clock, servers)

    async def login_probe(self, username: str, password: str) -> bool:
        return await self.digest_login(const.DEVICE_INFO, username, password, const.XML_TYPES)

    async def _upload_firmware(self, image: Path, length: int) -> None:
        """``PUT /ISAPI/System/updateFirmware`` with the image as the body; the camera answers
        a ResponseStatus (statusCode 1 OK or 7 Reboot Required) and reboots."""
        reply = await self.send_body(
            "PUT",
            const.UPDATE_FIRMWARE,
            FileBody(image),
            content_type="application/octet-stream",
            accept=const.XML_TYPES,
        )
        if not parsers.status_ok(reply.body):
            raise BadResponse("hikvision: updateFirmware did not answer OK or Reboot Required")

    async def _set_password(self, username: str, password: str, current: str | None) -> None:
        """``PUT /ISAPI/Security/users/<id>`` with a ``User`` document (the id read from the
        user list); ``loginPassword`` carries the agent's own password."""
        if self.credential is None:
            raise AuthFailed("hikvision: a password change needs the agent's credential")
        user = parsers.user_id(await self._xml(const.USERS), username)
        document = parsers.user_document(user, username, password, self.credential.password)
        reply = await self.put(const.USER + user, document, "application/xml", const.XML_TYPES)
        if not parsers.status_ok(reply.body):
            raise BadResponse("hikvision: the password change was not answered OK")

    def as_stored(self, setting: Setting, value: SettingValue) -> SettingValue:
        """A time zone as the fixed offset the camera keeps ("Asia/Ho_Chi_Minh" is read back
        as "Etc/GMT-7"); ValueError for one it cannot keep (summer time, half hours)."""
        if setting is Setting.TIME_ZONE and isinstance(value, str):
            return parsers.zone_name(parsers.posix_zone(value)) or value
        return value

    async def _write_settings(self, changes: dict[Setting, SettingValue]) -> None:
        """One resource at a time: GET its document, change the element, PUT it back; the
        camera answers a ResponseStatus (a refusal is an HTTP error or a statusCode not OK)."""
        for setting, value in changes.items():
            path, root, element = const.SETTING_RESOURCES[setting]
            if setting is Setting.TIME_ZONE and isinstance(value, str):
                text = parsers.posix_zone(value)
            elif isinstance(value, str):
                text = value
            elif setting is Setting.NTP:
                text = const.TIME_MODES[not value]
            elif setting in (Setting.RTSP_DIGEST_ONLY, Setting.HTTP_DIGEST_ONLY):
                text = const.CERTIFICATE_TYPES[not value]
            else:
                text = str(value).lower()
            document = parsers.with_text(await self._xml(path), root, element, text)
            reply = await self.put(path, document, "application/xml", const.XML_TYPES)
            if not parsers.status_ok(reply.body):
                raise BadResponse(f"hikvision: the {setting.value} change was not answered OK")
