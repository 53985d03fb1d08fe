"""Dashboard render times on a large fleet (prints figures; not a test).

Seeds 10,000 cameras on 1,000 agents with 100,000 findings (direct inserts into the projection
tables) under a province of 10 agencies, 20 information systems and 100 sites, then serves the
collector's app on a loopback port and times full page requests (the server renders them; the
loopback round trip is included, so the figures are upper bounds). Target: median <= 300 ms.
Runs on SQLite, and on PostgreSQL when CAMWARDEN_TEST_PG (or the default local server) answers.
One camera in ten did not answer and one in ten refused its login (not audited); each agency's
cameras carry password fingerprints under the agency's key, four passwords per site, so every
camera shares its password with about 24 others (AUTH-03 sets, docs/adr/0019).

With ``--scale ministry`` (PostgreSQL only) the fleet is a ministry's: 50 agencies, 500 sites,
5,000 agents, 100,000 cameras and 1,000,000 findings (target: median <= 500 ms). Every page of
the dashboard is timed: the daily views as a whole-fleet and an agency viewer, the administration
pages as a whole-fleet administrator; 2,000 open alerts are seeded with the findings.

The projection rows are written in bulk (COPY on PostgreSQL, multi-row inserts on SQLite), not
through ingest, with the cameras' failed-finding summary columns filled as ingest fills them:
a ministry's fleet is seeded in a few minutes.

    python bench/dashboard.py [ROUNDS] [--scale city|ministry]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Connection, Table, create_engine, insert, text
from sqlalchemy.exc import OperationalError

from server.domain.orgs import Orgs
from server.domain.users import Users

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.keys import generate_private_key
from server.api import create_app
from server.domain.scope import CLI, Scope
from server.storage import Repository
from server.storage.models import FAIL_COLUMNS, KEV_CODE, Agent, Camera, Finding, finding_cve
from server.storage.org_models import AlertEvent
from tests.server.conftest import make_config, serve

AGENCIES, SYSTEMS_PER_AGENCY, SITES_PER_SYSTEM = 10, 2, 5
AGENTS_PER_SITE, CAMERAS_PER_AGENT, FINDINGS_PER_CAMERA = 10, 10, 10
MINISTRY = {"AGENCIES": 50, "CAMERAS_PER_AGENT": 20}  # 5,000 agents, 100,000 cameras
ALERTS = 2000
PASSWORD = "bench password 1"  # noqa: S105 - a throwaway user in a temporary database
SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = ("fail", "fail", "pass", "inconclusive")
CODES = ("auth.default_credential", "auth.weak_password", "fw.vulnerable", "fw.known_exploited")
KEV_CVES = ("CVE-2017-7921", "CVE-2021-36260", "CVE-2021-33044", "CVE-2023-6895")
VENDORS = (("Hikvision", "DS-2CD2143G2-I"), ("Dahua", "IPC-HFW2431S"), ("Axis", "P3245-LVE"))
PAGES = {
    "overview": "/",
    "findings": "/findings",
    "findings critical+vendor": "/findings?severity=critical&vendor=Dahua&status=fail",
    "findings page 50": "/findings?page=50",
    "known exploited (KEV)": "/kev",
    "certified models": "/models",
    "findings AUTH-03": "/findings?control=AUTH-03",
    "cameras not audited": "/cameras?audit=not_audited_any",
    "camera page (reuse set)": "/cameras/agent-000-0/cam-0",
    "compliance": "/compliance",
    "cameras": "/cameras",
    "agents": "/agents",
    "alerts": "/alerts",
    "reports": "/reports",
    "organisations": "/orgs",
    "API tokens": "/tokens",
}
ADMIN_PAGES = {"users": "/users", "audit log": "/audit", "rollouts": "/rollouts"}
AUDIT = {
    7: ("unreachable", "identification failed: no answer"),
    3: ("login_failed", "identification failed: the camera refused the stored password"),
}


def evidence(code: str, n: int) -> dict[str, str]:
    """A finding's evidence; a known-exploited one names one of ``KEV_CVES``."""
    kev = {"cve": KEV_CVES[n % len(KEV_CVES)], "kev_date_added": "2022-01-10"}
    return {"username": "admin", "firmware": "V5.5.0"} | (kev if code == KEV_CODE else {})


def seed(
    repo: Repository,
    *,
    systems_per_agency: int = SYSTEMS_PER_AGENCY,
    sites_per_system: int = SITES_PER_SYSTEM,
    agents_per_site: int = AGENTS_PER_SITE,
) -> None:
    now = datetime.now(UTC)
    root = Scope(repo, CLI, silent_after=timedelta(minutes=15), now=now)
    province = Orgs(root).create_org(parent_id=None, kind="province", name="Province").id
    sites: list[str] = []
    first_agency = 0
    for a in range(AGENCIES):
        agency = Orgs(root).create_org(parent_id=province, kind="agency", name=f"Agency {a}").id
        first_agency = first_agency or agency
        for s in range(systems_per_agency):
            system = (
                Orgs(root).create_org(parent_id=agency, kind="system", name=f"System {a}.{s}").id
            )
            for n in range(sites_per_system):
                site = f"site-{a}-{s}-{n}"
                Orgs(root).map_site(site, system)
                sites.append(site)
    Users(root).create_user("fleet", PASSWORD, "viewer", None)
    Users(root).create_user("agency", PASSWORD, "viewer", first_agency)
    Users(root).create_user("admin", PASSWORD, "admin", None)
    agents, cameras, findings = [], [], []
    for i, site in enumerate(sites):
        for j in range(agents_per_site):
            agent_id = f"agent-{i:03d}-{j}"
            agents.append(
                {
                    "agent_id": agent_id, "site": site, "kid": uuid.uuid4().hex,
                    "public_jwk": {}, "hostname": agent_id,
                    "status": ("approved", "approved", "pending")[j % 3],
                    "enrolled_at": now, "updated_at": now,
                    "last_seen": now - timedelta(minutes=j * 5),
                }
            )  # fmt: skip
            for c in range(CAMERAS_PER_AGENT):
                vendor, model = VENDORS[(i + c) % len(VENDORS)]
                audit, reason = AUDIT.get(c, ("audited", None))
                print_ = hashlib.sha256(f"{site}/{(j + c) % 4}".encode()).hexdigest()
                agency_key = f"{int(site.split('-')[1]):016x}"  # one key per agency
                cameras.append(
                    {
                        "agent_id": agent_id, "camera_id": f"cam-{c}", "site": site,
                        "report_seq": 1, "address": f"10.{i % 250}.{j}.{c}", "reachable": c != 7,
                        "identity": {"vendor": vendor, "model": model, "firmware": "V5.5.0"},
                        "audited_at": now, "updated_at": now, "audit": audit,
                        "audit_reason": reason, "password_key_id": agency_key,
                        "password_fingerprint": print_,
                    }
                )  # fmt: skip
                own = [
                    {
                        "agent_id": agent_id, "camera_id": f"cam-{c}", "report_seq": 1,
                        "code": CODES[f % len(CODES)], "check": f"check-{f}",
                        "status": STATUSES[(c + f) % len(STATUSES)],
                        "severity": SEVERITIES[(j + f) % len(SEVERITIES)],
                        "controls": [f"AUTH-0{f % 4 + 1}", "FW-01"], "reason": None,
                        "evidence": (ev := evidence(CODES[f % len(CODES)], i + c)),
                        "cve": finding_cve(ev),  # as ingest writes it
                    }
                    for f in range(FINDINGS_PER_CAMERA)
                ]  # fmt: skip
                # the summary columns, as ingest keeps them (server.storage.repository)
                failed = Counter(f["severity"] for f in own if f["status"] == "fail")
                cameras[-1].update({col.key: failed[sev] for sev, col in FAIL_COLUMNS.items()})
                findings += own
    alerts = [
        {
            "kind": "finding", "agent_id": f["agent_id"], "camera_id": f["camera_id"],
            "code": f["code"], "site": sites[n % len(sites)], "severity": "critical",
            "detail": {"evidence": f["evidence"], "identity": {"vendor": "Hikvision"}},
            "opened_at": now, "closed_at": None,
        }
        for n, f in enumerate(findings[: ALERTS * 10 : 10])
    ]  # fmt: skip
    with repo.engine.begin() as conn:
        for table, rows in (
            (Agent, agents),
            (Camera, cameras),
            (Finding, findings),
            (AlertEvent, alerts),
        ):
            bulk(conn, table.__table__, rows)  # type: ignore[arg-type]
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    print(f"  seeded {len(agents)} agents, {len(cameras)} cameras, {len(findings)} findings")


def bulk(conn: Connection, table: Table, rows: Sequence[dict[str, object]]) -> None:
    """``rows`` into ``table``: COPY on PostgreSQL, multi-row inserts elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        for start in range(0, len(rows), 5000):
            conn.execute(insert(table), rows[start : start + 5000])
        return
    columns = list(rows[0])
    is_json = {c.name for c in table.c if c.type.__class__.__name__ == "JSON"}
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c]) if c in is_json else row[c] for c in columns])


def login(client: httpx.Client, username: str) -> None:
    client.cookies.clear()
    token = client.get("/login").cookies["cw_login"]
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text


def measure(repo: Repository, url: str, rounds: int, target: float) -> None:
    with serve(create_app(make_config(url), repo, command_key=generate_private_key())) as client:
        for username, pages in (("fleet", PAGES), ("agency", PAGES), ("admin", ADMIN_PAGES)):
            login(client, username)
            for name, path in pages.items():
                try:
                    times = timed(client, path, rounds)
                except httpx.TimeoutException:
                    print(f"  {username:<7} {name:<26} over the client's 10 s: OVER TARGET")
                    continue
                median = statistics.median(times)
                verdict = "ok" if median <= target else "OVER TARGET"
                print(
                    f"  {username:<7} {name:<26} median {median:7.1f} ms"
                    f"  max {max(times):7.1f} ms  {verdict}"
                )


def timed(client: httpx.Client, path: str, rounds: int) -> list[float]:
    """Milliseconds of ``rounds`` requests of ``path``, after one to warm up."""
    client.get(path).raise_for_status()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return times


@contextmanager
def postgres_schema() -> Iterator[str | None]:
    base = os.environ.get(
        "CAMWARDEN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError:
        admin.dispose()
        yield None
        return
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(url: str, rounds: int, target: float = 300) -> None:
    repo = Repository.open(url)
    try:
        repo.migrate()
        started = time.perf_counter()
        seed(repo)
        print(f"  seeding took {time.perf_counter() - started:.1f} s")
        measure(repo, url, rounds, target)
    finally:
        repo.close()


def on_both_databases(bench: Callable[[str, int], None], rounds: int) -> None:
    """``bench(url, rounds)`` on a temporary SQLite file, then on PostgreSQL if it answers."""
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite")
        bench(f"sqlite:///{Path(tmp) / 'bench.db'}", rounds)
    with postgres_schema() as pg:
        if pg is None:
            print("PostgreSQL: not reachable, skipped")
        else:
            print("PostgreSQL")
            bench(pg, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("rounds", nargs="?", type=int, default=15)
    parser.add_argument("--scale", choices=("city", "ministry"), default="city")
    args = parser.parse_args()
    if args.scale == "ministry":
        globals().update(MINISTRY)
        with postgres_schema() as pg:
            print("PostgreSQL, a ministry's fleet" if pg else "PostgreSQL: not reachable")
            if pg is not None:
                run(pg, args.rounds, target=500)
        return
    on_both_databases(run, args.rounds)


if __name__ == "__main__":
    main()
