"""How the adapter-based checks reach a camera's interfaces, through the registry only.

A camera identified by its vendor API (ISAPI, CGI, VAPIX) usually answers ONVIF as well, on the
same HTTP port. Several controls live on the ONVIF side (AUTH-10 anonymous operations, the
pre-auth clock of LOG-01, DDNS and discovery mode), and AUTH-01 must try credentials on every
interface the camera answers. ``onvif_adapter`` gives the check the ONVIF adapter for the same
target: the identified one when the camera was identified over ONVIF, otherwise a companion
built from the registry (closed when the block ends). Checks never import a vendor module.

Which interface an adapter tries credentials on: the ONVIF adapter tries them over ONVIF; the
vendor adapters try them over their HTTP API (``agent.vendors.http.HttpAdapter``), on HTTPS
when the camera closes plain HTTP or redirects it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from agent.checks.base import CheckContext
from agent.vendors.base import Adapter, AdapterConfig, Unsupported
from agent.vendors.models import Credential, Interface

ONVIF: Final = "onvif"  # canonical key of the ONVIF adapter in the registry


def adapter_of(ctx: CheckContext) -> Adapter:
    """The identified adapter; a check that requires a capability always has one."""
    if ctx.adapter is None:
        raise Unsupported("no adapter identified this camera")
    return ctx.adapter


def login_interface(adapter: Adapter) -> Interface:
    """The interface on which ``adapter.try_login`` sends its attempts (a vendor API on a
    camera with HTTPS only: HTTPS)."""
    if adapter.vendor == ONVIF:
        return Interface.ONVIF
    return Interface.HTTPS if adapter.https else Interface.HTTP


def adapter_config(ctx: CheckContext) -> AdapterConfig:
    return ctx.adapter.config if ctx.adapter is not None else AdapterConfig()


@asynccontextmanager
async def onvif_adapter(
    ctx: CheckContext, credential: Credential | None
) -> AsyncIterator[Adapter | None]:
    """The ONVIF adapter of ``ctx.target`` holding ``credential``; None without one registered.

    The identified adapter is reused when it is the ONVIF one with the same credential; a
    companion is kept in ``ctx.companions`` when the caller gave one (one ONVIF session set-up
    and clock read per camera and credential for the whole audit, not one per check).
    """
    current = ctx.adapter
    if current is not None and current.vendor == ONVIF and current.credential == credential:
        yield current
        return
    from agent.vendors.registry import adapter_for  # noqa: PLC0415  # httpx: only when auditing

    cls = adapter_for(ONVIF)
    if cls is None:
        yield None
        return
    if ctx.companions is None:
        companion = cls(ctx.target, adapter_config(ctx), credential)
        try:
            yield companion
        finally:
            await companion.close()
        return
    shared = ctx.companions.get(credential)
    if shared is None:
        shared = ctx.companions[credential] = cls(ctx.target, adapter_config(ctx), credential)
    yield shared
