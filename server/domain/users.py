"""Users, their passwords, sign-in locks and sessions, and each principal's own API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, update

from server.domain.scope import CLI, Area, Invalid, NotVisible
from server.domain.security import hash_password, new_secret, secret_hash
from server.domain.throttle import Lock, SignInThrottle
from server.storage import read_then_write
from server.storage.errors import Conflict, translate
from server.storage.org_models import ROLES, ApiToken, User, WebSession


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    username: str
    role: str
    org_unit_id: int | None
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def _end_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(delete(WebSession).where(WebSession.user_id == user_id))


class Users(Area):
    """Users and the principal's own tokens, through a scope."""

    __slots__ = ()

    def users(self) -> list[UserView]:
        self.s.require("admin")
        with self.s.engine.connect() as conn:
            return [
                UserView(u.id, u.username, u.role, u.org_unit_id, u.disabled, u.created_at)
                for u in conn.execute(
                    select(User.__table__)
                    .where(self.s.unit_visible(User.org_unit_id))
                    .order_by(User.username)
                ).all()
            ]

    def user(self, user_id: int) -> UserView:
        found = [u for u in self.users() if u.id == user_id]
        if not found:
            raise NotVisible(f"user {user_id}")
        return found[0]

    def create_user(
        self, username: str, password: str, role: str, org_unit_id: int | None
    ) -> UserView:
        with self.s.action("user.create", "user", username) as act:
            self.s.require("admin")
            if role not in ROLES:
                raise Invalid(f"unknown role {role!r}")
            with read_then_write(self.s.engine) as conn:
                if org_unit_id is None:
                    self.s.require_whole_fleet()
                else:
                    self.s.org_row(conn, org_unit_id)
                act.org_unit_id = org_unit_id
                act.detail = {"role": role, "org_unit_id": org_unit_id}
                try:
                    with translate():
                        new_id = conn.execute(
                            insert(User)
                            .values(
                                username=username,
                                password_hash=hash_password(password),
                                role=role,
                                org_unit_id=org_unit_id,
                                disabled=False,
                                created_at=self.s.now,
                                password_changed_at=self.s.now,
                            )
                            .returning(User.id)
                        ).scalar_one()
                except Conflict as exc:
                    raise Invalid(f"user {username} exists") from exc
        return self.user(new_id)

    def set_user_disabled(self, user_id: int, disabled: bool) -> UserView:
        with self.s.action("user.disable" if disabled else "user.enable", "user", user_id) as act:
            target = self.user(user_id)
            act.org_unit_id = target.org_unit_id
            if user_id == self.s.p.user_id:
                raise Invalid("you cannot disable yourself")
            with read_then_write(self.s.engine) as conn:
                conn.execute(update(User).where(User.id == user_id).values(disabled=disabled))
                if disabled:
                    _end_sessions(conn, user_id)
        return self.user(user_id)

    def set_password(self, user_id: int, password: str) -> None:
        with self.s.action("user.password", "user", user_id) as act:
            if user_id != self.s.p.user_id:
                act.org_unit_id = self.user(user_id).org_unit_id
            with read_then_write(self.s.engine) as conn:
                conn.execute(
                    update(User)
                    .where(User.id == user_id)
                    .values(password_hash=hash_password(password), password_changed_at=self.s.now)
                )
                _end_sessions(conn, user_id)

    def sign_in_locks(self) -> list[Lock]:
        """Accounts and source addresses locked after failed sign-ins (server.domain.throttle):
        all for the whole fleet's admins; an agency's admins see their own users' accounts."""
        self.s.require("admin")
        with self.s.engine.connect() as conn:
            locks = SignInThrottle.locks(conn, self.s.now)
        if self.s.p.org_path is None:
            return locks
        mine = {u.username for u in self.users()}
        return [lock for lock in locks if lock.kind == "account" and lock.name in mine]

    def unlock_sign_in(self, kind: Literal["account", "source"], name: str) -> None:
        """Forget an account's or a source's failed sign-ins, ending its lock (audited)."""
        with self.s.action("session.unlock", kind, name) as act:
            self.s.require("admin")
            by_name = {u.username: u for u in self.users()}
            if kind == "account" and name in by_name:
                act.org_unit_id = by_name[name].org_unit_id
            else:  # a source address, or an account name that no user has
                self.s.require_whole_fleet()
            with read_then_write(self.s.engine) as conn:
                if kind == "account":
                    found = SignInThrottle.unlock(conn, username=name)
                else:
                    found = SignInThrottle.unlock(conn, source=name)
            if not found:
                raise NotVisible(f"no failed sign-ins of {kind} {name}")

    def set_language(self, lang: str) -> None:
        with read_then_write(self.s.engine) as conn:
            conn.execute(update(User).where(User.id == self.s.p.user_id).values(lang=lang))

    def tokens(self) -> list[TokenView]:
        with self.s.engine.connect() as conn:
            return [
                TokenView(
                    t.id, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at is not None
                )
                for t in conn.execute(
                    select(ApiToken.__table__)
                    .where(ApiToken.user_id == self.s.p.user_id)
                    .order_by(ApiToken.id)
                ).all()
            ]

    def create_token(self, name: str) -> tuple[TokenView, str]:
        """A new API token for the principal itself; the secret is returned once, never stored.
        The command line is no account: a token it made would act as no one."""
        if self.s.p.user_id == CLI.user_id:
            raise Invalid("a token acts as its user: sign in as the user who will hold it")
        with self.s.action("token.create", "token", name) as act:
            act.org_unit_id = self.s.p.org_unit_id
            secret = "cwt_" + new_secret()
            with read_then_write(self.s.engine) as conn:
                token_id = conn.execute(
                    insert(ApiToken)
                    .values(
                        user_id=self.s.p.user_id,
                        name=name,
                        token_hash=secret_hash(secret),
                        prefix=secret[:12],
                        created_at=self.s.now,
                    )
                    .returning(ApiToken.id)
                ).scalar_one()
            act.detail = {"id": token_id}
        return next(t for t in self.tokens() if t.id == token_id), secret

    def revoke_token(self, token_id: int) -> TokenView:
        with self.s.action("token.revoke", "token", token_id) as act:
            act.org_unit_id = self.s.p.org_unit_id
            with read_then_write(self.s.engine) as conn:
                done = conn.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.id == token_id,
                        ApiToken.user_id == self.s.p.user_id,
                        ApiToken.revoked_at.is_(None),
                    )
                    .values(revoked_at=self.s.now)
                ).rowcount
            if not done:
                raise NotVisible(f"token {token_id}")
        return next(t for t in self.tokens() if t.id == token_id)
