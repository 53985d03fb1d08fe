"""Every finding code the agent can emit (and the collector's own) is described in Vietnamese
and English: title, why it matters and how to fix it, per vendor where the steps differ. Every
code is rendered in both languages with evidence built from the agent's placeholders, and the
text must hold no leftover placeholder, no raw code, no ``\\u`` escape, no English sentence in
the Vietnamese and no synonym the glossary rules out. The same holds for evidence keys, the audit
states' words and audit-log detail labels."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

from agent.checks.codes import CODES
from agent.credentials.planner import DoneReason
from agent.probes.ports import PortState
from protocol import AuditState
from server.domain.findings import REUSE_CODE
from server.web.i18n import LANGS, Catalogue

ROOT = Path(__file__).resolve().parents[2]
I18N = ROOT / "server" / "web" / "i18n"
GLOSSARY: dict[str, dict[str, Any]] = tomllib.loads((I18N / "glossary.toml").read_text("utf-8"))[
    "terms"
]
# the collector's own code, with its placeholder (server.domain.scope.REUSE_CODE)
COLLECTOR_CODES = {REUSE_CODE: "This camera's password is also used on {cameras} other cameras."}
# what survey agents report (protocol.survey.EXPOSURES), with the evidence each carries and the
# port the collector adds (server.reports.survey)
SURVEY_CODES = {
    "survey.kev_firmware": "{port} {advisory} {cve}",
    "survey.stream_no_auth": "{port} {url}",
    "survey.snapshot_no_auth": "{port} {url}",
    "survey.onvif_no_auth": "{port} {url} {operation}",
    "survey.telnet_open": "{port} {banner}",
    "survey.sdk_port_open": "{port}",
    "survey.dvrip_port_open": "{port}",
    "survey.upnp_exposed": "{port} {server} {location}",
}
ALL_CODES = {**CODES, **COLLECTOR_CODES, **SURVEY_CODES}
VENDORS = (None, "HIKVISION", "Dahua", "AXIS", "Uniview")
# words that only an English sentence carries; Vietnamese text quotes menu names, never these
ENGLISH = re.compile(
    r"\b(the|and|is|are|of|to|with|for|not|password|camera's|this|that|has|was)\b", re.IGNORECASE
)
RAW_CODE = re.compile(r"\b[a-z]+\.[a-z0-9]+_[a-z0-9_]+\b")  # svc.telnet_open, auth.rtsp_basic


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def evidence_for(code: str) -> dict[str, str]:
    """Evidence with every placeholder of the agent's template, values that cannot be mistaken
    for catalogue text."""
    return {name: f"V{n}" for n, name in enumerate(sorted(placeholders(ALL_CODES[code])))}


def problems(lang: str, text: str) -> list[str]:
    found = []
    if re.search(r"[{}]", text):
        found.append("placeholder")
    if "\\u" in text:
        found.append("\\u escape")
    if RAW_CODE.search(text) or any(code in text for code in ALL_CODES):
        found.append("raw code")
    lowered = text.lower()
    for term in GLOSSARY.values():
        found += [
            f"glossary: {word!r}" for word in term.get(f"avoid_{lang}", ()) if word in lowered
        ]
    if lang == "vi" and (m := ENGLISH.search(text)):
        found.append(f"English: {m.group(0)!r}")
    return found


def rendered() -> Iterator[tuple[str, str, str | None, str, str]]:
    c = Catalogue.load()
    for code in sorted(ALL_CODES):
        for lang in LANGS:
            for vendor in VENDORS:
                text = c.finding(lang, code, evidence_for(code), vendor=vendor)
                assert text.translated, (lang, code)
                for part in ("title", "why", "advice"):
                    value = getattr(text, part)
                    assert value, (lang, code, part)
                    yield lang, code, vendor, part, value


def test_every_code_of_the_agent_is_described_in_both_languages() -> None:
    c = Catalogue.load()
    for lang in LANGS:
        assert c.finding_codes(lang) == set(ALL_CODES), lang
        for code, template in ALL_CODES.items():
            entry = c.finding_entry(lang, code)
            assert {"title", "why", "advice"} <= set(entry), (lang, code)
            # every placeholder is one the agent's template fills from evidence
            for key, text in entry.items():
                assert placeholders(text) <= placeholders(template), (lang, code, key)
    # per-vendor steps exist in both languages alike
    for code in ALL_CODES:
        english = {k for k in c.finding_entry("en", code) if not k.endswith("_one")}
        assert english == set(c.finding_entry("vi", code)), code


def test_every_code_renders_cleanly_in_both_languages() -> None:
    bad = [
        (lang, code, vendor, part, problem, text)
        for lang, code, vendor, part, text in rendered()
        for problem in problems(lang, text)
    ]
    assert bad == []


def test_vendor_steps_replace_the_general_advice() -> None:
    c = Catalogue.load()
    evidence = evidence_for("svc.telnet_open")
    general = c.finding("en", "svc.telnet_open", evidence).advice
    hik = c.finding("en", "svc.telnet_open", evidence, vendor="HIKVISION").advice
    dahua = c.finding("vi", "svc.telnet_open", evidence, vendor="Dahua Technology").advice
    axis = c.finding("en", "svc.telnet_open", evidence, vendor="Axis Communications AB").advice
    assert general == "Turn Telnet off."
    assert hik is not None
    assert "Configuration > Network > Advanced Settings > Telnet" in hik
    assert dahua is not None
    assert dahua.startswith("Trên giao diện web, vào Settings > Network")
    assert axis is not None
    assert axis.startswith("AXIS OS")
    assert c.finding("en", "svc.telnet_open", evidence, vendor="Uniview").advice == general


def test_a_missing_evidence_value_is_shown_as_unknown_never_as_a_placeholder() -> None:
    c = Catalogue.load()
    evidence = {"firmware": "V5.5.0", "cve": "CVE-2021-36260", "kev_date_added": "2022-01-10"}
    vi = c.finding("vi", "fw.known_exploited", evidence)
    en = c.finding("en", "fw.known_exploited", evidence)
    assert vi.advice == (
        "Cập nhật firmware ngay (không rõ); trong lúc chờ, tách camera khỏi Internet và các mạng "
        "không tin cậy."
    )
    assert en.advice is not None
    assert en.advice.startswith("Update the firmware now (unknown);")
    assert en.title == "Firmware V5.5.0 has a known exploited vulnerability: CVE-2021-36260"
    # an interface text too
    assert c.t("vi", "camera.password_reused", other=1) == (
        "Mật khẩu này cũng được dùng trên không rõ camera khác:"
    )
    # a code no catalogue describes shows the agent's reason, or the bare code without one
    assert c.finding("vi", "new.code", {}, reason="agent says so").title == "agent says so"


def test_evidence_keys_are_named_in_both_languages() -> None:
    c = Catalogue.load()
    keys = set().union(*(placeholders(text) for text in ALL_CODES.values()))
    for lang in LANGS:
        assert keys <= c.evidence_keys(lang), (lang, keys - c.evidence_keys(lang))
        assert c.evidence_keys(lang) == c.evidence_keys("en")
        for key in keys:
            label = c.evidence_label(lang, key)
            assert problems(lang, label) == [], (lang, key, label)


def _audit_detail_keys() -> set[str]:
    """Keys the collector writes into audit-log details: ``detail = {...}`` and
    ``detail["key"] = ...`` anywhere in the server package."""
    keys: set[str] = set()
    for path in (ROOT / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    name = target.attr if isinstance(target, ast.Attribute) else None
                    name = target.id if isinstance(target, ast.Name) else name
                    if name == "detail" and isinstance(node.value, ast.Dict):
                        keys |= {
                            k.value
                            for k in node.value.keys
                            if isinstance(k, ast.Constant) and isinstance(k.value, str)
                        }
                    if (
                        isinstance(target, ast.Subscript)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "detail"
                        and isinstance(target.slice, ast.Constant)
                    ):
                        keys.add(str(target.slice.value))
    return keys


def test_audit_log_details_and_audit_states_are_named_in_both_languages() -> None:
    c = Catalogue.load()
    keys = _audit_detail_keys()
    assert {"parent_id", "moved_from", "retry_after_s", "raw_reports_days"} <= keys
    for lang in LANGS:
        assert keys <= c.detail_keys(lang), (lang, keys - c.detail_keys(lang))
        for key in keys:
            assert problems(lang, c.detail_label(lang, key)) == [], (lang, key)
        for state in get_args(AuditState):
            word = c.t(lang, f"audit.{state}")
            assert word != f"audit.{state}", (lang, state)
            assert problems(lang, word) == [], (lang, state)


@pytest.mark.parametrize("lang", LANGS)
def test_interface_texts_keep_to_the_glossary(lang: str) -> None:
    c = Catalogue.load()
    bad = {}
    for key in c.ui_keys(lang):
        text = c.t(lang, key)
        found = [p for p in problems(lang, text) if p != "placeholder"]  # {n} is filled later
        if found:
            bad[key] = found
    assert bad == {}


def test_the_catalogue_files_hold_no_escapes() -> None:
    for path in I18N.glob("*.toml"):
        assert "\\u" not in path.read_text("utf-8"), path.name


def test_the_checks_catch_what_they_are_meant_to() -> None:
    assert problems("vi", "Telnet đang bật (cổng {port})") == ["placeholder"]
    assert problems("en", "see svc.telnet_open") == ["raw code"]
    assert problems("vi", "Tắt Telnet \\u0111") == ["\\u escape"]
    assert problems("vi", "Đổi mật khẩu: the password is weak") == ["English: 'the'"]
    assert problems("vi", "Cập nhật phần mềm nhúng") == ["glossary: 'phần mềm nhúng'"]
    assert problems("en", "Update the firmwares") == ["glossary: 'firmwares'"]
    assert problems("vi", "Trên giao diện web, vào Configuration > System > Security") == []


def test_english_counts_of_one_take_the_singular() -> None:
    c = Catalogue.load()
    assert (
        c.t("en", "camera.password_reused", n=1) == "This password is also used on 1 other camera:"
    )
    assert (
        c.t("en", "camera.password_reused", n=2) == "This password is also used on 2 other cameras:"
    )
    assert c.t("vi", "camera.password_reused", n=1).startswith("Mật khẩu này cũng được dùng trên 1")
    one = c.finding("en", "com.tls_key_shared", {"peers": 1, "spki_sha256": "ab"}).title
    assert one == "The camera's TLS key is also used by 1 other camera of this site"
    three = c.finding("en", "com.tls_key_shared", {"peers": 3, "spki_sha256": "ab"}).title
    assert three == "The camera's TLS key is also used by 3 other cameras of this site"


def test_finding_fields_are_ones_the_renderer_reads() -> None:
    """A misspelt field (``advice_hikvison``) would never be shown: only known fields exist."""
    known = {"title", "title_one", "why", "advice"} | {
        f"advice_{vendor.split()[0].lower()}" for vendor in VENDORS if vendor
    }
    c = Catalogue.load()
    for lang in LANGS:
        for code in ALL_CODES:
            assert set(c.finding_entry(lang, code)) <= known, (lang, code)


# the words the agent puts in evidence values shown inside finding texts
AGENT_WORDS = {
    "stop_reason": (
        *get_args(DoneReason),
        "time",
        "no answer in time",
        "no answer to the proven credential",
        "a login there did not hold",
    ),
    "state": ("online", "offline", "unknown", *get_args(PortState)),
}


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, vs in AGENT_WORDS.items() for v in vs])
def test_the_agents_words_inside_a_finding_are_translated(key: str, value: str) -> None:
    """ "locked_out" or "offline" inside a Vietnamese title is English on screen."""
    catalogue = Catalogue.load()
    code = "auth.guessing_stopped" if key == "stop_reason" else "rec.channel"
    evidence = evidence_for(code) | {key: value}
    for lang in LANGS:
        text = catalogue.finding(lang, code, evidence)
        shown = f"{text.title} {text.why}"
        assert value not in shown or lang == "en", (lang, shown)
        assert problems(lang, shown) == [], (lang, shown)
