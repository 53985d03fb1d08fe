"""The repository: the only code that talks SQL. One transaction per ingest batch."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from protocol import StatusReport, import_public_jwk
from server.ingest.pipeline import (
    APPROVED,
    PENDING,
    REVOKED,
    AgentKey,
    Checked,
    Rejected,
    StoredRef,
    StoredView,
    needed_keys,
    sequence,
)
from server.storage import migrate
from server.storage.models import Agent, Camera, EnrollmentToken, Finding, Message, Quarantine


class EnrollmentError(Exception):
    """An enrollment request was refused."""


class TokenRejected(EnrollmentError):
    """Unknown, expired, used up, or issued for another site."""


class AgentConflict(EnrollmentError):
    """The agent id (or the key) is already enrolled with another key (or agent)."""


@dataclass(frozen=True, slots=True)
class AgentRecord:
    agent_id: str
    site: str
    kid: str
    status: str
    hostname: str | None
    enrolled_at: datetime
    last_seen: datetime | None


_RECORD = (
    Agent.agent_id,
    Agent.site,
    Agent.kid,
    Agent.status,
    Agent.hostname,
    Agent.enrolled_at,
    Agent.last_seen,
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Repository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._keys: dict[str, AgentKey] = {}

    @classmethod
    def open(cls, url: str) -> Repository:
        engine = create_engine(url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        return cls(engine)

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- keys -----------------------------------------------------------------------------

    def key_for(self, kid: str) -> AgentKey | None:
        """The agent that enrolled ``kid``, cached; pending entries are re-read each time."""
        cached = self._keys.get(kid)
        if cached is not None and cached.status != PENDING:
            return cached
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Agent.agent_id, Agent.site, Agent.status, Agent.public_jwk).where(
                    Agent.kid == kid
                )
            ).one_or_none()
        if row is None:
            return None
        entry = AgentKey(row.agent_id, row.site, row.status, import_public_jwk(row.public_jwk))
        self._keys[kid] = entry
        return entry

    # -- ingest ---------------------------------------------------------------------------

    def _view(self, conn: Connection, batch: Sequence[Checked | Rejected]) -> StoredView:
        agents, pairs = needed_keys(batch)
        view = StoredView()
        if not agents:
            return view
        for agent in conn.execute(
            select(Agent.agent_id, Agent.kid, Agent.status).where(Agent.agent_id.in_(agents))
        ):
            view.agents[agent.agent_id] = (agent.kid, agent.status)
        # two superset lookups with expanding parameters (cheap to compile), filtered here
        cols = (Message.seq, Message.type, Message.digest, Message.prev, Message.prev_seq)
        seqs = {seq for _, seq in pairs}
        own = select(Message.agent_id, *cols).where(
            Message.agent_id.in_(bindparam("agents", expanding=True)),
            Message.seq.in_(bindparam("seqs", expanding=True)),
        )
        linking = select(Message.agent_id, *cols).where(
            Message.agent_id.in_(bindparam("agents", expanding=True)),
            Message.prev_seq.in_(bindparam("seqs", expanding=True)),
            Message.type == "report",
        )
        params = {"agents": sorted(agents), "seqs": sorted(seqs)}
        for row in conn.execute(own, params):
            if (row.agent_id, row.seq) in pairs:
                view.messages[(row.agent_id, row.seq)] = StoredRef(*row[1:])
        for row in conn.execute(linking, params):
            if (row.agent_id, row.prev_seq) in pairs:
                ref = StoredRef(*row[1:])
                view.successors.setdefault((row.agent_id, row.prev_seq), []).append(ref)
        return view

    def commit_batch(
        self,
        batch: Sequence[Checked | Rejected],
        *,
        quarantine_size: int,
        sample_bytes: int,
    ) -> list[Checked | Rejected]:
        """Run stage 2 and store the outcome in one transaction; return the final outcomes.

        Raises SQLAlchemy errors (nothing is stored then); the caller retries the batch, and
        the retry sees any concurrent collector's commit as duplicates or replays.
        """
        with self.engine.begin() as conn:
            results = sequence(batch, self._view(conn, batch))
            accepted = [r for r in results if isinstance(r, Checked)]
            rejected = [r for r in results if isinstance(r, Rejected)]
            if accepted:
                self._store(conn, accepted)
            if rejected:
                self._quarantine(conn, rejected, quarantine_size, sample_bytes)
        return results

    def _store(self, conn: Connection, accepted: Sequence[Checked]) -> None:
        conn.execute(
            insert(Message),
            [
                {
                    "agent_id": c.message.agent_id,
                    "seq": c.message.seq,
                    "type": c.type,
                    "issued_at": c.message.issued_at,
                    "received_at": c.incoming.received_at,
                    "digest": c.digest,
                    "prev": c.message.prev,
                    "prev_seq": c.message.prev_seq,
                    "jws": c.incoming.payload.decode("ascii"),
                }
                for c in accepted
            ],
        )
        last_seen: dict[str, datetime] = {}
        newest: dict[str, StatusReport] = {}
        for c in accepted:
            m = c.message
            last_seen[m.agent_id] = max(
                c.incoming.received_at, last_seen.get(m.agent_id, m.issued_at)
            )
            if isinstance(m, StatusReport) and m.seq > getattr(newest.get(m.agent_id), "seq", 0):
                newest[m.agent_id] = m
        for agent_id, seen in last_seen.items():
            conn.execute(
                update(Agent)
                .where(Agent.agent_id == agent_id)
                .where((Agent.last_seen.is_(None)) | (Agent.last_seen < seen))
                .values(last_seen=seen)
            )
        for report in newest.values():
            self._project(conn, report)

    def _project(self, conn: Connection, report: StatusReport) -> None:
        """Update the current-state projection unless a newer report already did."""
        now = report.issued_at
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        for cam in report.cameras:
            row = {
                "agent_id": report.agent_id,
                "camera_id": cam.camera_id,
                "site": report.site,
                "report_seq": report.seq,
                "address": cam.address,
                "reachable": cam.reachable,
                "identity": {
                    k: v for k, v in msgspec.structs.asdict(cam.identity).items() if v is not None
                },
                "audited_at": cam.audited_at,
                "updated_at": now,
            }
            stmt = dialect.insert(Camera).values(row)
            won = conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Camera.agent_id, Camera.camera_id],
                    set_={k: stmt.excluded[k] for k in row if k not in ("agent_id", "camera_id")},
                    where=Camera.report_seq < stmt.excluded.report_seq,
                ).returning(Camera.camera_id)
            ).first()
            if won is None:
                continue
            conn.execute(
                delete(Finding).where(
                    Finding.agent_id == report.agent_id, Finding.camera_id == cam.camera_id
                )
            )
            if cam.findings:
                conn.execute(
                    insert(Finding),
                    [
                        {
                            "agent_id": report.agent_id,
                            "camera_id": cam.camera_id,
                            "report_seq": report.seq,
                            "code": f.code,
                            "check": f.check,
                            "status": f.status,
                            "severity": f.severity,
                            "controls": list(f.controls),
                            "reason": f.reason,
                            "evidence": dict(f.evidence),
                        }
                        for f in cam.findings
                    ],
                )

    def _quarantine(
        self, conn: Connection, rejected: Sequence[Rejected], size: int, sample_bytes: int
    ) -> None:
        conn.execute(
            insert(Quarantine),
            [
                {
                    "reason": r.error.reason,
                    "detail": r.error.detail[:512],
                    "topic": r.incoming.topic[:512],
                    "size": len(r.incoming.payload),
                    "received_at": r.incoming.received_at,
                    "sample": r.incoming.payload[:sample_bytes],
                }
                for r in rejected
            ],
        )
        cutoff = conn.execute(
            select(Quarantine.id).order_by(Quarantine.id.desc()).offset(size - 1).limit(1)
        ).scalar()
        if cutoff is not None:
            conn.execute(delete(Quarantine).where(Quarantine.id < cutoff))

    # -- enrollment -----------------------------------------------------------------------

    def create_token(
        self, site: str, *, approved: bool, ttl: timedelta, uses: int, now: datetime
    ) -> str:
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                insert(EnrollmentToken).values(
                    token_hash=token_hash(token),
                    site=site,
                    pre_approved=approved,
                    uses_left=uses,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return token

    def enroll(
        self,
        token: str,
        *,
        agent_id: str,
        site: str,
        jwk: dict[str, str],
        kid: str,
        hostname: str | None,
        now: datetime,
    ) -> AgentRecord:
        """Consume one use of ``token`` and enroll the agent; idempotent for the same key."""
        with self.engine.begin() as conn:
            spent = conn.execute(
                update(EnrollmentToken)
                .where(
                    EnrollmentToken.token_hash == token_hash(token),
                    EnrollmentToken.site == site,
                    EnrollmentToken.uses_left > 0,
                    EnrollmentToken.expires_at > now,
                )
                .values(uses_left=EnrollmentToken.uses_left - 1)
                .returning(EnrollmentToken.pre_approved)
            ).first()
            if spent is None:
                raise TokenRejected(
                    "enrollment token is unknown, expired, used up or for another site"
                )
            existing = conn.execute(
                select(*_RECORD).where((Agent.agent_id == agent_id) | (Agent.kid == kid))
            ).all()
            for agent in existing:
                if agent.agent_id != agent_id:
                    raise AgentConflict(f"this key is already enrolled as agent {agent.agent_id}")
                if agent.kid != kid:
                    raise AgentConflict(f"agent {agent_id} is already enrolled with another key")
            if not existing:
                conn.execute(
                    insert(Agent).values(
                        agent_id=agent_id,
                        site=site,
                        kid=kid,
                        public_jwk=jwk,
                        hostname=hostname,
                        status=APPROVED if spent.pre_approved else PENDING,
                        enrolled_at=now,
                        updated_at=now,
                    )
                )
        record = self.agent(agent_id)
        assert record is not None  # just written
        return record

    def agents(self) -> list[AgentRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_RECORD).order_by(Agent.site, Agent.agent_id))
            return [AgentRecord(*row) for row in rows]

    def agent(self, agent_id: str) -> AgentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_RECORD).where(Agent.agent_id == agent_id)).first()
            return AgentRecord(*row) if row else None

    def set_status(self, agent_id: str, status: str, now: datetime) -> bool:
        """approve: pending -> approved; revoke: any -> revoked (final). False if not allowed."""
        allowed = {APPROVED: (PENDING,), REVOKED: (PENDING, APPROVED)}[status]
        with self.engine.begin() as conn:
            done = conn.execute(
                update(Agent)
                .where(Agent.agent_id == agent_id, Agent.status.in_(allowed))
                .values(status=status, updated_at=now)
            ).rowcount
        self._keys.clear()
        return bool(done)

    # -- reads for the API, tests and tools ------------------------------------------------

    def count(self, table: type[Message | Quarantine | Camera | Finding]) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def quarantine_reasons(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Quarantine.reason, func.count()).group_by(Quarantine.reason)
            ).all()
        return {reason: int(n) for reason, n in rows}
