"""Axis over VAPIX: identity, users, services, time settings, one-shot logins."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

from agent.vendors import models
from agent.vendors.axis import const, parsers
from agent.vendors.base import BadResponse, Unsupported
from agent.vendors.http import JSON_TYPES, FileBody, HttpAdapter
from agent.vendors.models import (
    Account,
    Capability,
    DeviceIdentity,
    ServiceState,
    Setting,
    SettingValue,
    TimeInfo,
    vendor_settings,
)


class AxisAdapter(HttpAdapter):
    """AUTH-05 is AXIS OS's brute-force blocking (``const.BRUTE_FORCE``), read from param.cgi."""

    vendor = const.VENDOR
    server_banners = const.SERVER_BANNERS
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.IDENTITY,
            Capability.ACCOUNTS,
            Capability.SERVICES,
            Capability.TIME,
            Capability.LOGIN,
            Capability.LOCKOUT_POLICY,
            Capability.FIRMWARE_UPGRADE,
            Capability.SET_PASSWORD,
            Capability.SETTINGS,
        }
    )
    settable: ClassVar[frozenset[Setting]] = vendor_settings("axis")

    async def _params(self, group: str) -> dict[str, str]:
        reply = await self.get(const.PARAM + group, const.TEXT_TYPES)
        return parsers.parse_params(reply.body, group)

    async def _identify(self) -> DeviceIdentity:
        # Without a credential, getAllUnrestrictedProperties still names model and firmware.
        method = "getAllProperties" if self.credential else "getAllUnrestrictedProperties"
        payload = {"apiVersion": const.BASIC_DEVICE_INFO_VERSION, "method": method}
        try:
            reply = await self.post_json(
                const.BASIC_DEVICE_INFO, payload, anonymous=self.credential is None
            )
        except Unsupported:
            # Quirk (firmware before 9.x, e.g. M3024-L 5.51): no basicdeviceinfo.cgi (404);
            # param.cgi's Brand and Properties groups name model, firmware and serial.
            brand = await self.get(const.PARAM + const.BRAND, const.TEXT_TYPES)
            properties = await self.get(const.PARAM + const.PROPERTIES, const.TEXT_TYPES)
            return parsers.parse_brand_properties(brand.body, properties.body)
        return parsers.parse_basic_device_info(reply.body, method)

    async def _lockout_policy(self) -> models.LockoutPolicy:
        reply = await self.get(const.PARAM + const.BRUTE_FORCE, const.TEXT_TYPES)
        return parsers.parse_lockout(reply.body)

    async def _accounts(self) -> tuple[Account, ...]:
        return parsers.parse_pwdgrp((await self.get(const.PWDGRP, const.TEXT_TYPES)).body)

    async def _group(self, group: str) -> dict[str, str]:
        """A group some firmware lacks: ``{}`` then."""
        reply = await self.get(const.PARAM + group, const.TEXT_TYPES)
        return parsers.parse_group(reply.body, group)

    async def _services(self) -> ServiceState:
        # one parameter for the web and RTSP servers (const.AUTH_POLICY)
        digest_only = parsers.parse_auth_policy(await self._group(const.HTTP))
        snmp, community = parsers.parse_snmp(await self._group(const.SNMP))
        return ServiceState(
            ssh=parsers.param_flag(await self._params(const.SSH), "Enabled"),
            upnp=parsers.param_flag(await self._params(const.UPNP), "Enabled"),
            p2p=parsers.param_flag(await self._params(const.REMOTE_SERVICE), "Enabled"),
            snmp=snmp,
            snmp_community=community,
            http_digest_only=digest_only,
            rtsp_digest_only=digest_only,
            rtsp_auth=parsers.parse_rtsp_viewer(await self._group(const.RTSP)),
        )

    async def _time(self) -> TimeInfo:
        reply = await self.get(const.PARAM + const.TIME, const.TEXT_TYPES)
        return parsers.parse_time(reply.body)

    async def login_probe(self, username: str, password: str) -> bool:
        path = const.PARAM + const.BRAND
        return await self.digest_login(path, username, password, const.TEXT_TYPES)

    async def _upload_firmware(self, image: Path, length: int) -> None:
        """VAPIX firmware management ``upgrade``: multipart, a JSON part then the image."""
        boundary = f"camwarden{secrets.token_hex(12)}"
        call = json.dumps({"apiVersion": const.FIRMWARE_API_VERSION, "method": "upgrade"})
        head = (
            f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{call}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="fw.bin"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        reply = await self.send_body(
            "POST",
            const.FIRMWARE_MANAGEMENT,
            FileBody(image, head=head, tail=tail),
            content_type=f"multipart/form-data; boundary={boundary}",
            accept=JSON_TYPES,
        )
        answer = json.loads(reply.body)
        if not isinstance(answer, dict) or "error" in answer or "data" not in answer:
            raise BadResponse("axis: firmware upgrade refused")

    async def _set_password(self, username: str, password: str, current: str | None) -> None:
        """``pwdgrp.cgi?action=update&user=..&pwd=..``; the password as a secret parameter."""
        reply = await self.get(
            f"{const.PWDGRP_UPDATE}&user={quote(username, safe='')}",
            const.TEXT_TYPES,
            secret_params={"pwd": password},
        )
        if not reply.body.strip().startswith(f"Modified account {username}".encode()):
            raise BadResponse("axis: pwdgrp update did not answer 'Modified account'")

    def check_changes(self, changes: Mapping[Setting, SettingValue]) -> None:
        """Web and RTSP Digest-only are one parameter: asked for different values, refused."""
        if len({v for s, v in changes.items() if s in _DIGEST_SETTINGS}) > 1:
            raise ValueError(
                "http_digest_only and rtsp_digest_only are one Axis parameter "
                f"({const.SETTING_PARAMS[Setting.HTTP_DIGEST_ONLY]}): asked for both values"
            )

    async def _write_settings(self, changes: dict[Setting, SettingValue]) -> None:
        """All changes in one request; the camera applies them in order and answers "OK".
        SNMP v1/v2c is two parameters (``V1``, ``V2c``) written alike, with the agent itself
        (``Enabled``) switched on when they are."""
        params: dict[str, str] = {}
        for setting, value in changes.items():
            if isinstance(value, str):
                params[const.SETTING_PARAMS[setting]] = value
                continue
            word = const.SETTING_WORDS.get(setting, const.FLAG_WORDS)[not value]
            params[const.SETTING_PARAMS[setting]] = word
            if setting is Setting.SNMP:
                params[const.SNMP_ALSO] = word
                if value:
                    params[const.SNMP_ON] = "yes"
        await self.set_by_query(const.PARAM_UPDATE, params, const.TEXT_TYPES)


_DIGEST_SETTINGS = frozenset({Setting.HTTP_DIGEST_ONLY, Setting.RTSP_DIGEST_ONLY})
