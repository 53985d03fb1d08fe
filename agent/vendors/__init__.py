"""Vendor adapters behind one vendor-neutral interface (``agent.vendors.base``).

The registry of adapters lives in ``agent.vendors.registry``, not here: importing this package
(as every ``agent.vendors.base`` import does) must not pull the adapters and their HTTP and
ONVIF libraries in. Checks never import the vendor modules, only ``base`` and ``models``.
"""
