"""What a page shows of a value: every ``{{ expression }}`` of a template passes through ``shown``.

Stored values come from cameras and agents, the least trustworthy computers on the network, and
from older collectors that stored what the wire schema refuses today. Autoescaping keeps markup
inert; ``shown`` also keeps a value from hiding or reordering the text around it on screen:
control characters go, bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069,
as in ``"\u202egnp.exe"``) become a visible U+FFFD, and text longer than ``SHOWN_MAX`` is cut with
``protocol.text.CUT_MARKER`` (the API gives the whole stored value).

Times are shown by ``server.times.when`` alone (pages, reports and alert e-mails).
"""

from __future__ import annotations

import re
from typing import Final

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
