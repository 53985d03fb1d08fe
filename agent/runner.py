"""The basic agent loop: hello on start, heartbeats, audits and status reports on timers.

Audits (``agent.audit.auditor``) run every ``[audit] interval_s`` (the first at start), each in a
short-lived worker process (``agent.audit.worker``); each finished audit is sent at once in a status
report (cameras with identity and findings, host findings), and later reports repeat the last
audit until the next one. Before the first audit finishes, reports carry the cameras' TCP
reachability only.

Everything issued goes through ``agent.messaging.issuer`` into the outbox (fsync, off the event loop
in a worker thread), and the publisher drains the outbox to the broker; entries leave it when the
collector acknowledges them (``agent.messaging.mqtt``). SIGTERM/SIGINT stop the loop, give the
publisher ``intervals.shutdown_grace_s`` to flush (publish, collect acks), and exit; whatever is
left stays in the outbox for the next start. ``report_once`` is the air-gapped variant: it writes
the outbox and one fresh report to a file instead of a broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import platform
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import msgspec
from joserfc.jwk import OKPKey

from agent import __version__
from agent.audit.reachability import probe_cameras
from agent.audit.results import AuditResult
from agent.audit.worker import scheduled_audit
from agent.commands.context import CredentialStore
from agent.commands.executor import Executor
from agent.commands.schedule import RotationSchedule
from agent.config import AgentConfig
from agent.daemon import Service, reloadable, status_line
from agent.errors import AgentError, OutboxFull, StorageError
from agent.health import host_health
from agent.messaging.issuer import Header, Issued, Issuer
from agent.messaging.outbox import Outbox
from agent.state import StateStore, exclusive
from agent.trust.certificate import tls_files
from agent.trust.identity import collector_key
from protocol.configfile import ConfigError
from protocol.messages import (
    AgentInfo,
    Camera,
    Finding,
    Heartbeat,
    Hello,
    StatusReport,
)
from service.files import fsync_dir
from service.systemd import Notifier

log = logging.getLogger(__name__)

ROTATION_CHECK_S = 3600.0  # how often scheduled rotation looks for cameras that are due


def agent_info() -> AgentInfo:
    return AgentInfo(
        version=__version__,
        hostname=socket.gethostname(),
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
    )


def _open(config: AgentConfig, key: OKPKey) -> tuple[Outbox, Issuer]:
    state_dir = config.state_path
    outbox = Outbox(state_dir / "outbox", config.outbox.max_bytes, config.outbox.max_messages)
    issuer = Issuer(config.agent_id, config.site, key, StateStore(state_dir), outbox)
    return outbox, issuer


def _report(
    info: AgentInfo,
    config: AgentConfig,
    cameras: list[Camera],
    host_findings: Sequence[Finding] = (),
) -> Callable[[Header], StatusReport]:
    host = host_health(config.state_path)
    if host_findings:
        host = msgspec.structs.replace(host, findings=list(host_findings))

    def build(h: Header) -> StatusReport:
        return StatusReport(
            **h.fields(), agent=info, host=host, cameras=cameras, outbox_dropped=h.outbox_dropped
        )

    return build


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        key: OKPKey,
        credentials: CredentialStore | None = None,
        *,
        reload: Callable[[], AgentConfig] | None = None,
    ) -> None:
        self.config = config
        self._credentials = credentials  # commands run only with a credential store (vault)
        self._commands: set[asyncio.Task[object]] = set()
        self._load = reload  # SIGHUP: load the config again (None: SIGHUP is ignored)
        self._service = Service(Notifier(os.environ), self._status_line)
        self._last_audit: float | None = None  # monotonic time of the last audit
        self._reachable: dict[str, bool] = {}  # camera id -> up, as last seen (probe, audit)
        self._timers: list[asyncio.Task[None]] = []
        self._reloading: asyncio.Task[None] | None = None
        self._key = key
        self._info = agent_info()
        self._started = time.monotonic()
        self._full = False  # an "outbox full" episode is under way (logged once)
        self._storage_failing = False  # a "cannot write" episode is under way (logged once)
        self._audit: AuditResult | None = None  # the last finished audit
        self._rotation: RotationSchedule | None = None  # scheduled rotation, when configured
        # set once the journal's commands are resumed and settled: the schedule waits for it
        self._resumed = asyncio.Event()

    async def run(self) -> int:
        from agent.messaging.mqtt import Publisher  # noqa: PLC0415  # paho only where it is used

        collector = collector_key(self.config.state_path, self.config.collector_key_path)
        with exclusive(self.config.state_path):
            outbox, issuer = _open(self.config, self._key)
            self._outbox, self._issuer = outbox, issuer
            executor = self._executor(issuer, collector)
            self._publisher = Publisher(
                outbox,
                agent_id=self.config.agent_id,
                site=self.config.site,
                config=self.config.mqtt,
                collector_key=collector,
                on_command=self._command_hook(executor),
                tls=tls_files(self.config),
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            log.info(
                "agent %s (site %s) starting at seq %d, %d messages in the outbox",
                self.config.agent_id,
                self.config.site,
                issuer.state.seq,
                len(outbox),
            )
            publishing = asyncio.create_task(self._publisher.run())
            self._rotation = self._schedule(executor)
            if executor is not None:
                self._spawn(self._resume(executor))
            else:
                self._resumed.set()
            await self._issue(lambda h: Hello(**h.fields(), agent=self._info))
            self._start_timers()
            self._service.ready()
            await stop.wait()
            await self._service.stopping()
            if self._reloading is not None:
                self._reloading.cancel()
                await asyncio.gather(self._reloading, return_exceptions=True)
            timers = self._timers
            grace = self.config.intervals.shutdown_grace_s
            log.info("stopping; flushing the outbox for up to %ss", grace)
            for task in [*timers, *self._commands]:  # a command stopped here resumes next start
                task.cancel()
            await asyncio.gather(*timers, *self._commands, return_exceptions=True)
            try:
                async with asyncio.timeout(grace):
                    await self._publisher.wait_drained()
            except TimeoutError:
                log.info("%d messages stay in the outbox for the next start", len(outbox))
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        return 0

    def _executor(self, issuer: Issuer, collector: OKPKey | None) -> Executor | None:
        if collector is None or self._credentials is None:
            return None
        # the publisher is built after the executor: look it up when a result is issued
        wake = lambda: self._publisher.wake()  # noqa: E731, PLW0108
        return Executor(
            self.config,
            issuer,
            collector,
            self._credentials,
            wake=wake,
            reaudited=self._reaudited,
        )

    def _schedule(self, executor: Executor | None) -> RotationSchedule | None:
        if self.config.rotation.interval_days is None:
            return None
        if executor is None:
            log.warning(
                "[rotation] interval_days is set, but commands are off (no vault or no pinned "
                "collector key): no scheduled rotation"
            )
            return None
        return RotationSchedule(executor)

    async def _resume(self, executor: Executor) -> None:
        """Commands the journal holds (cut short by a stop); rotations among them settled.
        The scheduled rotation starts after this: a rotation cut short is settled before the
        schedule reads which cameras are due, and the schedule's state is not written by both."""
        try:
            finished = await executor.resume()
            if self._rotation is not None:
                try:
                    await asyncio.to_thread(self._rotation.settle, finished, datetime.now(UTC))
                except StorageError as exc:
                    log.warning("scheduled password rotation: %s", exc)
        finally:
            self._resumed.set()

    async def _rotate_due(self) -> None:
        """Scheduled rotation of the cameras that are due (agent.commands.schedule)."""
        if self._rotation is None:
            return
        await self._resumed.wait()
        try:
            statuses = await self._rotation.run_due(datetime.now(UTC))
        except AgentError as exc:  # StepFailed (no escrow key), StorageError, CommandRefused
            log.warning("scheduled password rotation not run: %s", exc)
            return
        if statuses:
            log.info("scheduled password rotation: %s", ", ".join(statuses))

    def _spawn(self, work: Awaitable[object]) -> None:
        async def run() -> object:
            return await work

        task = asyncio.create_task(run())
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    def _command_hook(self, executor: Executor | None) -> Callable[[bytes], None] | None:
        if executor is None:
            return None
        return lambda token: self._spawn(executor.submit(token))

    def _start_timers(self, *, first: bool = True) -> None:
        intervals = self.config.intervals
        self._timers = [
            asyncio.create_task(self._every(intervals.report_s, self._status, first=first)),
            asyncio.create_task(self._every(intervals.heartbeat_s, self._heartbeat, first=False)),
            asyncio.create_task(self._every(intervals.liveness_s, self._liveness, first=False)),
        ]
        if self.config.feed_url:  # before the first audit, which then uses a newer feed
            feeds = self._every(self.config.advisories.refresh_s, self._refresh_feed, first=first)
            self._timers.append(asyncio.create_task(feeds))
        if self.config.audit.enabled:
            audits = self._every(self.config.audit.interval_s, self._audit_now, first=first)
            self._timers.append(asyncio.create_task(audits))
        if self._rotation is not None and self._rotation.interval_s is not None:
            check_s = min(self._rotation.interval_s, ROTATION_CHECK_S)
            rotations = self._every(check_s, self._rotate_due, first=first)
            self._timers.append(asyncio.create_task(rotations))

    def _status_line(self) -> str:
        return status_line(
            cameras=len(self.config.cameras),
            last_audit=self._last_audit,
            outbox=len(self._outbox),
            connected=self._publisher.connected,
            now=time.monotonic(),
        )

    def _on_sighup(self) -> None:
        if self._load is None or (self._reloading and not self._reloading.done()):
            return
        self._reloading = asyncio.create_task(self._reload(self._load))

    async def _reload(self, load: Callable[[], AgentConfig]) -> None:
        """The new config replaces the old only if it loads and validates."""
        self._service.reloading()
        try:
            new = await asyncio.to_thread(load)
        except ConfigError as exc:
            log.error("reload failed, still running with the previous config: %s", exc)
        else:
            config, pending = reloadable(self.config, new)
            if pending:
                log.warning("changed keys take effect at the next start: %s", ", ".join(pending))
            for task in self._timers:
                task.cancel()
            await asyncio.gather(*self._timers, return_exceptions=True)
            self.config = config
            self._start_timers(first=False)
            log.info("config reloaded: %d cameras", len(config.cameras))
        self._service.reloaded()

    @staticmethod
    async def _every(
        interval: float, action: Callable[[], Awaitable[None]], *, first: bool = True
    ) -> None:
        if first:
            await action()
        while True:
            await asyncio.sleep(interval)
            await action()

    async def _heartbeat(self) -> None:
        depth, known = len(self._outbox), len(self.config.cameras)
        uptime = time.monotonic() - self._started
        await self._issue(
            lambda h: Heartbeat(
                **h.fields(), uptime_s=uptime, outbox_depth=depth, cameras_known=known
            )
        )

    async def _status(self) -> None:
        """A status report: the last audit's cameras with their latest reachability."""
        if self._audit is not None:
            reachable = self._reachable
            cameras = [
                msgspec.structs.replace(c, reachable=reachable.get(c.camera_id, c.reachable))
                for c in self._audit.cameras
            ]
            host = self._audit.host_findings
        else:
            cameras, host = await probe_cameras(self.config), ()
            self._reachable = {c.camera_id: c.reachable for c in cameras}
        await self._issue(_report(self._info, self.config, cameras, host))

    async def _liveness(self) -> None:
        """Quick liveness: a TCP connect to each camera; a camera that went away or came back
        since it was last seen (liveness, audit or report) is reported at once instead of at the
        next report or audit."""
        now = {c.camera_id: c.reachable for c in await probe_cameras(self.config)}
        changed = {
            camera: up for camera, up in now.items() if self._reachable.get(camera, up) != up
        }
        self._reachable = now
        for camera, up in sorted(changed.items()):
            if up:
                log.info("camera %s is reachable now", camera, extra={"CAMERA": camera})
            else:
                log.warning("camera %s is unreachable", camera, extra={"CAMERA": camera})
        if changed:
            await self._status()

    async def _refresh_feed(self) -> None:
        """Fetch the collector's advisory feed; what verifies is used from the next audit on."""
        from agent.advisories.feed import FeedError  # noqa: PLC0415  # loaded when used
        from agent.advisories.refresh import refresh  # noqa: PLC0415

        try:
            got = await asyncio.to_thread(refresh, self.config, datetime.now(UTC))
        except (FeedError, StorageError) as exc:
            reason = getattr(exc, "reason", "storage")
            log.warning("advisory feed not refreshed (%s): %s", reason, exc)
            return
        if got.version is None:
            log.info("the collector publishes no advisory feed; using the shipped one")
        elif got.installed:
            log.info("advisory feed %d installed from %s", got.version, self.config.feed_url)

    async def _audit_now(self) -> None:
        """One scheduled audit, in a worker process; its findings go out at once in a report."""
        result = await scheduled_audit(self.config)
        if result is None:
            return
        self._audit = result
        self._last_audit = time.monotonic()
        self._reachable = {c.camera_id: c.reachable for c in result.cameras}
        await self._status()

    async def _reaudited(self, camera: Camera) -> None:
        """A remediation re-ran some checks on ``camera``: their findings replace those of the
        same checks in the last audit, and a report goes out at once."""
        if self._audit is None:  # no audit yet: the next one reports the camera in full
            return
        rerun = {f.check for f in camera.findings}

        def merged(old: Camera) -> Camera:
            if old.camera_id != camera.camera_id:
                return old
            kept = [f for f in old.findings if f.check not in rerun]
            return msgspec.structs.replace(old, findings=[*kept, *camera.findings])

        cameras = tuple(merged(c) for c in self._audit.cameras)
        self._audit = dataclasses.replace(self._audit, cameras=cameras)
        await self._status()

    async def _issue(self, build: Callable[[Header], Hello | Heartbeat | StatusReport]) -> None:
        try:
            issued = await asyncio.to_thread(self._issuer.issue, build)
        except OutboxFull as exc:
            if not self._full:
                log.error("%s; no new reports until the broker takes some", exc)
            self._full = True
            return
        except StorageError as exc:
            if not self._storage_failing:
                log.error("%s; will retry at the next interval", exc)
            self._storage_failing = True
            return
        self._recovered(issued)
        self._publisher.wake()

    def _recovered(self, issued: Issued | None) -> None:
        if issued is None:
            return  # a heartbeat dropped by a full outbox: the episode is not over
        if self._full or self._storage_failing:
            log.info("the outbox accepts messages again (seq %d)", issued.seq)
        self._full = self._storage_failing = False


def report_once(config: AgentConfig, key: OKPKey, out: Path) -> int:
    """Write every pending message plus one fresh report to ``out``, one JWS per line.

    Entries leave the outbox only after the file is fsynced. If the outbox is too full to take
    the fresh report, the pending messages are written out first to make room.
    """
    info = agent_info()
    cameras = asyncio.run(probe_cameras(config))
    with exclusive(config.state_path):
        outbox, issuer = _open(config, key)
        try:
            with out.open("wb") as fh:
                issued = _try_issue(issuer, _report(info, config, cameras))
                written = _export(outbox, fh, out.parent)
                if not issued:
                    if not _try_issue(issuer, _report(info, config, cameras)):
                        raise AgentError("cannot issue a status report")
                    written += _export(outbox, fh, out.parent)
        except OSError as exc:
            raise AgentError(f"cannot write {out}: {exc.strerror}") from exc
    log.info("wrote %d messages to %s (last seq %d)", written, out, issuer.state.seq)
    return 0


def _try_issue(issuer: Issuer, build: Callable[[Header], StatusReport]) -> bool:
    try:
        issuer.issue(build)
    except OutboxFull:
        return False
    return True


def _export(outbox: Outbox, fh: BinaryIO, directory: Path) -> int:
    entries = outbox.entries()
    for entry in entries:
        token = outbox.read(entry)
        if token is not None:
            fh.write(token + b"\n")
    fh.flush()
    os.fsync(fh.fileno())
    fsync_dir(directory)
    for entry in entries:
        outbox.remove(entry.seq)
    return len(entries)
