"""Text fields on the wire: which characters they may hold, and how a side makes any string fit.

Cameras are the least trustworthy computers on a network: a model string may carry a NUL, an
escape sequence or ten thousand characters. The wire contract refuses control characters in text
fields (``TEXT_PATTERN``), and the side that first reads such a string (the agent, from a camera)
passes it through ``clean_text`` so that one camera's odd answer never spoils a whole message.
Tab, newline and carriage return stay: evidence and reasons may quote multi-line device text.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["CUT_MARKER", "TEXT_MAX", "TEXT_PATTERN", "clean_text", "has_control"]

TEXT_MAX: Final = 512
# C0 controls other than tab, newline and carriage return; DEL; the C1 controls
_CONTROL: Final = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # escapes: readable in errors and schemas
TEXT_PATTERN: Final = f"^[^{_CONTROL}]*$"
CUT_MARKER: Final = "…[cut]"
_CONTROL_RE: Final = re.compile(f"[{_CONTROL}]")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character that no text field of the wire contract may hold."""
    return _CONTROL_RE.search(text) is not None


def clean_text(text: str, limit: int = TEXT_MAX) -> str:
    """``text`` without control characters, cut to ``limit`` characters with ``CUT_MARKER`` last."""
    if limit <= len(CUT_MARKER):
        raise ValueError(f"limit {limit} leaves no room for the cut marker")
    text = _CONTROL_RE.sub("", text)
    if len(text) <= limit:
        return text
    return text[: limit - len(CUT_MARKER)] + CUT_MARKER
