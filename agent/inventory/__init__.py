"""Camera inventory (INV-04): where cameras are found, and what changed since last time.

``discover`` finds hosts (static list, WS-Discovery, SSDP, a TCP sweep of the camera subnets);
``diff`` compares two inventories (pure). Every probe stays inside the configured camera
subnets: a sweep of anything else is refused with ``OutOfScope``, and discovery answers from
outside them are dropped.
"""
