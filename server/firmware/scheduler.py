"""The firmware scheduler inside ``camwarden-server run``: one thread, one tick per interval.

Each tick: (1) re-sign TUF snapshot/timestamp when due; (2) read the ``cmd-result`` messages the
ingest pipeline stored (already verified there; decoded here, never re-trusted for anything but
their own command) and apply them to their command and campaign; (3) tick every unfinished
campaign and queue a command per dispatched target, in the same transaction as the campaign's
new state; (4) sign and publish queued commands (the ``commands`` table is the outbox, so a
command queued by the CLI or the API is published by the running collector), and publish again
those sent ``resend_after_s`` ago and not answered yet. With several collectors each command is
published by one of them at a time (``commands.to_publish`` claims its rows).

Results are matched to a command by ``command_id`` AND the sending agent, and applied only when
their seq is newer than the last applied one, so re-reading messages is harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from joserfc.jwk import OKPKey

from protocol import (
    Command,
    CommandResult,
    ProtocolError,
    SurveyResult,
    decode_agent_message,
    topic,
)
from protocol.commands import FirmwareParams
from protocol.envelope import unverified_payload
from server.domain import survey
from server.domain.scope import Principal, Scope
from server.firmware import campaign
from server.firmware.commands import (
    SETTINGS_APPLY,
    SETTINGS_RESTORE,
    new_command,
    outcome,
    setting_results,
    signed,
)
from server.firmware.tuf_repo import RepositoryError, TufRepository
from server.storage import (
    Connection,
    Repository,
    campaigns,
    commands,
    read_then_write,
    remediation,
)

log = logging.getLogger(__name__)

# (topic, payload), QoS 1; OSError when the broker did not take it (the command stays queued)
Publish = Callable[[str, bytes], object]
SURVEY_EVERY: Final = timedelta(minutes=1)  # how often due surveys and silent agents are looked at
COLLECTOR: Final = Principal(0, "collector", "admin", None, None, None)


class Scheduler:
    def __init__(
        self,
        repo: Repository,
        tuf: TufRepository,
        key: OKPKey,
        publish: Publish,
        *,
        clock: Callable[[], datetime],
        interval_s: float = 1.0,
        resend_after_s: float = 120.0,
        silent_after: timedelta = timedelta(minutes=15),
    ) -> None:
        self._repo = repo
        self._silent_after = silent_after
        self._surveyed_at: datetime | None = None
        self._engine = repo.engine
        self._tuf = tuf
        self._key = key
        self._publish = publish
        self._clock = clock
        self._interval = interval_s
        self._resend_after = timedelta(seconds=resend_after_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="camwarden-firmware", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except Exception:  # a bad tick must not end the collector; the next one retries
                log.exception("firmware scheduler tick failed")

    def run_once(self) -> int:
        """One tick; returns how many commands were published."""
        now = self._clock()
        try:
            if self._tuf.refresh(now):
                log.info("re-signed TUF snapshot and timestamp")
        except RepositoryError as exc:
            log.warning("cannot refresh TUF metadata: %s", exc)
        # a plain read first: the steps below write, and on SQLite their transactions take the
        # database's one write lock, which an idle tick every second should leave to the ingest
        waiting, active = commands.pending_work(self._engine)
        if not waiting.isdisjoint(commands.OPEN):
            self.consume_results()
        if self._surveyed_at is None or now - self._surveyed_at >= SURVEY_EVERY:
            self._surveyed_at = now
            self.surveys(now)
            waiting, active = commands.pending_work(self._engine)
        for rollout_id in active:
            self.drive(rollout_id, now)
        return self.publish_queued(now) if active or {"queued", "sent"} & waiting else 0

    # -- results ---------------------------------------------------------------------------

    def consume_results(self) -> None:
        """Apply the results of open commands: per agent with a command not yet final, its
        ``cmd-result`` messages after the oldest such command's last applied seq (the
        ``(agent_id, seq)`` index). Seqs, not the table's ids, order them: ids are handed out
        when a transaction inserts, so with several collectors they commit out of order."""
        with campaigns.LOCK, read_then_write(self._engine) as conn:
            for agent_id, since in commands.open_agents(conn):
                for row in commands.results_after(conn, agent_id, since):
                    try:
                        message = decode_agent_message(unverified_payload(row.jws.encode("ascii")))
                    except (ProtocolError, ValueError):
                        continue  # stored by ingest, so well-formed; a decoder change is no crash
                    if isinstance(message, CommandResult):
                        self._apply(conn, agent_id, row.seq, message)
                    elif isinstance(message, SurveyResult):
                        survey.record_part(conn, agent_id, message, self._clock())

    def _apply(self, conn: Connection, agent_id: str, seq: int, result: CommandResult) -> None:
        now = self._clock()
        cmd = commands.apply_result(conn, agent_id, seq, result, now)
        if cmd is None:
            return
        if cmd.action in (SETTINGS_APPLY, SETTINGS_RESTORE):
            remediation.record_result(conn, cmd, result, setting_results(result.details), now)
        final = outcome(result, cmd.params)
        if final is None or cmd.rollout_id is None or cmd.camera_id is None:
            return
        loaded = campaigns.load_existing(conn, cmd.rollout_id)  # commands name stored rollouts
        step = campaign.record_result(loaded.campaign, (agent_id, cmd.camera_id), *final)
        campaigns.save(conn, cmd.rollout_id, loaded.campaign, step, now)

    # -- surveys ---------------------------------------------------------------------------

    def surveys(self, now: datetime) -> None:
        """Start the surveys whose schedule is due and give the shards of silent agents (and
        of failed commands) to live ones, as the collector (audited as such)."""
        scope = Scope(self._repo, COLLECTOR, silent_after=self._silent_after, now=now)
        started = survey.Surveys(scope).start_due()
        moved = survey.Surveys(scope).reissue(self._silent_after)
        if started or moved:
            log.info("surveys: %d started, %d shard(s) given again", len(started), moved)

    # -- campaigns -------------------------------------------------------------------------

    def drive(self, rollout_id: int, now: datetime) -> None:
        with campaigns.LOCK, read_then_write(self._engine) as conn:
            loaded = campaigns.load(conn, rollout_id)
            if loaded is None or loaded.campaign.phase == "completed":
                return
            row, c = loaded.row, loaded.campaign
            image = None if row.image_id is None else commands.image(conn, row.image_id)
            if image is not None and image.retired_at is not None and c.phase != "halted":
                step = campaign.halt(c, campaign.SYSTEM)
                campaigns.save(conn, rollout_id, c, step, now)
                campaigns.record(
                    conn,
                    rollout_id,
                    (campaign.Event("image_retired", campaign.SYSTEM, {"image": image.id}),),
                    now,
                )
                return
            step = campaign.tick(c, now)
            # a firmware rollout builds each command from its image, any other from the target
            own = (
                {}
                if image is not None or not step.dispatched
                else campaigns.params(conn, rollout_id)
            )
            dispatched: dict[tuple[str, str], str] = {}
            for t in step.dispatched:
                cmd = new_command(
                    row.action,
                    agent_id=t.agent_id,
                    site=t.site,
                    camera_id=t.camera_id,
                    params=own[t.key]
                    if image is None
                    else FirmwareParams(
                        target=image.target_path,
                        version=image.version,
                        sha256=image.sha256,
                        length=image.length,
                        rollout_id=rollout_id,
                        downgrade_approved_by=row.downgrade_approved_by,
                    ).to_params(),
                    now=now,
                    ttl=c.policy.command_ttl,
                )
                commands.queue(conn, cmd, issued_by=campaign.SYSTEM, rollout_id=rollout_id, now=now)
                dispatched[t.key] = cmd.command_id
            if step.campaign != c or step.events:
                campaigns.save(conn, rollout_id, c, step, now, commands=dispatched)

    # -- the outbox ------------------------------------------------------------------------

    def publish_queued(self, now: datetime) -> int:
        with read_then_write(self._engine) as conn:
            sent = 0
            for r in commands.to_publish(conn, now - self._resend_after):
                if r.expires_at <= now and r.status == "sent":
                    continue  # past its expiry the agent refuses it; the campaign times it out
                if r.expires_at <= now:
                    status = "expired"
                else:
                    command = Command(
                        command_id=r.command_id,
                        agent_id=r.agent_id,
                        site=r.site,
                        action=r.action,
                        issued_at=r.issued_at,
                        expires_at=r.expires_at,
                        nonce=r.nonce,
                        camera_id=r.camera_id,
                        params=r.params,
                    )
                    try:
                        self._publish(topic(r.site, r.agent_id, "cmd"), signed(command, self._key))
                    except OSError as exc:  # the broker did not take it: queued for next tick
                        log.warning("command %s not published: %s", r.command_id, exc)
                        break
                    status, sent = "sent", sent + 1
                commands.set_status(conn, r.command_id, status, now)
        if sent:
            log.info("published %d signed command(s)", sent)
        return sent
