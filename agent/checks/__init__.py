"""Checks, one module per control family. ``CHECKS`` is the explicit list of what runs."""

from __future__ import annotations

from agent.checks.base import Check
from agent.checks.firmware import FirmwareCheck
from agent.checks.passwords import PasswordPolicyCheck

CHECKS: tuple[Check, ...] = (FirmwareCheck(), PasswordPolicyCheck())
