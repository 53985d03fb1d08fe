"""Which adapter fits a camera: the richest one that answers.

Preference: a vendor API (Hikvision ISAPI, Dahua CGI, Axis VAPIX) > ONVIF > the HTTP banner.
The vendor named by discovery (``Target.vendor_hint``) is asked first. Only the agent's own
credential is used, once per adapter: identification never guesses credentials.

Outcomes::

    a vendor API or ONVIF answers      -> Identification(adapter, identity with its source;
                                          "... over https (certificate not verified)" when
                                          plain HTTP was closed or redirected to HTTPS)
    only an HTTP banner answers        -> Identification(None, DeviceIdentity(source="banner:..."))
    no connection / no answer in time  -> Unreachable / Timeout, at the first adapter that saw it
    nothing usable                     -> the most telling error seen: AuthFailed (the camera
                                          refused our credential), else BadResponse, else
                                          Unsupported
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Final

from agent.vendors.base import (
    Adapter,
    AdapterConfig,
    AuthFailed,
    BadResponse,
    CameraError,
    Timeout,
    Unreachable,
    Unsupported,
)
from agent.vendors.http import make_client
from agent.vendors.models import Credential, DeviceIdentity, Target
from agent.vendors.registry import VENDORS
from agent.vendors.versions import canonical_vendor

__all__ = ["UNVERIFIED_HTTPS", "Identification", "identify", "prepare"]

logger = logging.getLogger(__name__)
# appended to the source of an identity read over HTTPS: the certificate was not verified
# (agent.vendors.http.TLS_VERIFY_REASON); the TLS checks judge it (COM-02, COM-03)
UNVERIFIED_HTTPS: Final = "https (certificate not verified)"
_RANK: dict[type[CameraError], int] = {AuthFailed: 3, BadResponse: 2, Unsupported: 1}


@dataclass(frozen=True, slots=True)
class Identification:
    """The adapter to audit with (the caller closes it), or None for a banner-only camera."""

    adapter: Adapter | None
    identity: DeviceIdentity


def _order(target: Target, registry: tuple[type[Adapter], ...]) -> list[type[Adapter]]:
    hint = canonical_vendor(target.vendor_hint)
    return sorted(registry, key=lambda cls: cls.vendor != hint)  # stable: registry order kept


async def prepare(registry: tuple[type[Adapter], ...] = VENDORS) -> None:
    """Let every registered adapter load what it needs before cameras are timed
    (``Adapter.prepare``)."""
    for cls in registry:
        await cls.prepare()


async def identify(
    target: Target,
    config: AdapterConfig,
    credential: Credential | None = None,
    registry: tuple[type[Adapter], ...] = VENDORS,
) -> Identification:
    worst: CameraError | None = None
    for cls in _order(target, registry):
        adapter = cls(target, config, credential)
        try:
            identity = await adapter.identify()
        except (Unreachable, Timeout):
            await adapter.close()
            raise
        except CameraError as exc:
            await adapter.close()
            logger.debug("%s: %s adapter: %s", target.camera_id, cls.vendor, exc.code)
            if worst is None or _RANK.get(type(exc), 0) > _RANK.get(type(worst), 0):
                worst = exc
            continue
        if adapter.https:
            identity = replace(identity, source=f"{identity.source} over {UNVERIFIED_HTTPS}")
        logger.info("%s identified by %s", target.camera_id, identity.source)
        return Identification(adapter, identity)
    banner = await _banner(target, config)
    if banner is not None:
        return Identification(None, DeviceIdentity(source=f"banner:{banner}"))
    raise worst or Unsupported("no adapter is registered")


async def _banner(target: Target, config: AdapterConfig) -> str | None:
    """The ``Server`` header of ``GET /`` without credentials (body not read)."""
    async with make_client(target, config, None) as client:
        try:
            async with client.stream("GET", "/") as response:
                server = response.headers.get("Server", "").strip()
        except Exception:  # noqa: BLE001  # best effort after every adapter failed
            return None
    return server[:80] or None
