"""Vendor adapters behind one vendor-neutral interface (``agent.vendors.base``).

``VENDORS`` is the explicit registry: on a security device the code that runs is the code listed
here. An adapter is added by importing its class and appending it to the tuple; nothing registers
itself by import side effect. Checks never import this package's vendor modules, only ``base`` and
``models``.
"""

from __future__ import annotations

from agent.vendors.base import Adapter

VENDORS: tuple[type[Adapter], ...] = ()


def adapter_for(vendor: str, registry: tuple[type[Adapter], ...] = VENDORS) -> type[Adapter] | None:
    """The registered adapter class for a canonical vendor key (``hikvision``, ``dahua``, ...)."""
    return next((cls for cls in registry if cls.vendor == vendor), None)
