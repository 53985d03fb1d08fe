"""The scope of a request: the ONE place where tenancy and roles are enforced.

A ``Scope`` is built per request (or per command) from the authenticated ``Principal``; the area
modules beside this one (``orgs``, ``fleet``, ``cameras``, ``findings``, ``users``, ``alerts``,
``reports``, ...) take it as their first argument. Every read restricts rows to the principal's
organisation subtree (agents and cameras through the site their agent enrolled with); every
lookup by id of something outside it raises ``NotVisible`` (shown as 404, so ids of other
tenants are not even confirmed); every action checks the role first (``Forbidden``, 403) and is
written to the audit log with its outcome (``Scope.action``). Routes never touch tables.

ScopeError
 +-- NotVisible     unknown, or outside the principal's subtree
 +-- Forbidden      the principal's role does not allow the action
 +-- Invalid        well-formed, but cannot be applied (wrong parent kind, duplicate name...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Row, Select, insert, select, true

from server.storage import Repository, read_then_write
from server.storage.models import Agent
from server.storage.org_models import ROLES, AuditEntry, OrgUnit

Role = Literal["viewer", "operator", "admin"]


class ScopeError(Exception):
    pass


class NotVisible(ScopeError):
    """Unknown, or outside the principal's subtree (the two are indistinguishable on purpose)."""


class Forbidden(ScopeError):
    """The principal's role does not allow the action."""


class Invalid(ScopeError):
    """The request is well-formed but cannot be applied (wrong parent kind, duplicate name...)."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: str
    org_unit_id: int | None
    org_path: str | None  # None: the whole fleet, unmapped sites included
    lang: str | None
    csrf: str | None = None  # set for session logins; None for API tokens

    def has(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


# the command line: a whole-fleet administrator named ``cli``, checked and audited as the web is
CLI = Principal(0, "cli", "admin", None, None, None)


class Paged:
    """``pages`` of a paged list: at least one, so that an empty list shows page 1 of 1."""

    __slots__ = ()
    total: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(slots=True)
class Act:
    """What an action records in the audit log besides its outcome."""

    org_unit_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Scope:
    def __init__(
        self, repo: Repository, principal: Principal, *, silent_after: timedelta, now: datetime
    ) -> None:
        self.repo = repo
        self.engine = repo.engine
        self.p = principal
        self.silent_after = silent_after
        self.now = now

    @property
    def today(self) -> date:
        return self.now.astimezone(UTC).date()

    # -- the scope predicates: every area builds on these ----------------------------------

    def org_visible(self) -> ColumnElement[bool]:
        return true() if self.p.org_path is None else OrgUnit.path.startswith(self.p.org_path)

    def sites_under(self, path: str | None) -> Select[Any]:
        q = select(OrgUnit.site).where(OrgUnit.kind == "site")
        return q if path is None else q.where(OrgUnit.path.startswith(path))

    def agent_visible(self, column: Any = Agent.agent_id) -> ColumnElement[bool]:
        if self.p.org_path is None:
            return true()
        agents = select(Agent.agent_id).where(Agent.site.in_(self.sites_under(self.p.org_path)))
        return column.in_(agents)  # type: ignore[no-any-return]

    def site_visible(self, column: Any) -> ColumnElement[bool]:
        if self.p.org_path is None:
            return true()
        return column.in_(self.sites_under(self.p.org_path))  # type: ignore[no-any-return]

    def unit_visible(self, column: Any) -> ColumnElement[bool]:
        """Rows whose organisation unit (``column``) is in scope; rows without one (whole-fleet
        users, routes, rollouts) only for whole-fleet principals."""
        if self.p.org_path is None:
            return true()
        return column.in_(select(OrgUnit.id).where(self.org_visible()))  # type: ignore[no-any-return]

    def org_row(self, conn: Connection, org_id: int) -> Row[Any]:
        """The organisation unit ``org_id``, or ``NotVisible`` when it is not in scope."""
        org = conn.execute(
            select(OrgUnit.__table__).where(OrgUnit.id == org_id, self.org_visible())
        ).one_or_none()
        if org is None:
            raise NotVisible(f"organisation unit {org_id}")
        return org

    def site_unit(self, conn: Connection, site: str) -> int | None:
        """The organisation unit of an agents' site (None: not in the tree); for the audit log."""
        return conn.execute(select(OrgUnit.id).where(OrgUnit.site == site)).scalar()

    def require(self, role: Role) -> None:
        if not self.p.has(role):
            raise Forbidden(f"needs the {role} role")

    def require_whole_fleet(self) -> None:
        if self.p.org_path is not None:
            raise Forbidden("only administrators of the whole fleet may change this")

    # -- audit -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def action(self, action: str, target_type: str, target_id: object) -> Iterator[Act]:
        """Run an action and write it to the audit log with its outcome (ok, denied, failed)."""
        act = Act()
        outcome = "ok"
        try:
            yield act
        except (Forbidden, NotVisible):
            outcome = "denied"
            raise
        except Exception:
            outcome = "failed"
            raise
        finally:
            with read_then_write(self.engine) as conn:
                conn.execute(
                    insert(AuditEntry).values(
                        at=self.now,
                        user_id=self.p.user_id,
                        username=self.p.username,
                        action=action,
                        target_type=target_type,
                        target_id=str(target_id)[:128],
                        org_unit_id=act.org_unit_id,
                        outcome=outcome,
                        detail=act.detail,
                    )
                )


class Area:
    """The queries and actions of one area (orgs, cameras, users...) through one scope: the area
    modules subclass it, so that ``Orgs(scope).org_tree()`` reads what the scope may see."""

    __slots__ = ("s",)

    def __init__(self, s: Scope) -> None:
        self.s = s
