"""Time zones as cameras keep them: a fixed offset from UTC, not a rule with summer time (pure).

A camera API that stores an offset (Hikvision's POSIX ``timeZone``, Dahua's ``NTP.TimeZone``
index) is written the offset of an IANA zone that has no summer time, and read back as the IANA
name of that fixed offset ("Asia/Ho_Chi_Minh" is kept as UTC+7 and read back as "Etc/GMT-7").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["fixed_offset", "offset_zone"]


def fixed_offset(name: str, *, year: int | None = None) -> int:
    """Minutes east of UTC of IANA zone ``name``; ValueError for an unknown zone, or one whose
    offset changes over the year (summer time): a camera keeping an offset could not follow it."""
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name[:40]!r}") from exc
    year = year or datetime.now(UTC).year
    offsets = {zone.utcoffset(datetime(year, month, 1)) for month in (1, 7)}
    if len(offsets) != 1:
        raise ValueError(f"time zone {name!r} has summer time: not written as a fixed offset")
    offset = offsets.pop() or timedelta()
    return int(offset.total_seconds()) // 60


def offset_zone(minutes: int) -> str | None:
    """The IANA name of the fixed offset ``minutes`` east of UTC ("UTC", "Etc/GMT-7" for
    UTC+7); None for an offset that is not whole hours or outside -12..+14 (no such name)."""
    hours, rest = divmod(minutes, 60)
    if rest or not -12 <= hours <= 14:
        return None
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
