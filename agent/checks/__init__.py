"""Checks, one module per control family. ``CHECKS`` is the explicit list of what runs."""

from __future__ import annotations

from agent.checks.accounts import AccountsCheck, ActivationCheck, LockoutPolicyCheck
from agent.checks.base import Check
from agent.checks.clock import ClockCheck
from agent.checks.cloud import RemoteServicesCheck
from agent.checks.credentials import DefaultCredentialCheck
from agent.checks.exposure import RouterMappingCheck
from agent.checks.firmware import FirmwareCheck
from agent.checks.identity import IdentityCheck
from agent.checks.onvif_access import AnonymousOnvifCheck
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

# Reads first, then network probes, default-credential guessing last. Built without
# configuration, the AUTH-01 check has no inventory and refuses to guess, AUTH-12 approves only
# the agent's account, and the network probes have no camera subnets and send nothing: the
# audit builds them from the site's configuration (targets, approved accounts, NetSettings).
CHECKS: tuple[Check, ...] = (
    FirmwareCheck(),
    PasswordPolicyCheck(),
    IdentityCheck(),
    ActivationCheck(),
    LockoutPolicyCheck(),
    AccountsCheck(),
    AnonymousOnvifCheck(),
    RemoteServicesCheck(),
    ClockCheck(),
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
    DefaultCredentialCheck(),
)
