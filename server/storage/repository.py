"""The repository: the only code that talks SQL. One transaction per ingest batch
(``ingest_batch``), in which the ingest pipeline reads, decides and writes; storage never calls
back into the pipeline."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from protocol import Camera as CameraReport
from protocol import StatusReport, import_public_jwk
from protocol.text import clean_text
from server.storage.errors import DatabaseUnavailable, translate
from server.storage.migrate import upgrade
from server.storage.models import (
    FAIL_COLUMNS,
    Agent,
    Camera,
    EnrollmentToken,
    Finding,
    Message,
    Quarantine,
    UtcDateTime,
    finding_cve,
)
from server.storage.records import (
    AgentKey,
    AgentStatus,
    ChainStart,
    Checked,
    Rejected,
    StoredRef,
    StoredView,
)

if TYPE_CHECKING:
    from server.config import ServerConfig


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


# the keyed password fingerprint (AUTH-03) in the evidence of the agent's password check:
# HMAC-SHA256 hex under the key whose id (16 hex digits) tells which fingerprints compare
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_FINGERPRINT_KEY_ID = re.compile(r"^[0-9a-f]{16}$")


def password_columns(cam: CameraReport) -> dict[str, str | None]:
    """The key id and fingerprint of the camera's stored password, when the agent sent a
    well-formed one; anything else (no site key, a value of another shape) is no fingerprint."""
    for f in cam.findings:
        key_id, value = f.evidence.get("fingerprint_key_id"), f.evidence.get("fingerprint")
        if (
            isinstance(key_id, str)
            and isinstance(value, str)
            and _FINGERPRINT_KEY_ID.match(key_id)
            and _FINGERPRINT.match(value)
        ):
            return {"password_key_id": key_id, "password_fingerprint": value}
    return {"password_key_id": None, "password_fingerprint": None}


def fail_counts(cam: CameraReport) -> dict[str, int]:
    """The camera's ``fail_<severity>`` summary columns: its report's failed findings."""
    counts = Counter[str](f.severity for f in cam.findings if f.status == "fail")
    return {column.key: counts[severity] for severity, column in FAIL_COLUMNS.items()}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL with synchronous=FULL: the WAL is fsynced at every commit, so a batch acknowledged
    # after its commit survives a power loss too, not only a crash of the collector (kill -9),
    # which NORMAL already covers. One fsync per batch (up to 500 messages): no measurable cost
    # on the development machine. See docs/adr/0008-ingest-throughput.md.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # SQLite enforces foreign keys only when asked, per connection: as PostgreSQL does
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # transactions are begun explicitly (``_sqlite_begin``), not by the driver before the first
    # write, so that the reads of a batch and its writes see one snapshot
    dbapi_connection.isolation_level = None


_BEGIN_IMMEDIATE = "camwarden_begin_immediate"


def _sqlite_begin(conn: Connection) -> None:
    # the ingest transaction reads the stored view and then writes: it takes the write lock up
    # front, so a second collector waits for it instead of failing on a stale snapshot
    immediate = conn.get_execution_options().get(_BEGIN_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def read_then_write(engine: Engine) -> Iterator[Connection]:
    """A transaction that reads and then writes. On SQLite it takes the write lock up front
    (BEGIN IMMEDIATE), so it waits (busy_timeout) while another writer, such as the ingest,
    holds it; a deferred transaction would instead fail with "database is locked" at its first
    write whenever another writer committed after its first read. A plain one on PostgreSQL."""
    with engine.connect() as conn:
        conn.execution_options(**{_BEGIN_IMMEDIATE: True})  # SQLite only; modifies conn
        with conn.begin():
            yield conn


class _Statements:
    """The ingest statements, built once per dialect (their compiled forms are cached)."""

    def __init__(self, dialect_name: str) -> None:
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        self.message = insert(Message)
        seen = bindparam("b_seen", type_=UtcDateTime())
        self.last_seen = (
            update(Agent)
            .where(Agent.agent_id == bindparam("b_agent"))
            .where(or_(Agent.last_seen.is_(None), Agent.last_seen < seen))
            .values(last_seen=seen)
        )
        upsert = dialect.insert(Camera)
        keep = ("agent_id", "camera_id")
        self.camera: Executable = upsert.on_conflict_do_update(
            index_elements=[Camera.agent_id, Camera.camera_id],
            set_={
                c.name: upsert.excluded[c.name] for c in Camera.__table__.c if c.name not in keep
            },
            where=Camera.report_seq < upsert.excluded.report_seq,
        ).returning(Camera.agent_id, Camera.camera_id)
        self.clear_findings = delete(Finding).where(
            Finding.agent_id == bindparam("b_agent"), Finding.camera_id == bindparam("b_camera")
        )
        self.finding = insert(Finding)


class IngestBatch:
    """One ingest batch's transaction (``Repository.ingest_batch``): the reads of stage 2 and the
    writes of its outcome on one connection, in one snapshot."""

    def __init__(self, conn: Connection, sql: _Statements) -> None:
        self._conn = conn
        self._sql = sql

    def view(self, agents: set[str], pairs: set[tuple[str, int]], starting: set[str]) -> StoredView:
        """What stage 2 needs: the ``agents``' key status, their stored messages at the
        (agent_id, seq) ``pairs`` and the reports naming them as predecessors, and the chains of
        the ``starting`` agents (those with a report in the batch that starts a chain)."""
        conn = self._conn
        view = StoredView()
        if not agents:
            return view
        for agent in conn.execute(
            select(Agent.agent_id, Agent.kid, Agent.status).where(Agent.agent_id.in_(agents))
        ):
            view.agents[agent.agent_id] = (agent.kid, AgentStatus(agent.status))
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
        if starting:  # rare: an agent's first report, or a chain that starts again
            self._chains(conn, view, sorted(starting))
        return view

    def _chains(self, conn: Connection, view: StoredView, agents: list[str]) -> None:
        """Per agent: the lowest seq of its stored reports, and its stored chain starts."""
        reports = (Message.agent_id.in_(agents), Message.type == "report")
        view.chains = {agent: ChainStart() for agent in agents}
        for agent, earliest in conn.execute(
            select(Message.agent_id, func.min(Message.seq))
            .where(*reports)
            .group_by(Message.agent_id)
        ):
            view.chains[agent].earliest = earliest
        for agent, seq in conn.execute(
            select(Message.agent_id, Message.seq).where(*reports, Message.prev_seq == 0)
        ):
            view.chains[agent].starts.add(seq)

    def write(
        self, results: Sequence[Checked | Rejected], *, quarantine_size: int, sample_bytes: int
    ) -> None:
        """Store the accepted messages and quarantine the rejected ones (the newest
        ``quarantine_size`` quarantine rows are kept, each with ``sample_bytes`` of its bytes)."""
        accepted = [r for r in results if isinstance(r, Checked)]
        rejected = [r for r in results if isinstance(r, Rejected)]
        if accepted:
            self._store(self._conn, accepted)
        if rejected:
            self._quarantine(self._conn, rejected, quarantine_size, sample_bytes)

    def _store(self, conn: Connection, accepted: Sequence[Checked]) -> None:
        conn.execute(
            self._sql.message,
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
        reports: list[StatusReport] = []
        for c in accepted:
            m = c.message
            last_seen[m.agent_id] = max(
                c.incoming.received_at, last_seen.get(m.agent_id, m.issued_at)
            )
            if isinstance(m, StatusReport):
                reports.append(m)
        # rows in key order everywhere: concurrent collectors lock them in the same order
        conn.execute(
            self._sql.last_seen,
            [{"b_agent": agent, "b_seen": seen} for agent, seen in sorted(last_seen.items())],
        )
        if reports:
            self._project(conn, reports)

    def _project(self, conn: Connection, reports: Sequence[StatusReport]) -> None:
        """Update the current-state projection: each camera from the newest report (highest
        seq) that mentions it, unless a newer one is already stored. Once per camera per batch,
        set-wise: one upsert that returns the cameras it won, one delete, one insert."""
        by_camera: dict[tuple[str, str], tuple[StatusReport, CameraReport]] = {}
        for report in sorted(reports, key=lambda r: (r.agent_id, -r.seq)):
            for cam in report.cameras:
                # the newest report first; within a report a camera listed twice: the first
                by_camera.setdefault((report.agent_id, cam.camera_id), (report, cam))
        rows: list[dict[str, Any]] = [
            {
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
                "updated_at": report.issued_at,
                "audit": cam.audit,
                "audit_reason": cam.audit_reason,
                **password_columns(cam),
                **fail_counts(cam),
            }
            # rows in key order: concurrent collectors lock them in the same order
            for report, cam in (by_camera[key] for key in sorted(by_camera))
        ]
        if not rows:
            return
        won = sorted(tuple(row) for row in conn.execute(self._sql.camera, rows))
        if not won:
            return
        conn.execute(self._sql.clear_findings, [{"b_agent": a, "b_camera": c} for a, c in won])
        findings = [
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
                "cve": finding_cve(f.evidence),
            }
            for report, cam in (by_camera[key] for key in won)
            for f in cam.findings
        ]
        if findings:
            conn.execute(self._sql.finding, findings)

    def _quarantine(
        self, conn: Connection, rejected: Sequence[Rejected], size: int, sample_bytes: int
    ) -> None:
        conn.execute(
            insert(Quarantine),
            [
                {
                    "reason": r.error.reason,
                    # texts that name what was refused, and may quote it: a NUL or other control
                    # character would make the database refuse the quarantine row itself
                    "detail": clean_text(r.error.detail),
                    "topic": clean_text(r.incoming.topic),
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


class Repository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._keys: dict[str, AgentKey] = {}
        # called with (agent_id, status) after a status change commits (agent certificates)
        self.status_listeners: list[Callable[[str, str], None]] = []
        self._sql = _Statements(engine.dialect.name)

    @classmethod
    def open(cls, url: str) -> Repository:
        engine = create_engine(url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            # executemany INSERTs as multi-row INSERTs (SQLAlchemy's "insertmanyvalues", which
            # the SQLite dialect otherwise applies only with RETURNING): sqlite3 steps an
            # executemany once per row and releases the GIL at every step, so storing a batch
            # of 500 messages handed the GIL to the verify threads and took it back 500 times;
            # now once per statement (docs/adr/0008-ingest-throughput.md)
            engine.dialect.use_insertmanyvalues_wo_returning = True
        return cls(engine)

    @classmethod
    def open_migrated(cls, config: ServerConfig) -> Repository:
        """The collector's database as ``config`` names it, its schema brought up to date (the
        default SQLite file is created under ``state_dir``)."""
        if not config.database.url:
            Path(config.state_dir).mkdir(parents=True, exist_ok=True)
        repo = cls.open(config.database_url)
        repo.migrate()
        return repo

    def migrate(self) -> None:
        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- keys -----------------------------------------------------------------------------

    def key_for(self, kid: str) -> AgentKey | None:
        """The agent that enrolled ``kid``, cached; pending entries are re-read each time.
        Raises ``DatabaseUnavailable`` when it cannot be read."""
        cached = self._keys.get(kid)
        if cached is not None and cached.status != AgentStatus.PENDING:
            return cached
        with translate(), self.engine.connect() as conn:
            row = conn.execute(
                select(Agent.agent_id, Agent.site, Agent.status, Agent.public_jwk).where(
                    Agent.kid == kid
                )
            ).one_or_none()
        if row is None:
            return None
        status = AgentStatus(row.status)
        entry = AgentKey(row.agent_id, row.site, status, import_public_jwk(row.public_jwk))
        self._keys[kid] = entry
        return entry

    # -- ingest ---------------------------------------------------------------------------

    @contextmanager
    def ingest_batch(self) -> Iterator[IngestBatch]:
        """The transaction of one ingest batch: ``view`` reads what stage 2 needs, ``write``
        stores its outcome, and both are kept or neither.

        Raises ``DatabaseUnavailable`` or ``RecordRefused`` with nothing stored: the caller
        retries the batch in the first case (the retry sees any concurrent collector's commit as
        duplicates or replays) and isolates the refused messages in the second.
        """
        with translate(), read_then_write(self.engine) as conn:
            yield IngestBatch(conn, self._sql)

    # -- enrollment -----------------------------------------------------------------------

    def create_token(
        self, site: str, *, approved: bool, ttl: timedelta, uses: int, now: datetime
    ) -> str:
        # a fixed prefix: never starts with "-" (command lines take it as an argument, not an
        # option) and secret scanners recognise it
        token = f"cwe_{secrets.token_urlsafe(32)}"
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
                        status=AgentStatus.APPROVED if spent.pre_approved else AgentStatus.PENDING,
                        enrolled_at=now,
                        updated_at=now,
                    )
                )
        record = self.agent(agent_id)
        if record is None:  # written above: only a concurrent removal gets here
            raise DatabaseUnavailable(f"agent {agent_id} is gone right after its enrollment")
        if not existing and spent.pre_approved:
            # approved by its token: its certificate and broker role follow as on approval
            for listener in self.status_listeners:
                listener(agent_id, AgentStatus.APPROVED)
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
        allowed = {
            AgentStatus.APPROVED: (AgentStatus.PENDING,),
            AgentStatus.REVOKED: (AgentStatus.PENDING, AgentStatus.APPROVED),
        }[AgentStatus(status)]
        with self.engine.begin() as conn:
            done = conn.execute(
                update(Agent)
                .where(Agent.agent_id == agent_id, Agent.status.in_(allowed))
                .values(status=status, updated_at=now)
            ).rowcount
        self._keys.clear()
        if done:
            for listener in self.status_listeners:
                listener(agent_id, status)
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
