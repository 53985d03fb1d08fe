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
    "auth.credential_rejected": (
        "The camera refused the credential of vault entry '{vault_entry}': the vault holds "
        "a wrong password, so the camera could not be audited. Update the vault entry."
    ),
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
        "Default credentials were not tested on {untested} ({stop_reason}): {attempts} attempts "
        "made, {untried} of {planned} planned attempts were not."
    ),
    "auth.login_not_enforced": (
        "{interface} accepted a wrong password as well: it checks no login at all, so no default "
        "password can be proven there (see AUTH-10 for ONVIF, AUTH-08 for RTSP)."
    ),
    "auth.guessing_not_authorised": (
        "Default credentials are only tried on cameras of the configured inventory."
    ),
    "auth.guessing_disabled": "Default-credential testing is turned off for this {switch}.",
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
    # every network-probe check (agent.checks.netprobe)
    "net.out_of_scope": "{address} is outside the configured camera subnets; nothing was sent.",
    # AUTH-07 / AUTH-11 / COM-01 (agent.checks.web)
    "auth.http_basic": (
        "Plain HTTP port {port} offers Basic authentication at {path} (schemes: {schemes}): "
        "passwords would cross the network readable."
    ),
    "auth.http_digest": (
        "Plain HTTP port {port} asks for {schemes} at {path} (algorithm {algorithm}); "
        "Basic is not offered."
    ),
    "auth.http_no_challenge": (
        "No protected URL on HTTP port {port} answered with an authentication challenge "
        "(tried {paths})."
    ),
    "auth.http_closed": "Nothing listens on plain HTTP port {port}.",
    "auth.snapshot_anonymous": (
        "{path} on port {port} returns a camera image ({bytes} bytes) without credentials."
    ),
    "auth.snapshot_protected": "{path} on port {port} asks for credentials (HTTP {status}).",
    "auth.snapshot_unclear": "{path} on port {port} answered {status} with {content_type}.",
    "auth.snapshot_none": "None of the known snapshot URLs exists on port {port} ({paths}).",
    "com.https_missing": (
        "HTTPS does not answer on port {https_port}; management is over plain HTTP on port "
        "{http_port}."
    ),
    "com.http_alongside": (
        "HTTPS answers on port {https_port}, but plain HTTP on port {http_port} still serves "
        "the interface (HTTP {http_status}) instead of redirecting to HTTPS."
    ),
    "com.https_only": (
        "HTTPS answers on port {https_port}; plain HTTP on port {http_port}: {http_state}."
    ),
    # COM-02 / COM-03 (agent.checks.tls)
    "com.tls_weak": "TLS on port {port}: {problems} (accepts {versions}; key {key}).",
    "com.tls_ok": (
        "TLS on port {port} accepts {versions}; key {key}; certificate valid until {not_after}."
    ),
    "com.tls_key_shared": (
        "The camera's TLS key (SPKI {spki_sha256}) is also used by {peers} other camera(s) of "
        "this site."
    ),
    "com.tls_key_fingerprint": (
        "TLS key on port {port} ({key}) has SPKI SHA-256 {spki_sha256}; the collector compares "
        "it across the fleet to find shared keys."
    ),
    "com.tls_no_https": "Nothing listens on HTTPS port {port}; see COM-01.",
    # AUTH-08 / AUTH-09 (agent.checks.rtsp)
    "auth.rtsp_anonymous": "RTSP {uri} hands out the stream description without credentials.",
    "auth.rtsp_no_scheme": "RTSP {uri} asks for no authentication at all (see AUTH-08).",
    "auth.rtsp_protected": "RTSP {uri} asks for credentials ({schemes}).",
    "auth.rtsp_basic": (
        "RTSP {uri} offers Basic authentication ({schemes}): the password crosses the network "
        "readable."
    ),
    "auth.rtsp_digest": "RTSP {uri} offers {schemes} only.",
    "auth.rtsp_unclear": "RTSP {uri} answered DESCRIBE with status {status}.",
    "auth.rtsp_no_stream": "No RTSP stream at any tried path on port {port} ({path_source}).",
    "auth.rtsp_closed": "Nothing listens for RTSP on port {port}.",
    # SVC-01 / COM-06 / SVC-02 / SVC-03 / COM-05 / SVC-04 (agent.checks.services)
    "svc.ports_vendor_unknown": (
        "Ports {undetermined} are open; the camera is not identified, so whether its vendor "
        "documents them is unknown."
    ),
    "svc.unexpected_ports": (
        "Open TCP ports {unexpected} are neither documented for {vendor} ({documented}) nor "
        "allowed by the site."
    ),
    "svc.expected_ports": "Open TCP ports {open} are documented for {vendor} or allowed.",
    "svc.no_open_ports": "None of the scanned TCP ports is open.",
    "svc.telnet_open": "Telnet answers on port {port}: '{banner}'.",
    "svc.ftp_open": "An FTP server answers on port {port}: '{banner}'.",
    "svc.console_open": "A vendor console port {port} is open ({kind}): '{banner}'.",
    "svc.cleartext_closed": "No telnet or FTP service answers (ports {ports}).",
    "svc.console_closed": "No telnet or debug console answers (ports {ports}).",
    "svc.ssh_open": "SSH answers on port {port}: '{banner}'.",
    "svc.ssh_allowed": "SSH answers on port {port} ('{banner}'); the site allows it.",
    "svc.ssh_closed": "SSH does not answer on port {port} ({state}).",
    "com.snmp_community": (
        "SNMP ({versions}) on UDP {port} answers community '{community}': '{sys_descr}'."
    ),
    "com.snmp_silent": "SNMP v1/v2c on UDP {port} answers none of {communities}.",
    "svc.upnp_answers": (
        "The camera answers SSDP M-SEARCH on UDP {port} ({count} answers, server '{server}')."
    ),
    "svc.upnp_silent": "The camera does not answer SSDP M-SEARCH on UDP {port}.",
    # SVC-05 (agent.checks.exposure)
    "exp.port_forward": (
        "Router {router} forwards external {protocol} port {external_port} to this camera's "
        "port {internal_port} (UPnP-IGD)."
    ),
    "exp.no_port_forward": (
        "Router {router} lists {count} UPnP-IGD port mappings, none to this camera (static NAT "
        "rules are not visible this way)."
    ),
    "exp.router_unanswered": "Router {router} gave no UPnP-IGD port-mapping table ({error}).",
    "exp.no_router": "No site router is configured for UPnP-IGD queries.",
    # the agent's own box (agent.checks.host)
    "host.unexpected_listeners": (
        "The agent's box listens on {unexpected}, outside the expected ports {expected}."
    ),
    "host.expected_listeners": "The agent's box listens on {listening} expected socket(s).",
    "host.disk_low": "Only {free_bytes} bytes ({free_percent} %) are free under {path}.",
    "host.disk_ok": "{free_bytes} bytes ({free_percent} %) are free under {path}.",
    "host.system": "The agent runs on {os} {kernel} ({machine}), Python {python}.",
    # INV-04 (agent.checks.inventory): the inventory against the configuration and the last one
    "inv.registered": "Camera {address} is in the configured inventory ({change}).",
    "inv.unregistered": (
        "Host {address} answers on the camera segment ({sources}; ports {open_ports}) but is "
        "not in the configured inventory."
    ),
    "inv.changed": "Camera {address} changed since the last inventory: {changed}.",
    "inv.vanished": "Host {address} of the last inventory ({sources}) no longer answers.",
    "inv.discovery_failed": "Discovery by {method} failed ({error}); the inventory may be short.",
}
