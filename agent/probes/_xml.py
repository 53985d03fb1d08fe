"""Parsing XML from the network: stdlib ElementTree, size-capped, DTDs refused outright.

Refusing any ``<!DOCTYPE`` closes entity expansion (billion laughs) and external entities
before the parser sees the document; nothing a camera or router legitimately sends needs one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # guarded below: no DTD, bounded size

from agent.vendors.base import BadResponse

__all__ = ["parse"]


def parse(data: bytes, *, max_bytes: int = 256 * 1024) -> ET.Element:
    if len(data) > max_bytes:
        raise BadResponse(f"XML document of {len(data)} bytes exceeds {max_bytes}")
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise BadResponse("XML with a DTD refused")
    try:
        return ET.fromstring(data)  # noqa: S314  # see module doc
    except (ET.ParseError, LookupError) as exc:  # LookupError: an unknown encoding
        raise BadResponse(f"malformed XML: {exc}") from exc
