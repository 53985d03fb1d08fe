"""The message catalogue: interface strings and finding texts in Vietnamese and English.

Texts live in ``server/web/i18n/{vi,en}.toml`` keyed by the finding codes agents emit, so they
change without touching agents. Each finding has a ``title``, ``why`` (why it matters) and
``advice`` (how to fix it); where the steps differ per vendor, ``advice_<vendor>`` (vendor in
lower case, e.g. ``advice_hikvision``) replaces ``advice`` for cameras of that vendor.
``[evidence]`` names the evidence keys and ``[detail]`` the audit-log detail keys.
``glossary.toml`` holds the one word chosen for each term in both languages.

A placeholder whose evidence is missing is shown as the language's word for "unknown", never as
``{name}``. A finding code missing from the chosen language falls back to the English text
marked as such; a code missing everywhere shows the agent's own reason.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.resources import files
from typing import Any, Final

LANGS: Final = ("vi", "en")
FALLBACK: Final = "en"
UNKNOWN_KEY: Final = "value.unknown"  # the word shown for a placeholder without evidence
Bound = Callable[..., str]  # ``Catalogue.t`` in one language: ``t(key, **values)``


class _Keep(dict[str, Any]):
    """Placeholders without a value become ``missing`` instead of failing."""

    def __init__(self, values: dict[str, Any], missing: str) -> None:
        super().__init__(values)
        self._missing = missing

    def __missing__(self, key: str) -> str:
        return self._missing


def is_one(template: str, values: dict[str, Any]) -> bool:
    """True when the text's first counted placeholder (an integer value) is 1: the text's
    singular form (``<key>.one`` in [ui], ``<field>_one`` in a finding) is then shown."""
    for name in re.findall(r"\{(\w+)\}", template):
        value = values.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value == 1
    return False


def fill(template: str, values: dict[str, Any], missing: str) -> str:
    """``template`` with ``{name}`` filled from ``values``; an absent name becomes ``missing``."""
    return string.Formatter().vformat(template, (), _Keep(values, missing))


@dataclass(frozen=True, slots=True)
class FindingText:
    title: str
    advice: str | None
    translated: bool  # False: shown in English or as the agent's reason
    why: str | None = None


class Catalogue:
    def __init__(self, data: dict[str, dict[str, Any]]) -> None:
        self._ui: dict[str, dict[str, str]] = {lang: data[lang].get("ui", {}) for lang in data}
        self._findings: dict[str, dict[str, dict[str, str]]] = {
            lang: data[lang].get("findings", {}) for lang in data
        }
        self._evidence: dict[str, dict[str, str]] = {
            lang: data[lang].get("evidence", {}) for lang in data
        }
        self._detail: dict[str, dict[str, str]] = {
            lang: data[lang].get("detail", {}) for lang in data
        }
        # evidence values that are the agent's words ("locked_out", "offline"): evidence key ->
        # value -> text; a value not listed is shown as the agent sent it
        self._values: dict[str, dict[str, dict[str, str]]] = {
            lang: data[lang].get("values", {}) for lang in data
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

    def finding_entry(self, lang: str, code: str) -> dict[str, str]:
        """The raw texts of ``code`` in ``lang`` (empty when not described)."""
        return dict(self._findings.get(lang, {}).get(code, {}))

    def evidence_keys(self, lang: str) -> set[str]:
        return set(self._evidence[lang])

    def detail_keys(self, lang: str) -> set[str]:
        return set(self._detail[lang])

    def bound(self, lang: str) -> Bound:
        """``t`` in one language: what a page or a document looks its texts up with."""
        return partial(self.t, lang)

    def t(self, lang: str, key: str, **values: Any) -> str:
        text = self._ui.get(lang, {}).get(key) or self._ui[FALLBACK].get(key) or key
        if not values:
            return text
        one = self._ui.get(lang, {}).get(key + ".one")
        unknown = self.t(lang, UNKNOWN_KEY)
        return fill(one if one and is_one(text, values) else text, values, unknown)

    def evidence_label(self, lang: str, key: str) -> str:
        """The name of an evidence key; an undescribed key is shown as sent."""
        return self._evidence.get(lang, {}).get(key) or self._evidence[FALLBACK].get(key) or key

    def detail_label(self, lang: str, key: str) -> str:
        """The name of an audit-log detail key; an undescribed key is shown as recorded."""
        return self._detail.get(lang, {}).get(key) or self._detail[FALLBACK].get(key) or key

    def finding(
        self,
        lang: str,
        code: str,
        evidence: dict[str, Any],
        reason: str | None = None,
        vendor: str | None = None,
    ) -> FindingText:
        own = self._findings.get(lang, {}).get(code)
        entry = own if own is not None else self._findings[FALLBACK].get(code)
        if entry is None:
            return FindingText(reason or code, None, False)
        used = lang if own is not None else FALLBACK
        unknown = self.t(used, UNKNOWN_KEY)
        said = self._values.get(used, {})
        evidence = {
            k: said[k].get(v, v) if k in said and isinstance(v, str) else v
            for k, v in evidence.items()
        }
        words = vendor.lower().split() if vendor else []
        vendor_advice = f"advice_{words[0]}" if words else ""  # "HIKVISION", "Axis Communications"

        def text(field: str) -> str | None:
            if field not in entry:
                return None
            one = entry.get(field + "_one")
            return fill(
                one if one and is_one(entry[field], evidence) else entry[field], evidence, unknown
            )

        advice = text(vendor_advice) if vendor_advice in entry else text("advice")
        return FindingText(text("title") or code, advice, own is not None, text("why"))
