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
    # INV-01 (agent.checks.identity); INV-02 is judged by the collector from this identity
    "inv.identified": (
        "Identified as {vendor} {model}, firmware {firmware}, serial {serial} (from {source})."
    ),
    "inv.unidentified": "The camera is not fully identified: {missing} unknown (from {source}).",
    # AUTH-01 (agent.checks.credentials)
    "auth.default_credential": (
        "The default credential {entry} (account {account}) is accepted on {interface}."
    ),
    "auth.no_default_credential": (
        "None of {tried} default credentials was accepted on {interfaces} ({attempts} attempts)."
    ),
    "auth.guessing_stopped": (
        "Default-credential testing stopped ({stop_reason}) after {attempts} attempts; "
        "{untried} of {planned} planned attempts were not made."
    ),
    "auth.guessing_not_authorised": (
        "Default credentials are only tried on cameras of the configured inventory."
    ),
    "auth.no_login_interface": "No interface of the camera answered a login attempt.",
    # AUTH-02 (agent.checks.accounts)
    "auth.activated": "The camera is activated (its first password has been set).",
    "auth.not_activated": (
        "The camera is not activated: anyone on the network can set its first password."
    ),
    "auth.activation_unknown": "The {vendor} API does not report the activation state.",
    # AUTH-05 (agent.checks.accounts)
    "auth.lockout_policy": (
        "Login lockout is on: {threshold} failures lock for {lock_s} s (window {window_s} s)."
    ),
    "auth.lockout_disabled": "Login lockout after failed attempts is disabled.",
    "auth.lockout_weak": ("Login lockout is weaker than 5 failures / 30 s -> 5 min: {weakness}."),
    "auth.lockout_unknown": "The {vendor} API does not report the login lockout policy.",
    # AUTH-12 (agent.checks.accounts)
    "auth.accounts_approved": "No unapproved account among the {count} on the camera.",
    "auth.accounts_unapproved": (
        "Accounts not on the approved list: {unapproved} ({admins} with administrator rights)."
    ),
    "auth.accounts_unreadable": "The accounts could not be read: {error}.",
    # AUTH-10 (agent.checks.onvif_access)
    "onvif.anonymous_refused": "ONVIF refused every probed protected operation without login.",
    "onvif.anonymous_access": "ONVIF answers without authentication: {operations}.",
    "onvif.not_answering": "The camera does not answer ONVIF ({error}).",
    # SVC-06 / SVC-07 / SVC-08 (agent.checks.cloud)
    "svc.p2p_enabled": "The vendor P2P cloud service is enabled (read from {source}).",
    "svc.p2p_disabled": "The vendor P2P cloud service is disabled (read from {source}).",
    "svc.ddns_enabled": "Dynamic DNS is enabled (read from {source}).",
    "svc.ddns_disabled": "Dynamic DNS is disabled (read from {source}).",
    "svc.discoverable": "The camera answers WS-Discovery probes (read from {source}).",
    "svc.not_discoverable": "WS-Discovery is off (read from {source}).",
    "svc.unknown": "The camera does not report {service}.",
    # LOG-01 (agent.checks.clock)
    "log.clock_ok": "The camera clock is {skew_s} s off the agent's clock.",
    "log.clock_skew": "The camera clock is {skew_s} s off the agent's clock.",
    "log.clock_unknown": "The camera does not report its clock.",
    "log.time_ntp": "The camera takes its time from NTP ({servers}).",
    "log.time_manual": "The camera clock is set manually, not by NTP.",
    "log.time_source_unknown": "The camera does not report its time source.",
}
