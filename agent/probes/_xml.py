"""Parsing XML from the network: stdlib ElementTree, size-capped, DTDs and entities refused.

A document that declares a DTD (``<!DOCTYPE``) or an entity is refused before it is parsed,
which closes entity expansion (billion laughs) and external entities; nothing a camera or a
router legitimately sends needs one. The declaration is looked for by expat itself
(``refuse_dtd``), so it is found in whatever encoding the document is written (UTF-8, UTF-16
with or without a byte-order mark, a declared legacy encoding); a document expat cannot read
(UTF-32, garbage before the root element) is refused as well. The ONVIF client applies the
same check to every SOAP answer before zeep parses it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # guarded below: no DTD, bounded size
from typing import NoReturn
from xml.parsers import expat

from agent.vendors.base import BadResponse

__all__ = ["parse", "refuse_dtd"]


class _RootReached(Exception):
    """The root element started: the prolog, the only place for a DTD, is behind us."""


def _doctype(*_: object) -> NoReturn:
    raise BadResponse("XML with a DTD refused")


def _entity(*_: object) -> NoReturn:
    raise BadResponse("XML with an entity declaration refused")


def _root(*_: object) -> NoReturn:
    raise _RootReached


def refuse_dtd(data: bytes) -> None:
    """``BadResponse`` unless ``data`` reaches its root element without a DTD or an entity
    declaration, read by expat in the document's own encoding (only the prolog is read)."""
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _doctype
    parser.EntityDeclHandler = _entity
    parser.StartElementHandler = _root
    try:
        parser.Parse(data, True)
    except _RootReached:
        return
    except expat.ExpatError as exc:
        raise BadResponse(f"malformed XML: {expat.errors.messages[exc.code]}") from None
    except (ValueError, LookupError) as exc:  # multi-byte encodings expat cannot read; unknown
        raise BadResponse(f"XML in an encoding that cannot be checked: {exc}") from None
    raise BadResponse("XML without a root element")


def parse(data: bytes, *, max_bytes: int = 256 * 1024) -> ET.Element:
    if len(data) > max_bytes:
        raise BadResponse(f"XML document of {len(data)} bytes exceeds {max_bytes}")
    refuse_dtd(data)
    try:
        return ET.fromstring(data)  # noqa: S314  # see module doc
    except (ET.ParseError, LookupError) as exc:  # LookupError: an unknown encoding
        raise BadResponse(f"malformed XML: {exc}") from exc
