from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.text import CUT_MARKER, TEXT_MAX, TEXT_PATTERN, clean_text, has_control


def test_control_characters_removed_and_layout_kept() -> None:
    assert clean_text("DS-2CD\x002032\x1b[31m-I\x7f\x85") == "DS-2CD2032[31m-I"
    assert clean_text("line one\nline two\tend\r") == "line one\nline two\tend\r"
    assert has_control("a\x00b")
    assert not has_control("Camera \u202eevil \u00e9")


def test_long_text_cut_with_marker() -> None:
    cut = clean_text("x" * 10_000)
    assert len(cut) == TEXT_MAX
    assert cut.endswith(CUT_MARKER)
    assert clean_text("x" * TEXT_MAX) == "x" * TEXT_MAX
    assert clean_text("abcdefghijklmnop", limit=10) == "abcd" + CUT_MARKER


def test_limit_must_leave_room_for_the_marker() -> None:
    with pytest.raises(ValueError, match="no room"):
        clean_text("abc", limit=len(CUT_MARKER))


@given(st.text(), st.integers(min_value=len(CUT_MARKER) + 1, max_value=600))
def test_clean_text_always_fits_the_wire(text: str, limit: int) -> None:
    cleaned = clean_text(text, limit)
    assert len(cleaned) <= limit
    assert re.fullmatch(TEXT_PATTERN, cleaned)
    assert not has_control(cleaned)
