"""Sign-in throttling over HTTP against the real app: per account, per source address (from a
trusted proxy only), 429 with Retry-After, audit-logged, unlocked by an admin in the dashboard
and in the CLI; and Secure session cookies over TLS. Lock times are kept small by config."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from sqlalchemy import select

from protocol.keys import generate_private_key
from server.api import create_app
from server.cli import main
from server.config import HttpConfig, ServerConfig, WebConfig, load_config
from server.storage import Repository
from server.storage.org_models import AuditEntry
from tests.server.conftest import make_config, serve
from tests.web.conftest import PASSWORD, World

pytestmark = pytest.mark.integration

WRONG = "not the password at all"
FREE = 3  # failures per account before it locks
SOURCE_FREE = 6
LOCK_S = 60.0  # no lock ends during a test unless the test asks for a short one

Serve = Callable[..., httpx.Client]


@pytest.fixture
def served(repo: Repository, db_url: str, world: World) -> Iterator[Serve]:
    """Start the app with small lock times (and optional HTTP settings); clients are closed."""
    stack: list[object] = []

    def start(lock_s: float = LOCK_S, **http: object) -> httpx.Client:
        config = msgspec.structs.replace(
            make_config(db_url),
            state_dir=str(world.firmware.state_dir),
            http=HttpConfig(**http),  # type: ignore[arg-type]
            web=WebConfig(
                login_free_failures=FREE,
                login_source_free_failures=SOURCE_FREE,
                login_lock_s=lock_s,
                login_lock_max_s=4 * lock_s,
            ),
        )
        context = serve(create_app(config, repo, command_key=generate_private_key()))
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)  # type: ignore[attr-defined]


def sign_in(
    client: httpx.Client, username: str, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    token = client.get("/login").cookies.get("cw_login") or client.cookies["cw_login"]
    form = {"username": username, "password": password, "csrf": token}
    return client.post("/login", data=form, headers=headers or {})


def wait_out(response: httpx.Response) -> None:
    """Sleep past the lock a 429 names (Retry-After is whole seconds, rounded up); on a loaded
    machine the lock may be over before the request that would have met it."""
    if response.status_code == 429:
        time.sleep(float(response.headers["retry-after"]) + 0.2)


def audit(repo: Repository, username: str) -> list[tuple[str, str, dict[str, object]]]:
    with repo.engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.detail)
            .where(AuditEntry.target_id == username)
            .order_by(AuditEntry.id)
        ).all()
    return [(r.action, r.outcome, r.detail) for r in rows]


def test_forty_wrong_passwords(served: Serve, repo: Repository) -> None:
    client = served(lock_s=60)
    answers = [sign_in(client, "operator-a", WRONG).status_code for _ in range(40)]
    assert answers == [401] * FREE + [429] * (40 - FREE)  # the password is no longer checked
    locked = sign_in(client, "operator-a", PASSWORD)  # the right one too, while locked
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    assert "Đăng nhập sai quá nhiều lần" in locked.text  # the catalogue's text, default vi
    assert "cw_session" not in locked.cookies
    entries = [e for e in audit(repo, "operator-a") if e[1] != "ok"]  # the fixture's logins
    assert [o for _, o, _ in entries] == ["denied"] * FREE + ["throttled"] * (41 - FREE)
    assert entries[FREE - 1][2] == {"source": "127.0.0.1", "locked_s": 60}
    assert entries[FREE][2]["source"] == "127.0.0.1"
    assert 0 < entries[FREE][2]["retry_after_s"] <= 60  # type: ignore[operator]


def test_the_lock_doubles_and_ends(served: Serve, repo: Repository) -> None:
    client = served(lock_s=1.0)
    for _ in range(FREE):
        assert sign_in(client, "operator-a", WRONG).status_code == 401
    wait_out(sign_in(client, "operator-a", PASSWORD))
    assert sign_in(client, "operator-a", WRONG).status_code == 401  # one more: twice as long
    wait_out(sign_in(client, "operator-a", PASSWORD))
    assert sign_in(client, "operator-a", PASSWORD).status_code == 303  # and clears the count
    locks = [d.get("locked_s") for _, o, d in audit(repo, "operator-a") if o == "denied"]
    assert locks == [None] * (FREE - 1) + [1.0, 2.0]
    assert sign_in(client, "operator-a", WRONG).status_code == 401


def test_a_source_locks_across_accounts(served: Serve) -> None:
    client = served()
    for n in range(SOURCE_FREE):
        assert sign_in(client, f"guess-{n}", WRONG).status_code == 401
    refused = sign_in(client, "viewer-a", PASSWORD)
    assert refused.status_code == 429
    # a forwarded address from a peer that is no trusted proxy changes nothing
    spoofed = sign_in(client, "viewer-a", PASSWORD, {"X-Forwarded-For": "192.0.2.99"})
    assert spoofed.status_code == 429


def test_the_source_behind_a_trusted_proxy(served: Serve, repo: Repository) -> None:
    client = served(trusted_proxies=["127.0.0.0/8"])
    for n in range(SOURCE_FREE):
        forwarded = {"X-Forwarded-For": "192.0.2.7"}
        assert sign_in(client, f"guess-{n}", WRONG, forwarded).status_code == 401
    assert sign_in(client, "viewer-a", PASSWORD, {"X-Forwarded-For": "192.0.2.7"}).status_code == (
        429
    )
    other = {"X-Forwarded-For": "192.0.2.8", "X-Forwarded-Proto": "https"}
    ok = sign_in(client, "viewer-a", PASSWORD, other)  # another client of the same proxy
    assert ok.status_code == 303
    assert "secure" in ok.headers["set-cookie"].lower()  # TLS at the proxy: Secure cookie
    assert audit(repo, "guess-0")[0][2] == {"source": "192.0.2.7"}


def test_secure_cookie_by_config(repo: Repository, db_url: str, world: World) -> None:
    plain = make_config(db_url)
    for secure in (False, True):
        config: ServerConfig = msgspec.structs.replace(
            plain, state_dir=str(world.firmware.state_dir), web=WebConfig(cookie_secure=secure)
        )
        with serve(create_app(config, repo, command_key=generate_private_key())) as client:
            # X-Forwarded-Proto from a peer that is no trusted proxy is not believed
            https = {"X-Forwarded-Proto": "https"}
            form = client.get("/login", headers=https)
            assert ("secure" in form.headers["set-cookie"].lower()) is secure
            if not secure:  # (a Secure cookie is not sent back over plain HTTP)
                ok = sign_in(client, "viewer-a", PASSWORD, https)
                assert ok.status_code == 303
                assert "secure" not in ok.headers["set-cookie"].lower()


def admin_session(client: httpx.Client) -> str:
    assert sign_in(client, "root", PASSWORD).status_code == 303
    return client.get("/users").text.split('name="csrf" value="')[1].split('"')[0]


def test_an_admin_unlocks_in_the_dashboard(served: Serve, repo: Repository) -> None:
    client = served()
    for _ in range(FREE):
        sign_in(client, "operator-a", WRONG)
    assert sign_in(client, "operator-a", PASSWORD).status_code == 429
    admin = httpx.Client(base_url=client.base_url)
    try:
        csrf = admin_session(admin)
        page = admin.get("/users")
        assert "operator-a" in page.text.split('id="locks"')[1]
        unlocked = admin.post(
            "/sign-in-locks/unlock", data={"csrf": csrf, "kind": "account", "name": "operator-a"}
        )
        assert unlocked.status_code == 303
        assert 'id="locks"' not in admin.get("/users").text
    finally:
        admin.close()
    assert sign_in(client, "operator-a", PASSWORD).status_code == 303
    assert ("session.unlock", "ok") in [(a, o) for a, o, _ in audit(repo, "operator-a")]


def test_an_agency_admin_unlocks_only_their_users(served: Serve, world: World) -> None:
    client = served()
    for _ in range(FREE):
        sign_in(client, "admin-b", WRONG)
    agency_a = httpx.Client(base_url=client.base_url)
    try:
        assert sign_in(agency_a, "admin-a", PASSWORD).status_code == 303
        page = agency_a.get("/users").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        assert 'id="locks"' not in page  # agency B's admin is not theirs to see
        refused = agency_a.post(
            "/sign-in-locks/unlock", data={"csrf": csrf, "kind": "account", "name": "admin-b"}
        )
        assert refused.status_code == 403
    finally:
        agency_a.close()


def test_the_cli_lists_and_unlocks(
    served: Serve, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = served()
    for _ in range(FREE):
        sign_in(client, "viewer-a", WRONG)
    assert sign_in(client, "viewer-a", PASSWORD).status_code == 429
    base = ["--config", str(tmp_path / "none.toml"), "--set", f"database.url={db_url}"]
    base += ["--set", f"state_dir={tmp_path}"]
    assert main([*base, "users", "locked"]) == 0
    listed = capsys.readouterr().out
    assert "account\tviewer-a\t3 failures" in listed
    assert "source\t127.0.0.1" not in listed  # 3 < SOURCE_FREE: counted, not locked
    assert main([*base, "users", "unlock", "viewer-a"]) == 0
    assert main([*base, "users", "unlock", "viewer-a"]) == 1  # nothing left to unlock
    assert sign_in(client, "viewer-a", PASSWORD).status_code == 303


def test_the_packaged_config_marks_cookies_secure() -> None:
    packaged = Path(__file__).resolve().parents[2] / "packaging" / "config" / "server.toml"
    assert load_config(packaged).web.cookie_secure
