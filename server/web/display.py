"""What a page shows of a value: every ``{{ expression }}`` of a template passes through ``shown``.

Stored values come from cameras and agents, the least trustworthy computers on the network, and
from older collectors that stored what the wire schema refuses today. Autoescaping keeps markup
inert; ``shown`` also keeps a value from hiding or reordering the text around it on screen:
control characters go, bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069,
as in ``"\u202egnp.exe"``) become a visible U+FFFD, and text longer than ``SHOWN_MAX`` is cut with
``protocol.text.CUT_MARKER`` (the API gives the whole stored value).

Times are shown by ``when`` alone: in the organisation's zone, ``dd/mm/yyyy HH:MM`` in
Vietnamese and ``7 Dec 2026 09:30`` in English (month names spelt out by us, not by the
process's locale). Machine-readable output (CSV, the API) keeps ISO 8601 with the offset.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from jinja2 import BaseLoader, ChoiceLoader, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from protocol.text import TEXT_MAX, clean_text

SHOWN_MAX: Final = TEXT_MAX
_BIDI: Final = re.compile("[\u202a-\u202e\u2066-\u2069]")


def shown_text(text: str) -> str:
    """``text`` as a page or an export may show it."""
    return clean_text(_BIDI.sub("\ufffd", text), SHOWN_MAX)


def shown(value: object) -> object:
    """``value`` as a page may show it (markup made by our own templates passes unchanged)."""
    if isinstance(value, Markup) or not isinstance(value, str | list | tuple | dict):
        return value
    return shown_text(value if isinstance(value, str) else str(value))


def environment(*packages: str) -> Environment:
    """The templates of ``packages`` (first wins), autoescaped, every output through ``shown``."""
    loaders: list[BaseLoader] = [PackageLoader(p, "templates") for p in packages]
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown,
    )


_MONTHS: Final = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]


def when(value: datetime | date | None, lang: str, zone: ZoneInfo) -> str:
    """``value`` as people read it in ``lang``: a time in ``zone`` (a naive one is taken as
    UTC, as storage keeps it), a date as it is; nothing for no value."""
    if value is None:
        return ""
    clock = ""
    if isinstance(value, datetime):
        local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)
        value, clock = local.date(), f" {local:%H:%M}"
    if lang == "vi":
        return f"{value:%d/%m/%Y}{clock}"
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}{clock}"


def utc_offset(zone: ZoneInfo, at: datetime) -> str:
    """``UTC+07:00``: the zone's offset at ``at``, to name the zone beside the times shown."""
    offset = at.astimezone(zone).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"
