"""``VENDORS``, the explicit adapter registry: on a security device the code that runs is the
code listed here. An adapter is added by importing its class and appending it to the tuple;
nothing registers itself by import side effect.

Order is preference: vendor APIs first (richest answers), then ONVIF. ``agent.audit.identify`` tries
them in this order.
"""

from __future__ import annotations

from agent.vendors.axis.adapter import AxisAdapter
from agent.vendors.base import Adapter, AdapterConfig
from agent.vendors.dahua.adapter import DahuaAdapter
from agent.vendors.hikvision.adapter import HikvisionAdapter
from agent.vendors.models import Credential, Target
from agent.vendors.onvif.adapter import OnvifAdapter
from agent.vendors.versions import api_vendor

__all__ = ["VENDORS", "adapter_for", "adapter_pair"]

VENDORS: tuple[type[Adapter], ...] = (HikvisionAdapter, DahuaAdapter, AxisAdapter, OnvifAdapter)


def adapter_for(vendor: str, registry: tuple[type[Adapter], ...] = VENDORS) -> type[Adapter] | None:
    """The registered adapter class for a vendor or brand name (``hikvision``, ``Dahua``; an OEM
    brand gets its maker's: ``kbvision`` and ``imou`` the Dahua adapter, ``ezviz`` and
    ``hilook`` the Hikvision one)."""
    key = api_vendor(vendor) or vendor  # "onvif" names no maker (a placeholder) but an adapter
    return next((cls for cls in registry if cls.vendor == key), None)


def adapter_pair(
    target: Target, credential: Credential, timeout_s: float
) -> tuple[Adapter, OnvifAdapter]:
    """The vendor adapter of ``target.vendor_hint`` (firmware upload, identity, password change)
    and the ONVIF one (network, streams, SetUser); the same object for an ONVIF-only camera.
    The caller closes both."""
    config = AdapterConfig(timeout_s=timeout_s)
    onvif = OnvifAdapter(target, config, credential)
    cls = adapter_for(target.vendor_hint or "onvif")
    if cls is None or cls is OnvifAdapter:
        return onvif, onvif
    return cls(target, config, credential), onvif
