"""Pruning raw reports by retention policy, keeping the report chain verifiable (ADR 0009).

Each agent's messages are kept for the retention days of the security level of the information
system its site belongs to (sites outside the tree, or systems without a record: the longest
policy), and never less than the freshness window (``[freshness] max_age_s``), so that a
replay of a pruned message is still refused as stale. The agent's newest report and every
report the current camera state rests on are never pruned.

Before a message's row is deleted, its chain facts (seq, type, digest, prev, prev_seq, times) are
copied to ``pruned_messages`` and, when archiving is on, its exact JWS is appended to an archive
file ``<archive_dir>/<agent_id>/<first>-<last>.jws`` (one JWS per line, the format
``camwarden-server verify-report`` reads). ``verify_chain`` then checks, from the database
alone, every kept message's signature and digest and every report link, across pruned ranges.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joserfc.jwk import OKPKey
from sqlalchemy import Engine, delete, func, insert, select

from protocol import BrokenChain, ProtocolError, UnknownKey, check_link, import_public_jwk, verify
from server.storage.models import Agent, Camera, Message
from server.storage.org_models import (
    InformationSystem,
    OrgUnit,
    PrunedMessage,
    RetentionPolicy,
)

if TYPE_CHECKING:
    from server.config import ServerConfig

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PruneResult:
    messages: int = 0
    agents: int = 0
    archives: list[Path] = field(default_factory=list)


def retention_days(engine: Engine) -> dict[str, int]:
    """Retention days per agent: its system's level policy, else the longest policy."""
    with engine.connect() as conn:
        policy = dict(
            conn.execute(select(RetentionPolicy.level, RetentionPolicy.raw_reports_days)).all()
        )
        longest = max(policy.values())
        site = OrgUnit.__table__.alias("site_node")
        rows = conn.execute(
            select(Agent.agent_id, InformationSystem.level)
            .outerjoin(site, site.c.site == Agent.site)
            .outerjoin(InformationSystem, InformationSystem.org_unit_id == site.c.parent_id)
        ).all()
    return {agent: policy.get(level, longest) if level else longest for agent, level in rows}


def _keep_from(engine: Engine, agent_id: str) -> int | None:
    """The lowest seq that must stay: the newest report, or a report cameras still rest on."""
    with engine.connect() as conn:
        newest = conn.execute(
            select(func.max(Message.seq)).where(
                Message.agent_id == agent_id, Message.type == "report"
            )
        ).scalar()
        resting = conn.execute(
            select(func.min(Camera.report_seq)).where(Camera.agent_id == agent_id)
        ).scalar()
    found = [s for s in (newest, resting) if s is not None]
    return min(found) if found else None


def prune(
    engine: Engine,
    now: datetime,
    *,
    min_age: timedelta,
    archive_dir: Path | None,
    batch_size: int = 5000,
) -> PruneResult:
    result = PruneResult()
    for agent_id, days in sorted(retention_days(engine).items()):
        before = result.messages
        cutoff = now - max(timedelta(days=days), min_age)
        keep_from = _keep_from(engine, agent_id)
        while True:
            q = (
                select(Message.__table__)
                .where(Message.agent_id == agent_id, Message.received_at < cutoff)
                .order_by(Message.seq)
                .limit(batch_size)
            )
            if keep_from is not None:
                q = q.where(Message.seq < keep_from)
            with engine.connect() as conn:
                rows = conn.execute(q).all()
            if not rows:
                break
            archive = _archive(archive_dir, agent_id, rows) if archive_dir else None
            with engine.begin() as conn:
                conn.execute(
                    insert(PrunedMessage),
                    [
                        {
                            "agent_id": r.agent_id,
                            "seq": r.seq,
                            "type": r.type,
                            "issued_at": r.issued_at,
                            "received_at": r.received_at,
                            "digest": r.digest,
                            "prev": r.prev,
                            "prev_seq": r.prev_seq,
                            "pruned_at": now,
                            "archive": archive.name if archive else None,
                        }
                        for r in rows
                    ],
                )
                conn.execute(delete(Message).where(Message.id.in_([r.id for r in rows])))
            if archive:
                result.archives.append(archive)
            result.messages += len(rows)
            if len(rows) < batch_size:
                break
        result.agents += result.messages > before
    return result


def prune_now(config: ServerConfig, engine: Engine, now: datetime) -> PruneResult:
    """``prune`` as the collector's config asks, logged when it pruned anything."""
    result = prune(
        engine,
        now,
        min_age=timedelta(seconds=config.freshness.max_age_s),
        archive_dir=config.archive_dir if config.retention.archive else None,
        batch_size=config.retention.batch_size,
    )
    if result.messages:
        log.info(
            "retention: pruned %d messages of %d agents (%d archive files)",
            result.messages,
            result.agents,
            len(result.archives),
        )
    return result


def _archive(directory: Path, agent_id: str, rows: Sequence[Any]) -> Path:
    """Append the JWS lines to a new archive file and make it durable before any delete."""
    folder = directory / agent_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{rows[0].seq:012d}-{rows[-1].seq:012d}.jws"
    with path.open("x", encoding="ascii") as out:
        out.writelines(f"{r.jws}\n" for r in rows)
        out.flush()
        os.fsync(out.fileno())
    return path


@dataclass(frozen=True, slots=True)
class ChainCheck:
    agent_id: str
    kept: int
    pruned: int
    reports: int
    gaps: list[int]  # reports whose predecessor never arrived (accepted at ingest; not pruned)
    first_seq: int | None
    last_seq: int | None

    def text(self) -> str:
        return (
            f"chain of {self.agent_id} intact: {self.kept} kept messages verified, "
            f"{self.pruned} pruned (digests kept), {self.reports} report links checked, "
            f"seq {self.first_seq}..{self.last_seq}"
            + (f"; predecessors never received: {self.gaps}" if self.gaps else "")
        )


class UnknownAgent(LookupError):
    """No agent of this id is enrolled."""


class ChainBroken(Exception):
    def __init__(self, seq: int, error: ProtocolError) -> None:
        super().__init__(f"seq {seq}: {error.reason}: {error.detail}")
        self.seq = seq
        self.error = error


def verify_chain(engine: Engine, agent_id: str, key: OKPKey | None = None) -> ChainCheck:
    """Verify an agent's stored chain: kept JWS by signature and digest, every report link by
    the digests of kept and pruned predecessors. ``key``: the agent's enrolled key if None."""
    with engine.connect() as conn:
        if key is None:
            jwk = conn.execute(
                select(Agent.public_jwk).where(Agent.agent_id == agent_id)
            ).scalar_one_or_none()
            if jwk is None:
                raise UnknownAgent(agent_id)
            key = import_public_jwk(jwk)
        kept = conn.execute(
            select(Message.seq, Message.type, Message.digest, Message.prev, Message.prev_seq,
                   Message.jws)
            .where(Message.agent_id == agent_id)
        ).all()  # fmt: skip
        pruned = conn.execute(
            select(
                PrunedMessage.seq,
                PrunedMessage.type,
                PrunedMessage.digest,
                PrunedMessage.prev,
                PrunedMessage.prev_seq,
            ).where(PrunedMessage.agent_id == agent_id)
        ).all()
    kid = key.thumbprint()

    def resolve(wanted: str) -> OKPKey:
        if wanted != kid:
            raise UnknownKey(f"signed with key {wanted}, not the agent's key {kid}")
        return key

    links: dict[int, tuple[str, str, str, int]] = {}  # seq -> (type, digest, prev, prev_seq)
    for seq, kind, digest, prev, prev_seq in pruned:
        links[seq] = (kind, digest, prev, prev_seq)
    for seq, kind, digest, prev, prev_seq, jws in kept:
        try:
            verified = verify(jws.encode("ascii"), resolve)
            if verified.digest != digest:
                raise BrokenChain(f"stored digest of seq {seq} does not match its JWS")
        except ProtocolError as exc:
            raise ChainBroken(seq, exc) from exc
        links[seq] = (kind, digest, prev, prev_seq)
    reports = 0
    gaps = []
    for seq in sorted(links):
        kind, _, prev, prev_seq = links[seq]
        if kind != "report":
            continue
        predecessor = links.get(prev_seq)
        if prev_seq and predecessor is None:
            gaps.append(prev_seq)
        try:
            if predecessor is not None and predecessor[0] != "report":
                raise BrokenChain(f"prev_seq {prev_seq} names a {predecessor[0]}")
            check_link(prev, prev_seq, seq, predecessor[1] if predecessor else None)
        except ProtocolError as exc:
            raise ChainBroken(seq, exc) from exc
        reports += 1
    seqs = sorted(links)
    return ChainCheck(
        agent_id,
        len(kept),
        len(pruned),
        reports,
        gaps,
        seqs[0] if seqs else None,
        seqs[-1] if seqs else None,
    )


def export_kept(engine: Engine, agent_id: str) -> bytes:
    """The agent's kept messages as a report file (one JWS per line, by seq)."""
    with engine.connect() as conn:
        lines = conn.execute(
            select(Message.jws).where(Message.agent_id == agent_id).order_by(Message.seq)
        ).scalars()
        return "".join(f"{line}\n" for line in lines).encode("ascii")
