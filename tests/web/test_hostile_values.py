"""Hostile values stored straight through the storage layer (the wire schema would refuse some
of them) survive every page and API route: no 500, no markup run, long values cut on screen.

The routes are enumerated from the app, so a new route is requested here without a change
(a path parameter with no value below fails the test and names itself).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import String, create_engine, insert, select, update
from sqlalchemy.exc import DBAPIError

from protocol.keys import generate_private_key
from server.api import create_app
from server.storage import Repository
from server.storage.migrate import upgrade
from server.storage.models import Agent, Camera, Finding
from server.storage.org_models import OrgUnit
from tests.server.conftest import make_config
from tests.web.conftest import PASSWORD, World, bearer, remediation_plan

pytestmark = pytest.mark.integration

NUL = "cam\x00era\x00"
LONG = "W" * 10_000
RLO = "\u202egnp.exe"
SCRIPT = '<script>alert("cw")</script>'
IMG = '"><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://192.0.2.1/","x")'  # a spreadsheet runs a cell that starts with =
AGENT = "agent-a1"  # agency A's approved agent: seen by the scoped users too
IDENTITY = ("vendor", "model", "firmware", "build_date", "serial", "hardware_id", "mac", "source")


def values(db_url: str) -> dict[str, str]:
    """One camera per hostile kind; PostgreSQL refuses NUL (text columns, and json columns by a
    constraint: its json type would keep it and then fail every ``->>``), so only SQLite has it."""
    kinds = {"long": LONG, "rlo": RLO, "script": SCRIPT, "img": IMG, "mixed": SCRIPT + RLO + LONG}
    if db_url.startswith("sqlite"):
        kinds["nul"] = NUL + SCRIPT
    return kinds


def fit(column: Any, value: str) -> str:
    """``value`` cut to a text column's length (PostgreSQL enforces it; SQLite does not)."""
    length = column.type.length if isinstance(column.type, String) else None
    return value[:length] if length else value


def store(repo: Repository, db_url: str, world: World) -> list[str]:
    """The hostile cameras of ``AGENT``, their findings and the agent's hostname."""
    now = datetime.now(UTC)
    ids = []
    with repo.engine.begin() as conn:
        for kind, value in values(db_url).items():
            camera_id = f"hostile-{kind}"
            ids.append(camera_id)
            conn.execute(
                insert(Camera).values(
                    agent_id=AGENT,
                    camera_id=camera_id,
                    site="site-a",
                    report_seq=1,
                    address=fit(Camera.address, value),
                    reachable=True,
                    identity=dict.fromkeys(IDENTITY, value),
                    audited_at=now,
                    updated_at=now,
                )
            )
            for n, status in enumerate(("fail", "inconclusive")):
                conn.execute(
                    insert(Finding).values(
                        agent_id=AGENT,
                        camera_id=camera_id,
                        report_seq=1,
                        code=fit(Finding.code, value) if n else "auth.default_credential",
                        check=fit(Finding.check, value),
                        status=status,
                        severity="critical",
                        controls=["AUTH-01", value],
                        reason=fit(Finding.reason, value),
                        evidence={value[:64]: value, "username": value, "list": [value, 1]},
                    )
                )
        conn.execute(
            update(Agent)
            .where(Agent.agent_id == AGENT)
            .values(hostname=fit(Agent.hostname, SCRIPT))
        )
        # the name of agency A's information system: in every export (CSV, PDF) of the agency
        name = FORMULA + RLO + SCRIPT + (NUL if db_url.startswith("sqlite") else "") + LONG
        conn.execute(
            update(OrgUnit).where(OrgUnit.id == world.system_a).values(name=fit(OrgUnit.name, name))
        )
    return ids


def route_params(world: World, camera_ids: list[str], plan: int) -> dict[str, list[str]]:
    """Values for every path parameter the app has (read from the seeded world; ``plan``: a
    remediation plan whose items include the hostile cameras)."""
    fw = world.firmware
    return {
        "agent_id": [AGENT],
        "camera_id": camera_ids,
        "org_id": [str(world.agency_a)],
        "system_id": [str(world.system_a)],
        "site": ["site-a"],
        "user_id": [str(world.users["viewer-a"])],
        "token_id": [str(world.token_ids["viewer-a"])],
        "model_id": [str(world.model)],
        "route_id": [str(world.route_b)],
        "level": ["1"],
        "image_id": [str(fw.image_id)],
        "rollout_id": [str(fw.rollout_a)],
        "command_id": [fw.command_b],
        "plan_id": [str(plan)],
        "name": ["timestamp.json"],
        "target": ["missing.bin"],
        # no survey in this world: the survey pages answer 404, never 500
        "survey_id": ["1"],
        "notice_id": ["1"],
        "prefix_id": ["1"],
    }


QUERY = {"org": None, "from": "2020-01-01", "to": date.today().isoformat()}


def requests(repo: Repository, world: World, camera_ids: list[str], plan: int) -> Iterator[str]:
    """Every GET route of the app with its path parameters filled: URLs to request."""
    app = create_app(make_config("sqlite://"), repo, command_key=generate_private_key())
    params = route_params(world, camera_ids, plan)
    query = {**QUERY, "org": str(world.agency_a)}
    for route in iter_route_contexts(app.routes):
        if "GET" not in (route.methods or ()) or route.path is None:
            continue
        dependant = getattr(route, "dependant", None)
        names = [p.name for p in dependant.path_params] if dependant else []
        queries = dependant.query_params if dependant else []
        missing = [n for n in names if n not in params]
        assert not missing, f"{route.path}: give the test a value for {missing}"
        required = [q.alias for q in queries if q.field_info.is_required()]
        formats = ["csv", "pdf"] if any(q.alias == "format" for q in queries) else [""]
        urls = [route.path]
        for name in names:
            urls = [
                url.replace("{" + name + "}", value).replace("{" + name + ":path}", value)
                for url in urls
                for value in params[name]
            ]
        for url in urls:
            for fmt in formats:
                q = {name: query[name] for name in required}
                if fmt:
                    q["format"] = fmt
                yield url + ("?" + str(httpx.QueryParams(q)) if q else "")
    # the query parameters that are echoed back into a page
    for value in (SCRIPT, IMG, RLO, LONG[:512]):
        yield "/findings?" + str(httpx.QueryParams({"vendor": value, "model": value}))
        yield "/login?" + str(httpx.QueryParams({"next": value}))


def login(server: httpx.Client, username: str) -> None:
    page = server.get("/login")
    form = {"username": username, "password": PASSWORD, "csrf": page.cookies["cw_login"]}
    assert server.post("/login", data=form).status_code == 303


def check(url: str, response: httpx.Response) -> list[str]:
    """What is wrong with one answer (empty: nothing)."""
    problems = []
    if response.status_code >= 500:
        problems.append(f"{url}: {response.status_code}")
    media = response.headers.get("content-type", "")
    if media.startswith("text/html"):
        text = response.text
        for raw in (SCRIPT, IMG, "<img", "\x00", "\u202e"):
            if raw in text:
                problems.append(f"{url}: {raw!r} unescaped in the page")
        if "W" * 1000 in text:
            problems.append(f"{url}: a 10,000-character value shown uncut")
    if response.status_code < 300 and not media:
        problems.append(f"{url}: no content type")
    if response.headers.get("x-content-type-options") != "nosniff":
        problems.append(f"{url}: no X-Content-Type-Options: nosniff")
    return problems


@pytest.mark.parametrize("username", ["root", "viewer-a"])
def test_every_route_survives_hostile_values(
    repo: Repository, db_url: str, world: World, server: httpx.Client, username: str
) -> None:
    camera_ids = store(repo, db_url, world)
    plan = remediation_plan(repo, db_url, world, AGENT, "operator-a")
    login(server, username)
    problems: list[str] = []
    seen: dict[int, int] = {}
    urls = list(requests(repo, world, camera_ids, plan))
    for url in urls:
        for headers in ({}, bearer(world, username)):
            response = server.get(url, headers=headers)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            problems += check(url, response)
    assert problems == [], "\n".join(p for p in problems if "nosniff" not in p)
    assert len(urls) > 40
    assert seen.get(200, 0) > len(urls)  # the hostile rows were read, not only refused


def test_the_camera_page_shows_hostile_values_harmlessly(
    repo: Repository, db_url: str, world: World, server: httpx.Client
) -> None:
    store(repo, db_url, world)
    login(server, "viewer-a")
    page = server.get(f"/cameras/{AGENT}/hostile-script")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#34;cw&#34;)&lt;/script&gt;" in page.text
    long_page = server.get(f"/cameras/{AGENT}/hostile-long")
    assert long_page.status_code == 200
    assert "W" * 200 in long_page.text
    assert "…" in long_page.text
    data = server.get(f"/api/v1/cameras/{AGENT}/hostile-long", headers=bearer(world, "viewer-a"))
    assert data.json()["identity"]["vendor"] == LONG  # the API gives the stored value whole


@pytest.mark.parametrize("column", ["hostname", "identity", "evidence"])
def test_postgresql_refuses_nul(repo: Repository, db_url: str, world: World, column: str) -> None:
    """NUL cannot be stored on PostgreSQL, in text columns nor in json ones."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite stores NUL; the route test covers it")
    statement = {
        "hostname": update(Agent).values(hostname=NUL),
        "identity": update(Camera).values(identity={"vendor": NUL}),
        "evidence": update(Finding).values(evidence={"user": NUL}),
    }[column]
    with pytest.raises(DBAPIError), repo.engine.begin() as conn:
        conn.execute(statement)


def test_migration_cleans_stored_nul(db_url: str) -> None:
    """A NUL stored by an older collector in a json column is removed before the check is set."""
    if db_url.startswith("sqlite"):
        pytest.skip("the check exists on PostgreSQL only")
    engine = create_engine(db_url)
    try:
        upgrade(engine, "0005_results_by_seq")
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(Agent).values(
                    agent_id="a",
                    site="s",
                    kid="k",
                    public_jwk={},
                    status="approved",
                    enrolled_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                insert(Camera).values(
                    agent_id="a",
                    camera_id="c",
                    site="s",
                    report_seq=1,
                    address="x",
                    reachable=True,
                    identity={"vendor": NUL, "model": "M"},
                    audited_at=now,
                    updated_at=now,
                )
            )
        upgrade(engine, "0006_json_without_nul")
        with engine.connect() as conn:
            assert conn.execute(select(Camera.identity)).scalar_one() == {
                "vendor": "camera",
                "model": "M",
            }
    finally:
        engine.dispose()


MARK = "cwa_Forged0123456789"


def test_no_query_parameter_is_shown_as_trusted_text(
    repo: Repository, world: World, server: httpx.Client
) -> None:
    """Every query parameter of every page, set to a marker: it may come back only as the value
    of a form field (a filter the user typed), never as text of the page (a forged "secret
    shown once", a notice)."""
    login(server, "admin-a")
    app = create_app(make_config("sqlite://"), repo, command_key=generate_private_key())
    pages = 0
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        path = route.path
        if "GET" not in (route.methods or ()) or not dependant or dependant.path_params or not path:
            continue
        names = [q.alias for q in dependant.query_params] + ["secret", "message", "changed"]
        response = server.get(path, params=dict.fromkeys(names, MARK))
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        pages += 1
        shown = re.sub(r'value="[^"]*"', "", response.text)
        assert MARK not in shown, path
    assert pages > 10


def test_exports_hold_hostile_names(
    repo: Repository, db_url: str, world: World, server: httpx.Client
) -> None:
    """The compliance report of agency A, whose system has a hostile name: a spreadsheet gets
    it as text (no formula), the PDF renders."""
    store(repo, db_url, world)
    query = {"org": str(world.agency_a), "from": "2020-01-01", "to": date.today().isoformat()}
    headers = bearer(world, "admin-a")
    csv_file = server.get(
        "/api/v1/reports/compliance", params={**query, "format": "csv"}, headers=headers
    )
    assert csv_file.status_code == 200
    rows = list(csv.reader(io.StringIO(csv_file.content.decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert any(c.startswith("'=HYPERLINK") for c in cells)
    pdf = server.get(
        "/api/v1/reports/compliance", params={**query, "format": "pdf"}, headers=headers
    )
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
