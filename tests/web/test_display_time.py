"""Times as people read them: the organisation's zone, dd/mm/yyyy HH:MM in Vietnamese."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from server.config import WebConfig
from server.times import utc_offset, when

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def test_times_in_the_zone_and_the_language() -> None:
    at = datetime(2026, 12, 31, 20, 5, tzinfo=UTC)  # already the next day in Hanoi
    assert when(at, "vi", HCM) == "01/01/2027 03:05"
    assert when(at, "en", HCM) == "1 Jan 2027 03:05"
    assert when(at.replace(tzinfo=None), "vi", HCM) == "01/01/2027 03:05"  # naive: UTC
    assert when(at, "vi", ZoneInfo("Europe/Paris")) == "31/12/2026 21:05"
    assert when(date(2024, 5, 1), "vi", HCM) == "01/05/2024"  # a date stays the same day
    assert when(date(2024, 5, 1), "en", HCM) == "1 May 2024"
    assert when(None, "vi", HCM) == ""
    assert utc_offset(HCM, at) == "UTC+07:00"


def test_the_zone_is_configurable_and_checked() -> None:
    assert WebConfig().zone() == HCM
    assert WebConfig(timezone="UTC").zone() == ZoneInfo("UTC")
    with pytest.raises(ValueError, match="timezone: 'Mars/Olympus' is no IANA time zone"):
        WebConfig(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="is no IANA time zone"):
        WebConfig(timezone="../../etc/passwd")
