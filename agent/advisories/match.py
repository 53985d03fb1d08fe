"""Match a camera identity against the feed's rules. Pure: no I/O, no clock.

For one rule the outcome is one of:

* ``Match`` (confidence ``affected``: an exact rule holds; ``probable``: a heuristic rule holds;
  ``possible``: KEV names the vendor's product without a version scope);
* ``Undetermined``: vendor (and model) fit, but a field the rule needs (model, version, build
  date) is unknown or unparsable, so the camera can be neither ruled in nor out;
* nothing: the rule does not apply.

An unknown field never turns into "not affected".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from agent.advisories.model import Advisory
from agent.vendors.models import DeviceIdentity
from agent.vendors.versions import (
    FirmwareVersion,
    UnparsableVersion,
    canonical_vendor,
    compare,
    parse_firmware,
)

Confidence = Literal["affected", "probable", "possible"]
Missing = Literal["model", "version", "build_date"]


@dataclass(frozen=True, slots=True)
class Rule:
    """An advisory with its model patterns compiled and its version bounds parsed."""

    advisory: Advisory
    models: tuple[re.Pattern[str], ...]
    affected_from: FirmwareVersion | None
    affected_through: FirmwareVersion | None
    fixed_in: FirmwareVersion | None

    @property
    def needs_version(self) -> bool:
        return any(
            b is not None for b in (self.affected_from, self.affected_through, self.fixed_in)
        )

    @property
    def needs_build(self) -> bool:
        return self.advisory.built_from is not None or self.advisory.built_before is not None


def compile_rule(advisory: Advisory) -> Rule:
    """Raise ``ValueError`` (``re.error``, ``UnparsableVersion``) when the rule is malformed."""

    def bound(text: str | None) -> FirmwareVersion | None:
        return None if text is None else parse_firmware(advisory.vendor, text)

    if canonical_vendor(advisory.vendor) != advisory.vendor:
        raise ValueError(f"rule {advisory.id}: vendor {advisory.vendor!r} is not a canonical key")
    try:
        models = tuple(re.compile(p, re.IGNORECASE) for p in advisory.models)
    except re.error as exc:
        raise ValueError(f"rule {advisory.id}: bad model pattern: {exc}") from exc
    return Rule(
        advisory,
        models,
        bound(advisory.affected_from),
        bound(advisory.affected_through),
        bound(advisory.fixed_in),
    )


@dataclass(frozen=True, slots=True)
class Match:
    advisory: Advisory
    confidence: Confidence


@dataclass(frozen=True, slots=True)
class Undetermined:
    advisory: Advisory
    missing: Missing


@dataclass(frozen=True, slots=True)
class MatchResult:
    vendor: str | None
    version: FirmwareVersion | None  # None when absent or unparsable
    version_error: str | None  # why the firmware string did not parse
    matches: tuple[Match, ...]
    undetermined: tuple[Undetermined, ...]
    rules_for_vendor: int  # how many rules the feed has for this vendor


def _in_range(rule: Rule, version: FirmwareVersion) -> bool:
    low, high, fixed = rule.affected_from, rule.affected_through, rule.fixed_in
    return (
        (low is None or compare(version, low) >= 0)
        and (high is None or compare(version, high) <= 0)
        and (fixed is None or compare(version, fixed) < 0)
    )


def _built_in_range(rule: Rule, build: date) -> bool:
    first, before = rule.advisory.built_from, rule.advisory.built_before
    return (first is None or build >= first) and (before is None or build < before)


def _decide(rule: Rule, version: FirmwareVersion | None) -> bool | Missing:
    """True/False when the version and build date decide the rule, else the missing field."""
    if not (rule.needs_version or rule.needs_build):
        return True  # every version of the listed models
    if version is None:
        return "version"
    if rule.needs_version and not _in_range(rule, version):
        return False
    if not rule.needs_build:
        return True
    if version.build is None:
        return "build_date"
    return _built_in_range(rule, version.build)


def _evaluate(
    rule: Rule, model: str | None, version: FirmwareVersion | None
) -> Match | Undetermined | None:
    advisory = rule.advisory
    if rule.models and model is None:
        return Undetermined(advisory, "model")
    if rule.models and not any(p.fullmatch(str(model).strip()) for p in rule.models):
        return None
    if advisory.scope == "unscoped":
        return Match(advisory, "possible")
    decision = _decide(rule, version)
    if decision is False:
        return None
    if decision is True:
        return Match(advisory, "affected" if advisory.scope == "exact" else "probable")
    return Undetermined(advisory, decision)


def match_identity(rules: Sequence[Rule], identity: DeviceIdentity) -> MatchResult:
    vendor = canonical_vendor(identity.vendor)
    version: FirmwareVersion | None = None
    version_error: str | None = None
    if identity.firmware:
        try:
            version = parse_firmware(vendor, identity.firmware, identity.build_date)
        except UnparsableVersion as exc:
            version_error = str(exc)
    relevant = [rule for rule in rules if rule.advisory.vendor == vendor]
    outcomes = [_evaluate(rule, identity.model, version) for rule in relevant]
    return MatchResult(
        vendor=vendor,
        version=version,
        version_error=version_error,
        matches=tuple(o for o in outcomes if isinstance(o, Match)),
        undetermined=tuple(o for o in outcomes if isinstance(o, Undetermined)),
        rules_for_vendor=len(relevant),
    )
