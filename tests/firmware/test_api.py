"""The operator API and the rollout pages over HTTP: roles, upload, and rendering."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocol import generate_private_key
from server.api import create_app
from server.config import DatabaseConfig, ServerConfig
from server.domain.scope import Invalid, Principal, Scoped
from server.firmware.service import FirmwareScoped, receive
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from tests.firmware.conftest import Site
from tests.server.conftest import serve
from tests.support.firmware import published_repo

CLI = Principal(0, "cli", "admin", None, None, None)


def token(site: Site, username: str, role: str) -> dict[str, str]:
    return token_in(site.repo, username, role)


def token_in(repo: Repository, username: str, role: str) -> dict[str, str]:
    s = Scoped(repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC))
    user = s.create_user(username, "a long password 1", role, None)
    mine = Scoped(
        repo,
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


def test_release_notes_refuse_control_characters(
    repo: Repository, db_url: str, tmp_path: Path
) -> None:
    """A NUL in the notes was a 500 on PostgreSQL (no NUL in text columns): now a 422 on every
    database, while line breaks and tabs stay allowed."""
    published_repo(tmp_path, repo)
    config = ServerConfig(state_dir=str(tmp_path), database=DatabaseConfig(url=db_url))
    admin = token_in(repo, "ann", "admin")
    form = {"vendor": "axis", "models": "P3245", "version": "10.12.1"}
    files = {"file": ("axis.bin", b"\x01" * 300, "application/octet-stream")}
    with serve(create_app(config, repo, command_key=generate_private_key())) as http:
        for notes in ("a\x00b", "bell \x07", "esc \x1b[31m"):
            bad = form | {"release_notes": notes}
            r = http.post("/api/v1/firmware", data=bad, files=files, headers=admin)
            assert r.status_code == 422, (notes, r.status_code, r.text)
        good = form | {"release_notes": "Fixes:\n\t- CVE-2021-36260\r\n"}
        made = http.post("/api/v1/firmware", data=good, files=files, headers=admin)
        assert made.status_code == 201, made.text
        assert made.json()["release_notes"] == good["release_notes"]
    # the same rule below the API, for the CLI's `firmware upload --notes`
    tuf = TufRepository.under(tmp_path)
    s = FirmwareScoped(Scoped(repo, CLI, silent_after=timedelta(1), now=datetime.now(UTC)), tuf)
    with pytest.raises(Invalid, match="control characters"):
        s.upload(
            receive(tuf, io.BytesIO(b"\x02" * 300), 10**6),
            filename="axis.bin",
            vendor="axis",
            models=["P3245"],
            version="10.12.2",
            build_date=None,
            vendor_sha256=None,
            release_notes="a\x00b",
        )
    assert not list(tuf.incoming_dir.iterdir())  # the refused upload is not left behind
