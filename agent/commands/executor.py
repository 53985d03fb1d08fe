"""Runs verified commands: one state machine per command, journaled at every step.

::

    token --verify--> [refused: no answer, or a signed ``rejected``]
          --claim nonce (persisted)--> journal(accepted) --> ``accepted``
          --> step_1 ... step_n (journal, then an ``in_progress`` result, then the work)
          --> ``succeeded`` | ``failed`` (reason) | ``rejected`` (refusal found in preflight)

Each step is written to the journal before its work starts; on start ``resume()`` hands every
unfinished entry back to its action, which knows per step whether to resume (e.g. a download
continues where it stopped) or to stop cleanly (``failed``, reason ``interrupted``). Results go
through ``agent.messaging.issuer.Issuer`` (signed, chained, outbox first); the publisher sends them.
One command per camera at a time, and one survey. Actions are the explicit table ``ACTIONS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from joserfc.jwk import OKPKey

from agent.commands.context import Action, ActionContext, CredentialStore, Details, Run
from agent.commands.errors import CommandRefused, StepFailed
from agent.commands.journal import Entry, Journal
from agent.commands.replay import NonceStore
from agent.commands.verify import verify_command
from agent.config import AgentConfig, CameraConfig
from agent.messaging.issuer import Header, Issued
from agent.vendors.base import AuthFailed, CameraError, Timeout, Unreachable
from protocol.commands import (
    CAMERALESS,
    FIRMWARE_APPLY,
    PASSWORD_ROTATE,
    SETTINGS_APPLY,
    SETTINGS_RESTORE,
    SURVEY,
)
from protocol.envelope import verify
from protocol.errors import ProtocolError, UnknownKey
from protocol.messages import (
    AgentMessage,
    Camera,
    Command,
    CommandResult,
    decode_collector_message,
)
from protocol.rules import utc_now

log = logging.getLogger(__name__)

Status = Literal["accepted", "rejected", "in_progress", "succeeded", "failed"]


class ResultIssuer(Protocol):
    def issue(self, build: Callable[[Header], AgentMessage]) -> Issued | None: ...


@dataclass
class Executor:
    config: AgentConfig
    issuer: ResultIssuer
    collector_key: OKPKey
    credentials: CredentialStore
    clock: Callable[[], datetime] = utc_now
    wake: Callable[[], None] = lambda: None
    # the daemon's hook for a remediation's re-audit (reported as usual); None: not reported
    reaudited: Callable[[Camera], Awaitable[None]] | None = None
    refused: dict[str, int] = field(default_factory=dict)  # reason -> count (metrics, tests)
    _busy: set[str] = field(default_factory=set)
    # ids of the commands this process runs now, from before their journal entry is written
    # to after it is removed: ``resume`` never runs one of them a second time
    _active: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        base = self.config.state_path / "commands"
        self.nonces = NonceStore(base / "nonces.json")
        self.journal = Journal(base / "journal")
        self.context = ActionContext(
            self.config,
            self.credentials,
            self.journal,
            self.clock,
            self._announce,
            self._issue,
            self.reaudited,
        )

    @property
    def cameras(self) -> dict[str, CameraConfig]:
        return {c.id: c for c in self.config.cameras}

    async def answer(
        self,
        command_id: str,
        status: Status,
        *,
        step: str | None = None,
        reason: str | None = None,
        details: Details | None = None,
    ) -> None:
        def build(h: Header) -> CommandResult:
            return CommandResult(
                **h.fields(),
                command_id=command_id,
                status=status,
                step=step,
                reason=reason,
                details=details or {},
            )

        await asyncio.to_thread(self.issuer.issue, build)
        self.wake()

    async def _issue(self, build: Callable[[Header], AgentMessage]) -> None:
        await asyncio.to_thread(self.issuer.issue, build)
        self.wake()

    async def _announce(self, command_id: str, step: str, details: Details) -> None:
        await self.answer(command_id, "in_progress", step=step, details=details)

    def _refuse(self, exc: CommandRefused, token_hint: str) -> None:
        self.refused[exc.reason] = self.refused.get(exc.reason, 0) + 1
        log.warning("refused command %s: %s: %s", token_hint, exc.reason, exc.detail)

    async def submit(self, token: bytes) -> str:
        """Verify and carry out one command; return its final status or refusal reason."""
        now = self.clock()
        try:
            command = verify_command(
                token,
                self.collector_key,
                agent_id=self.config.agent_id,
                site=self.config.site,
                cameras=self.cameras,
                now=now,
                max_skew=timedelta(seconds=self.config.firmware.max_clock_skew_s),
            )
        except CommandRefused as exc:
            hint = _command_id(token, self.collector_key) or "(unverified)"
            self._refuse(exc, hint)
            if exc.answer and hint != "(unverified)":
                # a signed, addressed command that is expired, unknown or for a foreign camera:
                # its nonce is claimed too, so a replay of it is refused without an answer
                try:
                    await asyncio.to_thread(self._claim_raw, token, now)
                except CommandRefused as again:
                    self._refuse(again, hint)
                    return again.reason
                await self.answer(hint, "rejected", reason=exc.reason)
            return exc.reason
        try:
            await asyncio.to_thread(
                self.nonces.claim, command.nonce, command.command_id, command.expires_at, now
            )
        except CommandRefused as exc:
            self._refuse(exc, command.command_id)
            return exc.reason
        camera = self._camera(command)
        if _slot(command, camera) in self._busy or command.command_id in self._active:
            self._refuse(CommandRefused("busy", "camera busy"), command.command_id)
            await self.answer(command.command_id, "rejected", reason="busy")
            return "busy"
        entry = Entry(command_id=command.command_id, token=token.decode("ascii"))
        async with self._running(command.command_id):
            await asyncio.to_thread(self.journal.save, entry)
            await self.answer(command.command_id, "accepted")
            return await self._run(command, camera, entry)

    def _claim_raw(self, token: bytes, now: datetime) -> None:
        command = _decode(token, self.collector_key)
        if command is not None:
            expires = max(command.expires_at, now + timedelta(hours=1))
            self.nonces.claim(command.nonce, command.command_id, expires, now)

    async def run_local(self, command: Command) -> str:
        """A command the agent made itself (scheduled rotation): journaled, answered alike.
        A camera busy with another command is left alone (``busy``; the schedule retries)."""
        from protocol.messages import encode  # noqa: PLC0415

        camera = self._camera(command)
        if _slot(command, camera) in self._busy or command.command_id in self._active:
            log.info("command %s: %s busy; not now", command.command_id, _slot(command, camera))
            return "busy"
        entry = Entry(
            command_id=command.command_id, token=encode(command).decode("utf-8"), local=True
        )
        async with self._running(command.command_id):
            await asyncio.to_thread(self.journal.save, entry)
            return await self._run(command, camera, entry)

    @contextlib.asynccontextmanager
    async def _running(self, command_id: str) -> AsyncIterator[None]:
        """``command_id`` is run by this process (see ``_active``); the callers check first that
        it is not run already."""
        self._active.add(command_id)
        try:
            yield
        finally:
            self._active.discard(command_id)

    async def resume(self) -> list[tuple[str, str]]:
        """Finish every command the journal holds (after a crash); returns (id, status).

        A command this process runs now (a scheduled rotation, or a command that arrived
        since the start) has its journal entry too; it is not one cut short and is left to
        its run: the journal is read in a thread, and on a loaded machine that read can come
        after such a command wrote its entry."""
        out = []
        for entry in await asyncio.to_thread(self.journal.pending):
            if entry.command_id in self._active:
                continue
            command = _decode(entry.token.encode(), self.collector_key, local=entry.local)
            camera = self.cameras.get(command.camera_id or "") if command is not None else None
            if command is None or (camera is None and command.action not in CAMERALESS):
                log.warning("journal entry %s unusable; dropped", entry.command_id)
                self.journal.remove(entry.command_id)
                continue
            if entry.status in ("succeeded", "failed", "rejected"):
                await self.answer(command.command_id, entry.status, reason=entry.reason)  # type: ignore[arg-type]
                self.journal.remove(entry.command_id)
                out.append((entry.command_id, entry.status))
                continue
            log.info("resuming command %s at step %s", entry.command_id, entry.step)
            async with self._running(entry.command_id):
                out.append((entry.command_id, await self._run(command, camera, entry)))
        return out

    def _camera(self, command: Command) -> CameraConfig | None:
        """The command's camera (``verify_command`` refuses commands for any other); None for
        a camera-less action."""
        if command.action in CAMERALESS:
            return None
        camera = self.cameras.get(command.camera_id or "")
        if camera is None:
            raise CommandRefused("unknown_camera", f"camera {command.camera_id!r} is not ours")
        return camera

    async def _run(self, command: Command, camera: CameraConfig | None, entry: Entry) -> str:
        run = Run(command, camera, entry, self.context)
        action = ACTIONS[command.action]
        slot = _slot(command, camera)
        self._busy.add(slot)
        status: Status
        reason: str | None = None
        details: Details = {}
        try:
            if camera is not None:
                from agent.audit.identify import prepare  # noqa: PLC0415  # zeep: when acting

                await prepare()  # the ONVIF WSDL documents, outside every camera's time limit
            details = await action(run)
            status = "succeeded"
        except StepFailed as exc:
            status, reason, details = exc.status, exc.reason, dict(exc.details)
            log.warning(
                "command %s %s at %s: %s", command.command_id, status, entry.step, exc.detail
            )
        except CameraError as exc:
            status, reason = "failed", _camera_reason(exc)
            log.warning("command %s failed at %s: %s", command.command_id, entry.step, exc)
        except Exception:
            log.exception("command %s failed at %s", command.command_id, entry.step)
            status, reason = "failed", "internal"
        finally:
            self._busy.discard(slot)
        entry.status, entry.reason = status, reason
        await asyncio.to_thread(self.journal.save, entry)
        await self.answer(command.command_id, status, reason=reason, details=details)
        await asyncio.to_thread(self.journal.remove, command.command_id)
        log.info("command %s %s%s", command.command_id, status, f" ({reason})" if reason else "")
        return status if reason is None else f"{status}:{reason}"


def _slot(command: Command, camera: CameraConfig | None) -> str:
    """What a command keeps busy: its camera, or its action (one survey at a time)."""
    return camera.id if camera is not None else f"action:{command.action}"


def _camera_reason(exc: CameraError) -> str:
    if isinstance(exc, Unreachable):
        return "camera_unreachable"
    if isinstance(exc, Timeout):
        return "timeout"
    if isinstance(exc, AuthFailed):
        return "camera_refused"
    return "camera_refused"


def _decode(token: bytes, key: OKPKey, *, local: bool = False) -> Command | None:
    """A command whose signature holds (journal, rejected answers); expiry not checked."""
    try:
        if local:
            message = decode_collector_message(token)
        else:

            def resolve(kid: str) -> OKPKey:
                if kid != key.thumbprint():
                    raise UnknownKey(kid)
                return key

            message = decode_collector_message(verify(token, resolve).payload)
    except ProtocolError:
        return None
    return message if isinstance(message, Command) else None


def _command_id(token: bytes, key: OKPKey) -> str | None:
    command = _decode(token, key)
    return command.command_id if command is not None else None


async def _firmware(run: Run) -> Details:
    from agent.commands.firmware_apply import apply_firmware  # noqa: PLC0415  # tuf: ~25 MB, on use

    return await apply_firmware(run)


async def _rotate(run: Run) -> Details:
    from agent.commands.password_rotate import rotate_password  # noqa: PLC0415  # zxcvbn: ~14 MB, on use

    return await rotate_password(run)


async def _survey(run: Run) -> Details:
    from agent.commands.survey import survey  # noqa: PLC0415  # the survey engine, on use

    return await survey(run)


async def _remediate(run: Run) -> Details:
    from agent.commands.remediate import apply_settings  # noqa: PLC0415  # the auditor, on use

    return await apply_settings(run)


async def _restore(run: Run) -> Details:
    from agent.commands.remediate import restore_settings  # noqa: PLC0415  # the auditor, on use

    return await restore_settings(run)


ACTIONS: dict[str, Action] = {
    FIRMWARE_APPLY: _firmware,
    PASSWORD_ROTATE: _rotate,
    SETTINGS_APPLY: _remediate,
    SETTINGS_RESTORE: _restore,
    SURVEY: _survey,
}
