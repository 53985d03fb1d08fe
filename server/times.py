"""Times as people read them, shared by pages, reports and alert e-mails.

``when`` alone shows a time: in the organisation's zone, ``dd/mm/yyyy HH:MM`` in Vietnamese and
``7 Dec 2026 09:30`` in English (month names spelt out by us, not by the process's locale).
Machine-readable output (CSV, the API, webhooks) keeps ISO 8601 with the offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def checked_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError naming it when it is none (or no name at all)."""
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ValueError(f"timezone: {name!r} is no IANA time zone") from exc


def zone_or(name: str | None, default: ZoneInfo) -> ZoneInfo:
    """The zone an organisation set (``name``), or ``default`` (the collector's) when none."""
    return ZoneInfo(name) if name else default
