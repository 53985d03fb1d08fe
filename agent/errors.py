"""Errors of the agent.

AgentError                    every failure the agent reports to its operator
 +-- KeyFileExists            ``keygen`` refuses to overwrite a key
 +-- EnrollmentError          the collector refused enrollment, or could not be reached
 +-- OutboxFull               the outbox cap is reached by messages that may not be dropped
 +-- StorageError             the state directory cannot be written (e.g. the disk is full)
 +-- AgentBusy                another agent process holds the state directory
 +-- StepError                a step of a command or of its firmware failed: a stable
                              ``reason``, a ``detail`` and ``failed`` or ``rejected``

Config errors are ``protocol.configfile.ConfigError``; they name file, line and key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal


class AgentError(Exception):
    """A failure with a message fit for the operator (no secrets, no stack trace needed)."""


class KeyFileExists(AgentError):
    pass


class EnrollmentError(AgentError):
    pass


class OutboxFull(AgentError):
    pass


class StorageError(AgentError):
    pass


class AgentBusy(AgentError):
    pass


class StepError(AgentError):
    """A step stopped cleanly: ``reason`` a stable code, ``detail`` for logs, ``details`` what
    the final result carries besides (e.g. a remediation's per-setting outcomes)."""

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        status: Literal["failed", "rejected"] = "failed",
        details: Mapping[str, str | int | float | bool | None] | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status
        self.details = dict(details or {})
