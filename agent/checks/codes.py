"""Finding codes and their English text with ``{parameter}`` placeholders filled from evidence.

The code is the contract; the text is a default. The collector's message catalogue (vi, en) is
keyed by the same codes, so rewording never needs an agent upgrade. A check can only emit a code
listed here (``agent.checks.base.finding`` enforces it), and a test keeps every placeholder a
documented evidence key.
"""

from __future__ import annotations

from typing import Final

CODES: Final[dict[str, str]] = {
    # framework outcomes (agent.checks.base.run_checks)
    "check.capability_missing": "The camera's adapter cannot provide: {missing}.",
    "check.no_adapter": "No adapter identified this camera; the check needs: {missing}.",
    "check.camera_error": "The camera did not answer usably ({error}).",
    "check.timeout": "The check did not finish within {timeout_s} s.",
    "check.internal_error": "The check failed internally ({error}); see the agent log.",
    # FW-01 / FW-02 (agent.checks.firmware)
    "fw.known_exploited": (
        "Firmware {firmware} is affected ({confidence}) by {cve}, a known exploited vulnerability "
        "(CISA KEV since {kev_date_added}). Remedy: {remedy}."
    ),
    "fw.vulnerable": "Firmware {firmware} is affected ({confidence}) by {cve}. Remedy: {remedy}.",
    "fw.kev_unscoped": (
        "{vendor} has a known exploited vulnerability {cve} in '{product}'; the feed has no "
        "version scope for it, so this camera could not be ruled in or out."
    ),
    "fw.undetermined": (
        "{cve} applies to this model, but the firmware {field} needed to decide is unknown."
    ),
    "fw.no_known_advisory": "No advisory in feed {feed_version} matches firmware {firmware}.",
    "fw.identity_unknown": "The camera's vendor, model or firmware version is unknown.",
    "fw.version_unparsed": "Firmware version '{firmware}' does not follow the {scheme} scheme.",
    "fw.feed_unavailable": "No valid advisory feed is loaded ({error}).",
    # AUTH-04 / AUTH-03 (agent.checks.passwords)
    "auth.password_policy": (
        "The camera password has {length} characters, {class_count} of 4 character classes "
        "and strength score {score} of 4."
    ),
    "auth.weak_password": (
        "The camera password is weak: {length} characters, {class_count} of 4 character classes, "
        "strength score {score} of 4."
    ),
    "auth.password_unknown": "The agent holds no password for this camera.",
}
