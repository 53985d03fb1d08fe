"""The operator API and the rollout pages over HTTP: roles, upload, and rendering."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.web.scope import Principal, Scoped
from tests.firmware.conftest import Site

CLI = Principal(0, "cli", "admin", None, None, None)


def token(site: Site, username: str, role: str) -> dict[str, str]:
    s = Scoped(site.repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC))
    user = s.create_user(username, "a long password 1", role, None)
    mine = Scoped(
        site.repo,
        Principal(user.id, username, role, None, None, None),
        silent_after=timedelta(minutes=15),
        now=datetime.now(UTC),
    )
    _, secret = mine.create_token("t")
    return {"Authorization": f"Bearer {secret}"}


def test_upload_roles_and_listing(
    signed_site: tuple[Site, dict[str, Path]], tmp_path: Path
) -> None:
    site, _ = signed_site
    admin, viewer = token(site, "ann", "admin"), token(site, "vic", "viewer")
    body = b"\x01" * 300
    form = {"vendor": "axis", "models": "P3245, M3106", "version": "10.12.1"}
    files = {"file": ("axis.bin", body, "application/octet-stream")}
    url = "/api/v1/firmware"
    assert site.http.post(url, data=form, files=files, headers=viewer).status_code == 403
    bad = form | {"vendor_sha256": "ab" * 32}
    assert site.http.post(url, data=bad, files=files, headers=admin).status_code == 422
    good = form | {"vendor_sha256": hashlib.sha256(body).hexdigest()}
    made = site.http.post(url, data=good, files=files, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["models"] == ["M3106", "P3245"]
    assert made.json()["published"] is False
    listed = site.http.get("/api/v1/firmware", headers=viewer).json()
    assert [i["published"] for i in listed] == [False, True]
    roles = site.http.get("/api/v1/firmware/tuf", headers=viewer).json()
    assert [r["role"] for r in roles] == ["root", "timestamp", "snapshot", "targets"]
    retire = f"/api/v1/firmware/{made.json()['id']}/retire"
    assert site.http.post(retire, headers=viewer).status_code == 403
    assert site.http.post(retire, headers=admin).json()["retired_by"] == "ann"
    nothing = {"name": "x", "image_id": 1, "canary_count": 1}
    assert site.http.post("/api/v1/rollouts", json=nothing, headers=admin).status_code == 422
    assert site.http.get("/api/v1/rollouts/99", headers=viewer).status_code == 404
    actions = [e["action"] for e in site.http.get("/api/v1/audit", headers=admin).json()]
    assert {"firmware.upload", "firmware.retire", "rollout.create"} <= set(actions)


def test_rollout_pages_render(signed_site: tuple[Site, dict[str, Path]]) -> None:
    site, _ = signed_site
    s = Scoped(site.repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC))
    s.create_user("opal", "a long password 1", "operator", None)
    form = site.http.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    login = site.http.post(
        "/login",
        data={"username": "opal", "password": "a long password 1", "csrf": csrf.group(1)},
    )
    assert login.status_code == 303
    page = site.http.get("/rollouts")
    assert page.status_code == 200
    assert 'http-equiv="refresh"' in page.text
    assert site.http.get("/rollouts/1").status_code == 404
