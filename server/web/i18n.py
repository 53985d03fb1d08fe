"""The message catalogue: interface strings and finding texts in Vietnamese and English.

Texts live in ``server/web/i18n/{vi,en}.toml`` keyed by the finding codes agents emit, so they
change without touching agents. A finding code missing from the chosen language falls back to
the code followed by the English text; a code missing everywhere shows the code and the agent's
own reason.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

LANGS: Final = ("vi", "en")
FALLBACK: Final = "en"


class _Keep(dict[str, Any]):
    """Placeholders without evidence stay visible as ``{name}`` instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, values: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _Keep(values))


@dataclass(frozen=True, slots=True)
class FindingText:
    title: str
    advice: str | None
    translated: bool  # False: shown in English or as the bare code


class Catalogue:
    def __init__(self, data: dict[str, dict[str, Any]]) -> None:
        self._ui: dict[str, dict[str, str]] = {lang: data[lang].get("ui", {}) for lang in data}
        self._findings: dict[str, dict[str, dict[str, str]]] = {
            lang: data[lang].get("findings", {}) for lang in data
        }

    @classmethod
    def load(cls) -> Catalogue:
        root = files("server.web") / "i18n"
        return cls(
            {lang: tomllib.loads((root / f"{lang}.toml").read_text("utf-8")) for lang in LANGS}
        )

    def ui_keys(self, lang: str) -> set[str]:
        return set(self._ui[lang])

    def finding_codes(self, lang: str) -> set[str]:
        return set(self._findings[lang])

    def t(self, lang: str, key: str, **values: Any) -> str:
        text = self._ui.get(lang, {}).get(key) or self._ui[FALLBACK].get(key) or key
        return fill(text, values) if values else text

    def finding(
        self, lang: str, code: str, evidence: dict[str, Any], reason: str | None = None
    ) -> FindingText:
        own = self._findings.get(lang, {}).get(code)
        if own is not None:
            return FindingText(fill(own["title"], evidence), own.get("advice"), True)
        english = self._findings[FALLBACK].get(code)
        if english is not None:
            title = f"{code}: {fill(english['title'], evidence)}"
            return FindingText(title, english.get("advice"), False)
        return FindingText(f"{code}: {reason}" if reason else code, None, False)
