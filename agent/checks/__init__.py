"""Checks, one module per control family. ``CHECKS`` is the explicit list of what runs."""

from __future__ import annotations

from agent.checks.base import Check
from agent.checks.exposure import RouterMappingCheck
from agent.checks.firmware import FirmwareCheck
from agent.checks.passwords import PasswordPolicyCheck
from agent.checks.rtsp import RtspAuthCheck
from agent.checks.services import (
    CleartextCheck,
    OpenPortsCheck,
    SnmpCheck,
    SshCheck,
    UpnpCheck,
)
from agent.checks.tls import TlsCheck
from agent.checks.web import HttpAuthCheck, HttpsCheck, SnapshotCheck

# The network-probe checks below use the default NetSettings (standard ports); the caller
# builds them with the site's settings where those differ.
CHECKS: tuple[Check, ...] = (
    FirmwareCheck(),
    PasswordPolicyCheck(),
    HttpAuthCheck(),
    SnapshotCheck(),
    HttpsCheck(),
    TlsCheck(),
    RtspAuthCheck(),
    OpenPortsCheck(),
    CleartextCheck(),
    SshCheck(),
    SnmpCheck(),
    UpnpCheck(),
    RouterMappingCheck(),
)
