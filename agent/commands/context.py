"""What an action sees: its command, camera and journal entry, and a narrow context.

An action (``firmware_apply``, ``password_rotate``, ``survey``) is ``async (Run) -> Details``. It
reads the config, the camera credentials and the clock from ``Run.context``; it reports progress
with ``Run.step`` (journal first, then an ``in_progress`` result), keeps resume data with
``Run.note`` and sends the messages an action produces besides its results (a survey's parts)
with ``ActionContext.issue``. A camera-less action (``protocol.commands.CAMERALESS``) has no
``Run.camera``; the others reach theirs as ``Run.target``. It never sees the executor, so
actions and executor do not import each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agent.commands.errors import StepFailed
from agent.commands.journal import Entry, Journal
from agent.config import AgentConfig, CameraConfig
from agent.messaging.issuer import Header
from agent.vendors.models import Credential
from protocol.messages import AgentMessage, Camera, Command, EvidenceValue

log = logging.getLogger(__name__)

Details = dict[str, EvidenceValue]


class CredentialStore(Protocol):
    """The camera credentials and small sealed records beside them (a remediation's settings
    snapshots), encrypted at rest (``agent.trust.vault.Vault`` has this shape)."""

    def credential(self, ref: str) -> Credential | None: ...

    def set(self, ref: str, username: str, password: str) -> None: ...

    def delete(self, ref: str) -> bool: ...

    def record(self, ref: str) -> str | None: ...

    def set_record(self, ref: str, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ActionContext:
    """The executor's services an action may use, and nothing else."""

    config: AgentConfig
    credentials: CredentialStore
    journal: Journal
    clock: Callable[[], datetime]
    # an ``in_progress`` result naming the step: (command_id, step, details)
    announce: Callable[[str, str, Details], Awaitable[None]]
    # sign, chain and queue one more agent message built on the issuer's header (a survey's
    # parts)
    issue: Callable[[Callable[[Header], AgentMessage]], Awaitable[None]]
    # a remediation re-audited its camera: the daemon reports these findings as usual
    reaudited: Callable[[Camera], Awaitable[None]] | None = None


@dataclass(slots=True)
class Run:
    """One command being carried out: what actions see."""

    command: Command
    camera: CameraConfig | None  # None for a camera-less action
    entry: Entry
    context: ActionContext

    async def step(self, name: str, details: Details | None = None, **data: str) -> None:
        """Enter step ``name``: journal ``data``, announce it (with ``details``, if any)."""
        self.entry.step = name
        self.entry.status = "in_progress"
        self.entry.data.update(data)
        # the announcement reaches the outbox first: killed between the two, the agent resumes
        # at the step before, which every action can repeat; the other order lost the step
        log.info("command %s: %s", self.command.command_id, name)
        await self.context.announce(self.command.command_id, name, details or {})
        await asyncio.to_thread(self.context.journal.save, self.entry)

    async def note(self, **data: str) -> None:
        self.entry.data.update(data)
        await asyncio.to_thread(self.context.journal.save, self.entry)

    @property
    def target(self) -> CameraConfig:
        """The command's camera (``agent.commands.verify`` lets through no command of a camera
        action without one)."""
        if self.camera is None:
            raise StepFailed("internal", f"{self.command.action} needs a camera")
        return self.camera

    def credential(self) -> Credential:
        """The camera's own credential from the store; a refusal in preflight without one."""
        ref = self.target.credentials_ref
        if ref is None:
            raise StepFailed("preflight_failed", f"camera {self.target.id} has no credentials_ref")
        found = self.context.credentials.credential(ref)
        if found is None:
            raise StepFailed("preflight_failed", f"no credential {ref!r}")
        return found


Action = Callable[[Run], Awaitable[Details]]
