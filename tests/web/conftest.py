"""A two-agency world seeded through the real ingest path, served on a loopback port."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import func, inspect, select

from protocol import (
    AgentInfo,
    AuditState,
    Camera,
    Finding,
    HostHealth,
    Identity,
    StatusReport,
    SurveyResult,
    digest,
    encode,
    sign,
    topic,
)
from protocol.keys import generate_private_key
from protocol.messages import SurveyExposure, SurveyHost, SurveySummary
from protocol.survey import SURVEY
from server.api import create_app
from server.config import WebConfig
from server.domain.alerts import Alerts
from server.domain.auth import Authenticator
from server.domain.model_register import ModelRegister
from server.domain.notices import Notices
from server.domain.orgs import Orgs, SecurityRecord
from server.domain.register import ModelIn
from server.domain.remediation import Options, Remediations, Selection, Staging
from server.domain.rollouts import Rollouts, Selector
from server.domain.scope import CLI, Principal, Scope
from server.domain.survey import Surveys
from server.domain.users import Users
from server.firmware.tuf_repo import TufRepository
from server.ingest.ingestor import Ingestor
from server.metrics import Metrics
from server.storage import Repository
from server.storage.alert_events import snapshot, sync
from server.storage.firmware_models import CommandRecord
from server.storage.org_models import AlertEvent
from server.storage.records import Incoming
from tests.server.conftest import db_url, enroll, make_config, pg_schema, repo, serve
from tests.support.agents import SimAgent
from tests.support.firmware import published_repo

__all__ = ["db_url", "repo"]  # fixtures re-exported for the tests in this directory

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True, slots=True)
class World:
    province: int
    agency_a: int
    agency_b: int
    system_a: int
    system_b: int
    users: dict[str, int]  # username -> id
    tokens: dict[str, str]  # username -> API token secret
    token_ids: dict[str, int]
    route_b: int  # an alert route of agency B
    model: int  # a register entry
    firmware: Firmware
    alert_b: int  # an open alert of agency B
    sims: dict[str, SimAgent]  # the agents, to send more reports as them


@dataclass(frozen=True, slots=True)
class Firmware:
    """A signed repository under ``state_dir`` with one published image (fleet-wide), a rollout
    of each agency on its own site, and a queued password rotation on agent-b1/cam-0."""

    state_dir: Path
    image_id: int
    rollout_a: int
    rollout_b: int
    command_b: str


def escrow_jwk() -> dict[str, str]:
    """A fresh X25519 public key, as a password rotation needs it."""
    public = OKPKey.generate_key("X25519").as_dict(private=False)
    return {k: str(v) for k, v in public.items()}


def scoped_as(repo: Repository, principal: Principal) -> Scope:
    return Scope(repo, principal, silent_after=timedelta(minutes=15), now=datetime.now(UTC))


def principal_of(repo: Repository, username: str) -> Principal:
    auth = Authenticator(repo, WebConfig())
    found = auth.login(username, PASSWORD, datetime.now(UTC))
    assert found is not None
    return found[1]


def ingest(repo: Repository, db: str, agents: list[SimAgent], cameras: int = 3) -> None:
    ingestor = Ingestor(make_config(db), repo, Metrics())
    try:
        batch = []
        for agent in agents:
            for _ in range(2):  # two reports each: a history to show
                topic, payload = agent.report(cameras)
                batch.append(Incoming(topic, payload, datetime.now(UTC)))
        outcomes = ingestor.process(batch)
        assert all(type(o).__name__ == "Checked" for o in outcomes), outcomes
    finally:
        ingestor.close()


@dataclass(frozen=True, slots=True)
class Template:
    """A world seeded once: its database (a SQLite file, or a PostgreSQL schema) and state."""

    world: World
    sqlite_file: Path | None
    pg_schema: str | None


class Templates:
    """One seeded world per database kind for a test module, copied into each test's own fresh
    database: seeding takes seconds (ingest, TUF signing), a copy a fraction of one."""

    def __init__(self, root: Path, stack: contextlib.ExitStack) -> None:
        self.root, self.stack = root, stack
        self.made: dict[str, Template] = {}

    def get(self, db_url: str) -> Template:
        kind = "sqlite" if db_url.startswith("sqlite") else "postgresql"
        if kind not in self.made:
            if kind == "sqlite":
                file, schema = self.root / "template.db", None
                url = f"sqlite:///{file}"
            else:
                url, file = self.stack.enter_context(pg_schema()), None
            repo = Repository.open(url)
            repo.migrate()
            try:
                world = seed_world(repo, url, self.root / f"{kind}-state")
                if file is None:
                    with repo.engine.connect() as conn:
                        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            finally:
                repo.close()
            self.made[kind] = Template(world, file, schema)
        return self.made[kind]


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    with contextlib.ExitStack() as stack:
        yield Templates(tmp_path_factory.mktemp("world"), stack)


@pytest.fixture
def world(repo: Repository, db_url: str, tmp_path: Path, templates: Templates) -> World:
    """The module's seeded world, copied into this test's database and state directory."""
    template = templates.get(db_url)
    copy_rows(repo, template)
    state_dir = tmp_path / "state"
    shutil.copytree(template.world.firmware.state_dir, state_dir)
    firmware = dataclasses.replace(template.world.firmware, state_dir=state_dir)
    return dataclasses.replace(template.world, firmware=firmware)


def copy_rows(repo: Repository, template: Template) -> None:
    """Every row of the template's tables into ``repo``'s (same schema: both migrated to head),
    foreign keys unchecked while copying, PostgreSQL's sequences moved past the copied ids.
    Table and column names come from the database's own catalogue."""
    with repo.engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
    raw = repo.engine.raw_connection()
    try:
        cur = raw.cursor()
        if template.sqlite_file is not None:
            enforced = cur.execute("PRAGMA foreign_keys").fetchone()[0]
            cur.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or it is ignored
            cur.execute("ATTACH DATABASE ? AS tpl", (str(template.sqlite_file),))
            cur.execute("BEGIN")
            source = "tpl"
        else:
            cur.execute("SET session_replication_role = replica")
            source = f'"{template.pg_schema}"'
        for table in tables:
            cur.execute(f'DELETE FROM "{table}"')  # noqa: S608
            cur.execute(f'INSERT INTO "{table}" SELECT * FROM {source}."{table}"')  # noqa: S608
        if template.pg_schema is not None:
            cur.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() "
                "AND (column_default LIKE 'nextval%%' OR is_identity = 'YES')"
            )
            for table, column in cur.fetchall():
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "  # noqa: S608
                    f'COALESCE(MAX("{column}"), 0) + 1, false) FROM "{table}"'
                )
            cur.execute("SET session_replication_role = DEFAULT")
        raw.commit()
        if template.sqlite_file is not None:
            cur.execute("DETACH DATABASE tpl")
            cur.execute(f"PRAGMA foreign_keys={int(enforced)}")
    finally:
        raw.close()


def seed_world(repo: Repository, db_url: str, state_dir: Path) -> World:
    """The two agencies, their agents, users, tokens, an alert route, a register entry and the
    firmware of ``Firmware`` (its signed repository under ``state_dir``)."""
    root = scoped_as(repo, CLI)
    province = Orgs(root).create_org(parent_id=None, kind="province", name="Province P").id
    agency_a = Orgs(root).create_org(parent_id=province, kind="agency", name="Agency A").id
    agency_b = Orgs(root).create_org(parent_id=province, kind="agency", name="Agency B").id
    system_a = Orgs(root).create_org(parent_id=agency_a, kind="system", name="System A").id
    system_b = Orgs(root).create_org(parent_id=agency_b, kind="system", name="System B").id
    Orgs(root).map_site("site-a", system_a)
    Orgs(root).map_site("site-b", system_b)
    Orgs(root).set_security_record(
        system_a,
        SecurityRecord("ND331_TCVN14423", 3, "123/QD-A", date(2024, 5, 1), "partial",
                       date(2020, 1, 1)),
    )  # fmt: skip
    Orgs(root).set_security_record(
        system_b, SecurityRecord("ND85_TT12_TCVN11930", 2, None, None, "full", None)
    )
    sims = {
        "agent-a1": SimAgent("agent-a1", "site-a"),
        "agent-a2": SimAgent("agent-a2", "site-a"),
        "agent-b1": SimAgent("agent-b1", "site-b"),
        "agent-b2": SimAgent("agent-b2", "site-b"),
    }
    for name, sim in sims.items():
        enroll(repo, sim, approved=name.endswith("1"))
    ingest(repo, db_url, [sims["agent-a1"], sims["agent-b1"]])
    users: dict[str, int] = {}
    for username, role, org in (
        ("root", "admin", None),
        ("admin-a", "admin", agency_a),
        ("operator-a", "operator", agency_a),
        ("viewer-a", "viewer", agency_a),
        ("admin-b", "admin", agency_b),
    ):
        users[username] = Users(root).create_user(username, PASSWORD, role, org).id
    tokens: dict[str, str] = {}
    token_ids: dict[str, int] = {}
    for username in users:
        info, secret = Users(scoped_as(repo, principal_of(repo, username))).create_token("tests")
        tokens[username], token_ids[username] = secret, info.id
    route_b = (
        Alerts(root)
        .create_alert_route(
            org_unit_id=agency_b,
            name="Agency B hook",
            channel="webhook",
            target="http://127.0.0.1:9/agency-b",
            kinds=["finding", "silent"],
        )[0]
        .id
    )
    model = ModelRegister(root).save_model(
        ModelIn("Hikvision", "DS-2CD2143G2-I", None, "QCVN-135/2024/0042", "Cuc Vien thong",
                date(2024, 11, 4))
    ).id  # fmt: skip
    sync(repo.engine, datetime.now(UTC), timedelta(minutes=15))
    snapshot(repo.engine, datetime.now(UTC).date())
    firmware = seed_firmware(repo, state_dir)
    with repo.engine.connect() as conn:
        alert_b = conn.execute(
            select(func.min(AlertEvent.id)).where(AlertEvent.site == "site-b")
        ).scalar_one()
    return World(
        province,
        agency_a,
        agency_b,
        system_a,
        system_b,
        users,
        tokens,
        token_ids,
        route_b,
        model,
        firmware,
        alert_b,
        sims,
    )


def seed_firmware(repo: Repository, state_dir: Path) -> Firmware:
    """Published by the whole fleet's CLI; each agency's campaign made by its own people."""
    state_dir.mkdir()
    image_id = published_repo(state_dir, repo, uploader=CLI)
    tuf = TufRepository.under(state_dir)
    rollouts: dict[str, int] = {}
    for user, site in (("operator-a", "site-a"), ("admin-b", "site-b")):
        fw = Rollouts(scoped_as(repo, principal_of(repo, user)), tuf)
        made = fw.create_rollout(
            name=f"{site} canary",
            image_id=image_id,
            selector=Selector(site=site),
            canary_count=1,
            canary_percent=None,
            batch_size=10,
            max_parallel_per_site=2,
            failure_threshold=1,
            windows={},
        )
        rollouts[site] = made.rollout.id
    as_b = Rollouts(scoped_as(repo, principal_of(repo, "admin-b")), tuf)
    command_b = as_b.rotate_password("agent-b1", "cam-0", escrow_jwk(), "admin")
    return Firmware(state_dir, image_id, rollouts["site-a"], rollouts["site-b"], command_b)


@pytest.fixture
def server(repo: Repository, db_url: str, world: World) -> Iterator[httpx.Client]:
    """The collector's app (dashboard included) on a real uvicorn server on loopback."""
    config = msgspec.structs.replace(make_config(db_url), state_dir=str(world.firmware.state_dir))
    with serve(create_app(config, repo, command_key=generate_private_key())) as client:
        yield client


@pytest.fixture
def server_before_firmware_init(
    repo: Repository, db_url: str, world: World, tmp_path: Path
) -> Iterator[httpx.Client]:
    """The same world served from a state directory where ``firmware init`` has not run."""
    config = msgspec.structs.replace(make_config(db_url), state_dir=str(tmp_path / "bare"))
    with serve(create_app(config, repo, command_key=generate_private_key())) as client:
        yield client


TELNET_OPEN = Finding(
    code="svc.telnet_open",
    check="svc.cleartext",
    status="fail",
    severity="critical",
    controls=["COM-06", "SVC-02"],
)


def remediation_plan(repo: Repository, db: str, world: World, agent_id: str, user: str) -> int:
    """A new camera ``cam-fix`` of ``agent_id`` with Telnet open, and a remediation plan over
    the agent's site stored by ``user`` (awaiting approval); returns the plan's id."""
    sim = world.sims[agent_id]
    process(repo, db, [report_with(sim, [camera("cam-fix", [TELNET_OPEN])])])
    plan = Remediations(scoped_as(repo, principal_of(repo, user))).create(
        name=f"{sim.site} telnet",
        selection=Selection(site=sim.site),
        options=Options(),
        escrow_jwk=escrow_jwk(),
        staging=Staging(),
    )
    return plan.rollout.rollout.id


@dataclass(frozen=True, slots=True)
class SurveyIds:
    survey: int
    prefix: int
    notice: int


SURVEY_MAP = (
    b"prefix,subscriber_id,name,contact,province,district,valid_from\r\n"
    b"198.51.100.0/28,SUB-1,Subscriber one,one@example.vn,P,D,2026-01-01\r\n"
)


def survey_of(repo: Repository, world: World, org_id: int, agent_id: str, user: str) -> SurveyIds:
    """A finished survey of ``org_id`` as a provider (prefix 198.51.100.0/28, run on
    ``agent_id``, started by ``user``) that found one host of a mapped subscriber: its ids."""
    person = scoped_as(repo, principal_of(repo, user))
    prefix = Surveys(person).declare_prefix(org_id, "198.51.100.0/28").id
    Notices(person).apply_map(org_id, SURVEY_MAP)
    survey_id = Surveys(person).start(org_id, [agent_id])
    with repo.engine.connect() as conn:
        command = conn.execute(
            select(CommandRecord.command_id, CommandRecord.params).where(
                CommandRecord.action == SURVEY, CommandRecord.agent_id == agent_id
            )
        ).one()
    now = datetime.now(UTC)
    summary = SurveySummary(
        addresses=16, excluded=0, opted_out=0, probed=16, answered=1, parts=1,
        started_at=now, finished_at=now, complete=True,
    )  # fmt: skip
    found = SurveyHost(
        address="198.51.100.3",
        ports=[23],
        exposures=[SurveyExposure(code="survey.telnet_open", port=23)],
    )
    result = SurveyResult(
        agent_id=agent_id, site=world.sims[agent_id].site, seq=1, issued_at=now,
        prev="0" * 64, prev_seq=0, command_id=command.command_id, survey_id=str(survey_id),
        shard=command.params["shard"], part=1, last=True, hosts=[found], summary=summary,
    )  # fmt: skip
    assert Surveys(scoped_as(repo, CLI)).record(agent_id, result)
    (notice,) = Notices(person).notices(survey_id)
    return SurveyIds(survey_id, prefix, notice.id)


def bearer(world: World, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[username]}"}


def report_with(sim: SimAgent, cameras: list[Camera]) -> tuple[str, bytes]:
    """A signed report of ``sim`` with the given cameras (chain kept like SimAgent.report)."""
    sim.seq += 1
    message = StatusReport(
        agent_id=sim.agent_id,
        site=sim.site,
        seq=sim.seq,
        issued_at=datetime.now(UTC),
        prev=sim.prev,
        prev_seq=sim.prev_seq,
        agent=AgentInfo(version="0.1.0", hostname=sim.agent_id, platform="Linux-aarch64"),
        host=HostHealth(
            cpu_percent=1.0, memory_percent=1.0, disk_free_bytes=10**9, uptime_s=1.0, load1=0.1
        ),
        cameras=cameras,
    )
    token = sign(encode(message), sim.key).encode()
    sim.prev, sim.prev_seq = digest(token), sim.seq
    return topic(sim.site, sim.agent_id, "report"), token


def camera(
    camera_id: str,
    findings: list[Finding],
    vendor: str = "Hikvision",
    model: str = "X",
    *,
    audit: AuditState = "audited",
    reason: str | None = None,
) -> Camera:
    return Camera(
        camera_id=camera_id,
        address="10.99.0.50",
        reachable=True,
        identity=Identity(vendor=vendor, model=model, firmware="V5.4.0"),
        findings=findings,
        audited_at=datetime.now(UTC),
        audit=audit,
        audit_reason=reason,
    )


def process(repo: Repository, db: str, messages: list[tuple[str, bytes]]) -> None:
    ingestor = Ingestor(make_config(db), repo, Metrics())
    try:
        outcomes = ingestor.process([Incoming(t, p, datetime.now(UTC)) for t, p in messages])
        assert all(type(o).__name__ == "Checked" for o in outcomes), outcomes
    finally:
        ingestor.close()
