"""Ground truth: which baseline controls each lab camera fails, and why.

Tests and the demo compare the agent's findings with this. Control IDs are those of the
camwarden baseline (AUTH-01 default credentials, COM-01 no HTTPS, FW-01 known-exploited
firmware, ...). Evidence strings never contain passwords. Decisions that follow the baseline:

* COM-01 ("plain HTTP management is off or redirects to HTTPS") fails without HTTPS, and also
  with HTTPS while plain HTTP still serves the interface (``http_redirect = false``).
* AUTH-04: a vendor default password is publicly known, hence weak: it gives AUTH-04 as well
  as AUTH-01 (every persona's default also fails the Decision 724 rule).
* AUTH-05 fails without a lockout and with one weaker than Decision 724's 5 failures counted
  over 30 s locking for 5 min (a higher threshold, a shorter window or a shorter lock).
* SVC-08 (low) fails while the camera is discoverable (the default).
* Recorders: REC-01 fails on a recorder whose channel list hands out its cameras' stored
  passwords (Dahua ``RemoteDevice``) while a camera is seated on it; REC-02 when a router maps
  a port to the recorder's SDK/DVRIP port (Hikvision 8000, Dahua 37777); REC-03 on a channel
  camera its recorder lists offline, and on the recorder for that channel (nothing else is
  claimed about that camera: it is down).
"""

from __future__ import annotations

import string
from typing import Any

from lab.config import CameraSpec, LabConfig
from lab.onvif import PRE_AUTH

__all__ = ["camera_findings", "lab_truth", "weak_password"]

LOG_SKEW_TOLERANCE_S = 30.0
# Decision 724 lockout: at most 5 failures counted over at least 30 s lock for at least 5 min
MAX_FAILURES = 5
MIN_WINDOW_S = 30.0
MIN_LOCK_S = 300.0
LOCKOUT_BASELINE = "5 failures / 30 s -> 5 min"


def weak_password(password: str) -> bool:
    """Decision 724: at least 8 characters with upper, lower, digit and special characters."""
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits)
    has = [any(c in cls for c in password) for cls in classes]
    special = any(not c.isalnum() for c in password)
    return len(password) < 8 or not (all(has) and special)


# seeded flag -> (control, evidence)
FLAG_FINDINGS: tuple[tuple[str, str, str], ...] = (
    ("not_activated", "AUTH-02", "device not activated"),
    ("basic_over_http", "AUTH-07", "HTTP Basic accepted over plain HTTP"),
    ("http_basic_and_digest", "AUTH-07", "HTTP Basic accepted besides Digest over plain HTTP"),
    ("hidden_admin", "AUTH-12", "hidden admin account"),
    ("snmp_public", "COM-05", "SNMP community public"),
    ("telnet", "COM-06", "telnet open on 23"),
    ("ftp", "COM-06", "ftp open on 21"),
    ("telnet", "SVC-02", "telnet enabled"),
    ("ssh", "SVC-03", "SSH enabled"),
    ("upnp", "SVC-04", "UPnP enabled"),
    ("p2p", "SVC-06", "vendor P2P cloud enabled"),
    ("ddns", "SVC-07", "dynamic DNS enabled"),
    ("manual_time", "LOG-01", "clock set manually (no NTP)"),
    ("discoverable", "SVC-08", "answers WS-Discovery probes (low)"),
)


def camera_findings(spec: CameraSpec, config: LabConfig | None = None) -> dict[str, list[str]]:
    if spec.channel_offline:
        return {"REC-03": [f"{spec.recorder} lists channel {spec.channel} offline"]}
    found: dict[str, list[str]] = {}
    for control, evidence in (
        *_recorder(spec, config),
        *_accounts(spec),
        *((control, text) for flag, control, text in FLAG_FINDINGS if getattr(spec, flag)),
        *_transport(spec, config),
        *_firmware(spec),
    ):
        found.setdefault(control, []).append(evidence)
    return found


def _accounts(spec: CameraSpec) -> list[tuple[str, str]]:
    out = []
    accounts = [(u, "") for u in spec.all_users] + [(u, "RTSP account ") for u in spec.rtsp_users]
    for user, where in accounts:
        if (user.name, user.password) in spec.persona.default_credentials:
            out.append(("AUTH-01", f"{where}{user.name} has the vendor default password"))
            out.append(("AUTH-04", f"{where}{user.name} has a publicly known (default) password"))
        elif weak_password(user.password):
            out.append(("AUTH-04", f"{where}{user.name} has a weak password"))
    lock = spec.lockout
    if lock is None:
        out.append(("AUTH-05", "no brute-force lockout"))
    else:
        out.extend(
            ("AUTH-05", f"lockout weaker than {LOCKOUT_BASELINE}: {text}")
            for weak, text in (
                (lock.threshold > MAX_FAILURES, f"locks after {lock.threshold} failures"),
                (lock.window_s < MIN_WINDOW_S, f"counts failures over {lock.window_s:.0f} s"),
                (lock.lock_s < MIN_LOCK_S, f"locks for {lock.lock_s:.0f} s"),
            )
            if weak
        )
    if spec.rtsp_auth == "none" and not spec.rtsp_no_media:  # no media described: no stream
        out.append(("AUTH-08", "RTSP stream without authentication"))
    elif spec.rtsp_auth == "basic":
        out.append(("AUTH-09", "RTSP uses Basic authentication"))
    out.extend(
        ("AUTH-10", f"ONVIF {op} answers without authentication")
        for op in sorted(spec.onvif_noauth_ops - PRE_AUTH)
    )
    if spec.anonymous_snapshot and any(r.kind == "snapshot" for r in spec.persona.api):
        out.append(("AUTH-11", "snapshot without authentication"))
    return out


def _transport(spec: CameraSpec, config: LabConfig | None) -> list[tuple[str, str]]:
    out = []
    tls = spec.tls
    if not spec.https:
        out.append(("COM-01", "no HTTPS; management over plain HTTP"))
    else:
        if not spec.http_redirect:
            out.append(("COM-01", "plain HTTP management served alongside HTTPS, no redirect"))
        old = [v for v in ("TLSv1", "TLSv1.1") if v in tls.versions]
        out.extend(
            ("COM-02", text)
            for bad, text in (
                (tls.expired, "expired certificate"),
                (tls.weak_key, "RSA-1024 key"),
                (bool(old), f"{' and '.join(old)} accepted"),
            )
            if bad
        )
    cameras = config.cameras if config else ()
    peers = [
        c.id
        for c in cameras
        if spec.https
        and tls.shared_key_group
        and c.id != spec.id
        and c.https
        and c.tls.shared_key_group == tls.shared_key_group
    ]
    if peers:
        out.append(("COM-03", f"TLS key shared with {len(peers)} other camera(s)"))
    out.extend(
        ("SVC-05", f"router {router.id} forwards {m.external_port} -> {m.internal_port}")
        for router in (config.routers if config else ())
        for m in router.port_mappings
        if m.camera == spec.id
    )
    if abs(spec.clock_skew_s) > LOG_SKEW_TOLERANCE_S:
        out.append(("LOG-01", f"clock off by {spec.clock_skew_s:+.0f} s"))
    return out


def _recorder(spec: CameraSpec, config: LabConfig | None) -> list[tuple[str, str]]:
    if not spec.persona.recorder or config is None:
        return []
    out = []
    hands_out = any(r.rows == "channels" and "${password}" in r.row for r in spec.persona.api)
    seated = config.channels(spec.id)
    if hands_out and seated:
        out.append(("REC-01", f"channel list shows the passwords of {len(seated)} camera(s)"))
    out.extend(("REC-03", f"channel {c.channel} offline") for c in seated if c.channel_offline)
    sdk = {spec.persona.ports.get(k) for k in ("sdk", "tcp")} - {None}
    out.extend(
        ("REC-02", f"router {router.id} forwards {m.external_port} -> SDK port {m.internal_port}")
        for router in config.routers
        for m in router.port_mappings
        if m.camera == spec.id and m.internal_port in sdk
    )
    return out


def _firmware(spec: CameraSpec) -> list[tuple[str, str]]:
    return [
        ("FW-01", f"{rule.cve}{' (KEV)' if rule.kev else ''}")
        for rule in spec.persona.cves
        if spec.build_date < rule.build_before
    ]


def lab_truth(config: LabConfig, addresses: dict[str, str] | None = None) -> dict[str, Any]:
    """JSON-ready ground truth for every camera of the lab."""
    return {
        "cameras": {
            spec.id: {
                "vendor": spec.persona.vendor,
                "family": spec.persona.family,
                "persona": spec.persona.name,
                "model": spec.model,
                "firmware": spec.firmware,
                "build_date": spec.build_date.isoformat(),
                **({"address": addresses[spec.id]} if addresses else {}),
                # whether a login to a locked account answers differently from a wrong password
                "lock_signalled": spec.persona.auth_locked is not None,
                **({"recorder": spec.recorder, "channel": spec.channel} if spec.recorder else {}),
                "findings": camera_findings(spec, config),
            }
            for spec in config.cameras
        }
    }
