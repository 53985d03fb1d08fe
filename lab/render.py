"""Render persona templates: ``${key}`` or ``${key:format-spec}`` over a context mapping.

``$``-placeholders keep JSON and XML bodies free of brace escaping. Values are formatted with
``format(value, spec)``, so dates take strftime specs and ``Flag`` takes vendor spellings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

__all__ = ["Flag", "render"]

_PLACEHOLDER = re.compile(r"\$\{(\w+)(?::([^}]*))?\}")


class Flag:
    """A boolean as vendors print it: ``true`` (default spec), ``yesno``, ``10`` or ``TF``."""

    __slots__ = ("value",)
    _SPELLINGS: ClassVar[dict[str, tuple[str, str]]] = {
        "": ("true", "false"),
        "yesno": ("yes", "no"),
        "10": ("1", "0"),
        "TF": ("True", "False"),
        "OnOff": ("On", "Off"),
    }

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __format__(self, spec: str) -> str:
        on, off = self._SPELLINGS[spec]
        return on if self.value else off


def render(template: str, context: Mapping[str, object]) -> str:
    def one(match: re.Match[str]) -> str:
        return format(context[match.group(1)], match.group(2) or "")

    return _PLACEHOLDER.sub(one, template)
