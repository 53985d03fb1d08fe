"""Dahua over the HTTP CGI API: identity, users, services, time, one-shot logins."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

from agent.vendors.base import BadResponse, Unsupported
from agent.vendors.dahua import const, parsers
from agent.vendors.http import FileBody, HttpAdapter
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


class DahuaAdapter(HttpAdapter):
    """The lockout policy is read from the ``General`` config table (``const.GENERAL``); it has
    no counting window. ``LoginFailureAlarm`` only raises an alarm and is not read."""

    vendor = const.VENDOR
    server_banners = const.SERVER_BANNERS
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.IDENTITY,
            Capability.ACCOUNTS,
            Capability.LOCKOUT_POLICY,
            Capability.SERVICES,
            Capability.TIME,
            Capability.LOGIN,
            Capability.FIRMWARE_UPGRADE,
            Capability.SET_PASSWORD,
            Capability.SETTINGS,
            Capability.CHANNELS,
        }
    )
    settable: ClassVar[frozenset[Setting]] = vendor_settings("dahua")

    async def _text(self, path: str) -> bytes:
        return (await self.get(path, const.TEXT_TYPES)).body

    async def _config(self, name: str) -> dict[str, str]:
        try:
            return parsers.parse_kv(await self._text(const.CONFIG + name))
        except Unsupported:  # the firmware has no such config table: unknown, not off
            return {}

    async def _identify(self) -> DeviceIdentity:
        version = await self._text(const.SOFTWARE_VERSION)
        device_type = await self._text(const.DEVICE_TYPE)
        system = await self._text(const.SYSTEM_INFO)
        try:
            serial: bytes | None = await self._text(const.SERIAL_NO)
        except Unsupported:  # getSystemInfo's serialNumber names it too
            serial = None
        return parsers.parse_identity(version, device_type, serial, system)

    async def _accounts(self) -> tuple[Account, ...]:
        return parsers.parse_users(await self._text(const.USERS))

    async def _services(self) -> ServiceState:
        try:
            snmp: Mapping[str, str] = await self._config(const.SNMP)
        except (Unsupported, BadResponse):  # no SNMP table on this firmware: unknown
            snmp = {}
        try:
            user_global: Mapping[str, str] = await self._config(const.USER_GLOBAL)
        except (Unsupported, BadResponse):  # no such table on this firmware: unknown
            user_global = {}
        try:
            rtsp: Mapping[str, str] = await self._config(const.RTSP)
        except (Unsupported, BadResponse):  # no RTSP table on this firmware: unknown
            rtsp = {}
        onvif_key = f"table.{const.SETTING_KEYS[Setting.ONVIF_AUTH]}"
        auth_type = rtsp.get(f"table.{const.RTSP_AUTH_TYPE}")
        return ServiceState(
            rtsp_auth=parsers.rtsp_auth(auth_type),
            rtsp_digest_only=parsers.rtsp_digest_only(auth_type),
            onvif_auth=parsers.config_value_flag(user_global, onvif_key),
            snmp=parsers.config_flag(snmp, const.SNMP),
            snmp_community=snmp.get(f"table.{const.SNMP}.GetCommunity"),
            upnp=parsers.config_flag(await self._config(const.UPNP), const.UPNP),
            p2p=parsers.config_flag(await self._config(const.P2P), const.P2P),
            ssh=parsers.config_flag(await self._config(const.SSHD), const.SSHD),
            telnet=parsers.config_flag(await self._config(const.TELNET), const.TELNET),
            ddns=parsers.config_flag(await self._config(const.DDNS), const.DDNS),
        )

    async def _channels(self) -> tuple[RecorderChannel, ...]:
        """A camera has no RemoteDevice table: it answers 404, or refuses the unknown name (an
        HTTP error that is not a login refusal), or an empty table: not a recorder."""
        try:
            table = await self._config(const.REMOTE_DEVICE)
        except BadResponse as exc:
            raise Unsupported(f"no RemoteDevice table ({exc.detail}): not a recorder") from exc
        if not any(key.startswith("table.RemoteDevice.") for key in table):
            raise Unsupported("no remote devices: not a recorder")
        try:
            states: Mapping[str, str] | None = parsers.parse_kv(
                await self._text(const.CAMERA_STATE)
            )
        except Unsupported:
            states = None
        return parsers.parse_remote_devices(table, states)

    async def _set_channel_login(
        self, channel: RecorderChannel, username: str, password: str
    ) -> None:
        """``configManager.cgi?action=setConfig&RemoteDevice.<block>.UserName=..&...Password=..``
        (the block as the RemoteDevice table names it); the password as a secret parameter."""
        block = f"{const.REMOTE_DEVICE}.{channel.key}"
        reply = await self.get(
            f"{const.SET_CONFIG}&{quote(block + '.UserName', safe='.[]:')}"
            f"={quote(username, safe='')}",
            const.TEXT_TYPES,
            secret_params={f"{block}.Password": password},
        )
        if reply.body.strip() != b"OK":
            raise BadResponse("dahua: the channel login change was not answered OK")

    async def _lockout_policy(self) -> LockoutPolicy:
        return lockout_policy(await self._config(const.GENERAL))

    async def _time(self) -> TimeInfo:
        clock = await self._text(const.CURRENT_TIME)
        try:
            ntp: bytes | None = await self._text(const.CONFIG + const.NTP)
        except Unsupported:
            ntp = None
        return parsers.parse_time(clock, ntp)

    async def login_probe(self, username: str, password: str) -> bool:
        return await self.digest_login(const.DEVICE_TYPE, username, password, const.TEXT_TYPES)

    async def _upload_firmware(self, image: Path, length: int) -> None:
        """``POST /cgi-bin/upgrader.cgi?action=uploadFirmware``; the camera answers ``OK``."""
        reply = await self.send_body(
            "POST",
            const.UPLOAD_FIRMWARE,
            FileBody(image),
            content_type="application/octet-stream",
            accept=const.TEXT_TYPES,
        )
        if reply.body.strip() != b"OK":
            raise BadResponse("dahua: uploadFirmware did not answer OK")

    async def _set_password(self, username: str, password: str, current: str | None) -> None:
        """``userManager.cgi?action=modifyPassword&name=..&pwd=..&pwdOld=..``: the API wants the
        account's current password; the passwords go as secret parameters (never logged)."""
        if current is None and self.credential and self.credential.username == username:
            current = self.credential.password
        if current is None:
            raise Unsupported("dahua: modifyPassword needs the account's current password")
        reply = await self.get(
            f"{const.MODIFY_PASSWORD}&name={quote(username, safe='')}",
            const.TEXT_TYPES,
            secret_params={"pwd": password, "pwdOld": current},
        )
        if reply.body.strip() != b"OK":
            raise BadResponse("dahua: modifyPassword did not answer OK")

    def as_stored(self, setting: Setting, value: SettingValue) -> SettingValue:
        """A time zone as the fixed offset the camera keeps ("Asia/Ho_Chi_Minh" is read back as
        "Etc/GMT-7"); ValueError for one it cannot keep (summer time, half hours)."""
        if setting is Setting.TIME_ZONE and isinstance(value, str):
            return parsers.zone_name(parsers.zone_index(value)) or value
        return value

    async def _write_settings(self, changes: dict[Setting, SettingValue]) -> None:
        """All changes in one request; the camera applies them in order and answers "OK". A
        time zone goes as its index in the camera's table of offsets (``const.TIME_ZONES``);
        RTSP authentication and Digest only as the one ``RTSP.AuthType`` word they make."""
        params: dict[str, str] = {}
        for setting, value in changes.items():
            key = const.SETTING_KEYS[setting]
            if setting in const.RTSP_SETTINGS:
                auth, digest = changes.get(Setting.RTSP_AUTH), changes.get(Setting.RTSP_DIGEST_ONLY)
                params[key] = parsers.rtsp_auth_type(
                    None if auth is None else bool(auth), None if digest is None else bool(digest)
                )
            elif setting is Setting.TIME_ZONE and isinstance(value, str):
                params[key] = parsers.zone_index(value)
            else:
                params[key] = value if isinstance(value, str) else const.FLAG_WORDS[not value]
        await self.set_by_query(const.SET_CONFIG, params, const.TEXT_TYPES)


def lockout_policy(table: Mapping[str, str]) -> LockoutPolicy:
    """The login lock of a ``General`` table; ``Unsupported`` when it holds none of its keys
    (older firmware), so the check says the policy is unknown. A value that is not a number
    or a flag is a bad answer, not "off"."""
    keys = (const.LOCK_ENABLE, const.LOCK_TIMES, const.LOCK_TIME_S)
    if not any(k in table for k in keys):
        raise Unsupported("lockout_policy")
    enabled = table.get(const.LOCK_ENABLE)
    if enabled is not None and enabled.lower() not in ("true", "false"):
        raise BadResponse(f"LockLoginEnable is {enabled[:20]!r}")
    try:
        times = table.get(const.LOCK_TIMES)
        lock = table.get(const.LOCK_TIME_S)
        return LockoutPolicy(
            enabled=None if enabled is None else enabled.lower() == "true",
            threshold=None if times is None else int(times),
            lock_s=None if lock is None else float(int(lock)),
        )
    except ValueError as exc:
        raise BadResponse("a General lock setting is not a whole number") from exc
