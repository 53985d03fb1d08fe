"""Checks, one module per control family. ``CHECKS`` is the explicit list of what runs."""

from __future__ import annotations

from agent.checks.accounts import AccountsCheck, ActivationCheck, LockoutPolicyCheck
from agent.checks.base import Check
from agent.checks.clock import ClockCheck
from agent.checks.cloud import RemoteServicesCheck
from agent.checks.credentials import DefaultCredentialCheck
from agent.checks.firmware import FirmwareCheck
from agent.checks.identity import IdentityCheck
from agent.checks.onvif_access import AnonymousOnvifCheck
from agent.checks.passwords import PasswordPolicyCheck

# Reads first; default-credential guessing last. Built without configuration, the AUTH-01
# check has no inventory and refuses to guess, and AUTH-12 approves only the agent's account:
# the caller builds both from the configuration (inventory targets, approved accounts).
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
    DefaultCredentialCheck(),
)
