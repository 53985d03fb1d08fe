"""Which adapter fits a camera: the richest one that answers.

Preference: a vendor API (Hikvision ISAPI, Dahua CGI, Axis VAPIX) > ONVIF > the HTTP banner. The
vendor named by discovery (``Target.vendor_hint``; for an OEM brand, its maker) is asked first;
then the camera's answer to ``GET /`` without credentials (``agent.vendors.http.landing``, which
the vendor adapters ask anyway to learn the transport) orders the rest: an adapter that recognises
its ``Server`` header goes first, the others keep registry order, so a camera gets no requests on
the API paths of vendors it is not (an order only: every adapter is still tried until one answers).
Only the agent's own credential is used, once per adapter: identification never guesses
credentials.

Outcomes::

    a vendor API or ONVIF answers      -> Identification(adapter, identity with its source;
                                          "... over https (certificate not verified)" when
                                          plain HTTP was closed or redirected to HTTPS)
    only an HTTP banner answers        -> Identification(None, DeviceIdentity(source="banner:..."))
    no connection / no answer in time  -> Unreachable / Timeout, at the first adapter that saw it
    an API refused our credential      -> AuthFailed, even when an HTTP banner answers (the
                                          camera is then not audited: login failed)
    nothing usable                     -> the most telling error seen: BadResponse, else
                                          Unsupported
"""

from __future__ import annotations

import asyncio
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
    translate,
)
from agent.vendors.http import landing
from agent.vendors.models import Credential, DeviceIdentity, Landing, Target
from agent.vendors.registry import VENDORS
from agent.vendors.versions import api_vendor

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
    if config.web_answers is None:  # the adapters tried on this camera share what they learn
        config = replace(config, web_answers={})
    errors: list[CameraError] = []
    hint = api_vendor(target.vendor_hint)
    hinted = [cls for cls in registry if cls.vendor == hint]
    rest = [cls for cls in registry if cls not in hinted]
    for cls in hinted:
        if found := await _attempt(cls, target, config, credential, errors):
            return found
    if len(rest) > 1:
        answer = await _landing(target, config)
        rest.sort(key=lambda cls: not cls.recognises(answer))  # stable: registry order kept
    for cls in rest:
        if found := await _attempt(cls, target, config, credential, errors):
            return found
    refused = [exc for exc in errors if isinstance(exc, AuthFailed)]
    if refused and credential is not None:  # the banner would hide that our login failed
        raise refused[0]
    banner = await _banner(target, config)
    if banner is not None:
        return Identification(None, DeviceIdentity(source=f"banner:{banner}"))
    worst = max(errors, key=lambda exc: _RANK.get(type(exc), 0), default=None)
    raise worst or Unsupported("no adapter is registered")


async def _attempt(
    cls: type[Adapter],
    target: Target,
    config: AdapterConfig,
    credential: Credential | None,
    errors: list[CameraError],
) -> Identification | None:
    """``cls``'s identification of the camera, or None (its error added to ``errors``);
    ``Unreachable`` and ``Timeout`` end the identification."""
    adapter = cls(target, config, credential)
    try:
        identity = await adapter.identify()
    except (Unreachable, Timeout):
        await adapter.close()
        raise
    except CameraError as exc:
        await adapter.close()
        logger.debug("%s: %s adapter: %s", target.camera_id, cls.vendor, exc.code)
        errors.append(exc)
        return None
    if adapter.https:
        identity = replace(identity, source=f"{identity.source} over {UNVERIFIED_HTTPS}")
    logger.info("%s identified by %s", target.camera_id, identity.source)
    return Identification(adapter, identity)


async def _landing(target: Target, config: AdapterConfig) -> Landing:
    """``GET /``'s answer, within the adapter time limit and translated as an adapter's call
    is: the first vendor adapter tried would ask it anyway, and would fail the same way."""
    try:
        async with asyncio.timeout(config.timeout_s):
            answer = await landing(target, config, "/")
    except Exception as exc:
        translated = translate(exc)
        if translated is None:
            raise
        raise translated from exc
    if answer is None:
        raise Unreachable("neither the HTTP nor the HTTPS port takes a connection")
    return answer


async def _banner(target: Target, config: AdapterConfig) -> str | None:
    """The ``Server`` header of ``GET /`` without credentials (``landing``, usually known)."""
    try:
        answer = await landing(target, config, "/")
    except Exception:  # noqa: BLE001  # best effort after every adapter failed
        return None
    return (answer.server[:80] or None) if answer is not None else None
