"""Axis over VAPIX: identity, users, services, time settings, one-shot logins."""

from __future__ import annotations

from typing import ClassVar

from agent.vendors.axis import const, parsers
from agent.vendors.http import HttpAdapter
from agent.vendors.models import Account, Capability, DeviceIdentity, ServiceState, TimeInfo


class AxisAdapter(HttpAdapter):
    """Brute-force blocking is not read: its VAPIX parameter names are unverified (AUTH-05)."""

    vendor = const.VENDOR
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.IDENTITY,
            Capability.ACCOUNTS,
            Capability.SERVICES,
            Capability.TIME,
            Capability.LOGIN,
        }
    )

    async def _params(self, group: str) -> dict[str, str]:
        reply = await self.get(const.PARAM + group, const.TEXT_TYPES)
        return parsers.parse_params(reply.body, group)

    async def _identify(self) -> DeviceIdentity:
        # Without a credential, getAllUnrestrictedProperties still names model and firmware.
        method = "getAllProperties" if self.credential else "getAllUnrestrictedProperties"
        payload = {"apiVersion": const.BASIC_DEVICE_INFO_VERSION, "method": method}
        reply = await self.post_json(
            const.BASIC_DEVICE_INFO, payload, anonymous=self.credential is None
        )
        return parsers.parse_basic_device_info(reply.body, method)

    async def _accounts(self) -> tuple[Account, ...]:
        return parsers.parse_pwdgrp((await self.get(const.PWDGRP, const.TEXT_TYPES)).body)

    async def _services(self) -> ServiceState:
        return ServiceState(
            ssh=parsers.param_flag(await self._params(const.SSH), "Enabled"),
            upnp=parsers.param_flag(await self._params(const.UPNP), "Enabled"),
            p2p=parsers.param_flag(await self._params(const.REMOTE_SERVICE), "Enabled"),
        )

    async def _time(self) -> TimeInfo:
        reply = await self.get(const.PARAM + const.TIME, const.TEXT_TYPES)
        return parsers.parse_time(reply.body)

    async def login_probe(self, username: str, password: str) -> bool:
        path = const.PARAM + const.BRAND
        return await self.digest_login(path, username, password, const.TEXT_TYPES)
