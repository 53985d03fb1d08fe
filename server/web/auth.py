"""Authentication: local users (argon2id), server-side sessions with CSRF tokens, API tokens.

The session cookie holds a random id; the database stores its SHA-256 with the user, the expiry
and the session's CSRF token, so logout, disabling a user and a password change end sessions at
once. API tokens (``Authorization: Bearer cwt_...``) are stored as SHA-256 too and need no CSRF
token (browsers never send them on their own).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from server.config import WebConfig
from server.domain.scope import Principal
from server.storage import Repository
from server.storage.org_models import ApiToken, AuditEntry, OrgUnit, User, WebSession
from server.web.security import needs_rehash, new_secret, rehash, secret_hash, verify_password
from server.web.throttle import SignInThrottle, Throttled


class Authenticator:
    def __init__(self, repo: Repository, config: WebConfig) -> None:
        self.engine = repo.engine
        self.config = config
        self.throttle = SignInThrottle(repo.engine, config)

    def _principal(self, user_id: int, csrf: str | None) -> Principal | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(User.__table__, OrgUnit.path)
                .outerjoin(OrgUnit, OrgUnit.id == User.org_unit_id)
                .where(User.id == user_id, User.disabled.is_(False))
            ).first()
        if row is None:
            return None
        return Principal(row.id, row.username, row.role, row.org_unit_id, row.path, row.lang, csrf)

    def login(
        self, username: str, password: str, now: datetime, source: str | None = None
    ) -> tuple[str, Principal] | None:
        """A new session id (for the cookie) and its principal, or None; audited either way.

        Raises ``Throttled`` (audited, the password unchecked) while the account or the source
        address is locked after repeated failures (``server.web.throttle``).
        """
        with self.engine.connect() as conn:
            user = conn.execute(
                select(User.__table__).where(User.username == username)
            ).one_or_none()
        entry = {
            "at": now,
            "user_id": user.id if user else None,
            "username": username[:64],
            "action": "session.login",
            "target_type": "user",
            "target_id": username[:128],
            "org_unit_id": user.org_unit_id if user else None,
        }
        detail: dict[str, object] = {"source": source} if source else {}
        try:
            self.throttle.check(username, source, now)
        except Throttled as exc:
            detail["retry_after_s"] = round(exc.retry_after_s)
            with self.engine.begin() as conn:
                conn.execute(
                    insert(AuditEntry).values({**entry, "outcome": "throttled", "detail": detail})
                )
            raise
        ok = verify_password(user.password_hash if user else None, password)
        ok = ok and user is not None and not user.disabled
        session_id = new_secret()
        with self.engine.begin() as conn:
            if ok:
                self.throttle.succeeded(conn, username)
            elif locked_s := self.throttle.failed(conn, username, source, now):
                detail["locked_s"] = locked_s
            conn.execute(
                insert(AuditEntry).values(
                    {**entry, "outcome": "ok" if ok else "denied", "detail": detail}
                )
            )
            if not ok or user is None:
                return None
            if needs_rehash(user.password_hash):
                conn.execute(
                    update(User).where(User.id == user.id).values(password_hash=rehash(password))
                )
            conn.execute(delete(WebSession).where(WebSession.expires_at < now))
            conn.execute(
                insert(WebSession).values(
                    id_hash=secret_hash(session_id),
                    user_id=user.id,
                    csrf=new_secret(),
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.config.session_ttl_s),
                )
            )
        principal = self.from_session(session_id, now)
        if principal is None:  # just created: only a user disabled in between has none
            return None
        return session_id, principal

    def from_session(self, session_id: str, now: datetime) -> Principal | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(WebSession.user_id, WebSession.csrf).where(
                    WebSession.id_hash == secret_hash(session_id), WebSession.expires_at > now
                )
            ).first()
        return self._principal(row.user_id, row.csrf) if row else None

    def logout(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(WebSession).where(WebSession.id_hash == secret_hash(session_id)))

    def from_token(self, token: str, now: datetime) -> Principal | None:
        with self.engine.begin() as conn:
            user_id = conn.execute(
                update(ApiToken)
                .where(ApiToken.token_hash == secret_hash(token), ApiToken.revoked_at.is_(None))
                .values(last_used_at=now)
                .returning(ApiToken.user_id)
            ).scalar()
        return self._principal(user_id, None) if user_id is not None else None
