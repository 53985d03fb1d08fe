"""Remediation plans: which settings to change on which cameras to close their findings, planned
(a dry run), approved, then run as a staged rollout of signed settings commands.

A plan is computed from the visible cameras' failing findings: each remediable finding code names
the settings that close it, each vendor the settings its API can write (both in
``protocol.remediation``). What cannot be done is listed with a reason code (the catalogue's
``remediation.reason.*``): the camera's agent is not online, its vendor is not supported, it was
not audited recently, a setting is not settable through that vendor's API (or is withheld with
a reason of its own, ``protocol.remediation.WITHHELD``: ``no_switch`` when that API switches
no such service at all and its port must be closed another way), a setting needs a value the
plan does not give, a finding is not remediable. Creating a plan stores it as
a rollout awaiting approval (``server.domain.rollouts``: canary, batches, failure threshold,
windows), with one item per camera; approving it starts the canary. Every step is in the audit
log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import Connection, insert, select

from protocol.commands import (
    SAFE_VALUES,
    BadParams,
    RemediateParams,
    RestoreParams,
    SettingName,
    SettingValue,
    check_setting_value,
)
from protocol.remediation import ON_REQUEST, ONVIF_SETTINGS, REMEDIES, VENDOR_SETTINGS, WITHHELD
from server.domain.rollouts import (
    Operation,
    RolloutDetail,
    RolloutView,
    escrow_key,
    operate,
    require_site_visible,
    rollout_detail,
    rollout_views,
    staged_policy,
)
from server.domain.scope import Area, Invalid, NotVisible, Scope
from server.firmware import campaign
from server.firmware.commands import SETTINGS_APPLY, SETTINGS_RESTORE, new_command
from server.storage import campaigns, read_then_write, remediation
from server.storage.commands import queue
from server.storage.firmware_models import RolloutTarget
from server.storage.models import Agent, Camera, Finding
from server.storage.remediation_models import RemediationItem

# why a camera gets nothing, and why a finding's setting is left out (catalogue codes)
CAMERA_REASONS: Final = (
    "agent_offline",
    "vendor_not_supported",
    "not_audited_recently",
    "nothing_settable",
)
SETTING_REASONS: Final = (
    "not_settable",
    "needs_value",
    "not_remediable",
    "on_request",
    *sorted({r for withheld in WITHHELD.values() for r in withheld.values()}),
)
MAX_CAMERAS: Final = 5000  # cameras one plan may reach
MAX_SKIPPED: Final = 50  # lines of "left out" kept per camera


@dataclass(frozen=True, slots=True)
class Selection:
    """Which cameras and findings a plan covers; every field narrows it."""

    org_id: int | None = None
    site: str | None = None
    agent_id: str | None = None
    camera_id: str | None = None
    code: str | None = None  # a finding code
    control: str | None = None  # controls or families, comma-separated: "SVC-02", "SVC,COM"
    vendor: str | None = None

    def wanted(self, controls: Sequence[str]) -> bool:
        """Whether a finding of ``controls`` is selected by ``control`` (any when unset)."""
        if self.control is None:
            return True
        return any(
            c == t or c.startswith(f"{t}-") for t in self.control.split(",") for c in controls
        )

    def names(self, controls: Sequence[str]) -> bool:
        """Whether ``control`` names one of ``controls`` itself (not only its family)."""
        return self.control is not None and not set(self.control.split(",")).isdisjoint(controls)

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class Options:
    ntp_server: str | None = None  # the time source ``log.time_manual`` is fixed with
    audited_within: timedelta = timedelta(days=7)  # older audits: plan nothing on that camera


@dataclass(frozen=True, slots=True)
class Skip:
    code: str  # the finding
    setting: str | None
    reason: str  # one of SETTING_REASONS


@dataclass(frozen=True, slots=True)
class PlanItem:
    agent_id: str
    camera_id: str
    site: str
    vendor: str | None
    model: str | None
    changes: dict[SettingName, SettingValue]
    findings: list[str]
    controls: list[str]
    skipped: list[Skip] = field(default_factory=list)
    reason: str | None = None  # set: the camera gets nothing (one of CAMERA_REASONS)

    @property
    def key(self) -> tuple[str, str]:
        return (self.agent_id, self.camera_id)


@dataclass(frozen=True, slots=True)
class Plan:
    selection: Selection
    items: list[PlanItem]

    @property
    def planned(self) -> list[PlanItem]:
        return [i for i in self.items if i.reason is None]

    @property
    def excluded(self) -> list[PlanItem]:
        return [i for i in self.items if i.reason is not None]


@dataclass(frozen=True, slots=True)
class ItemView:
    """A camera of a stored plan: what was planned, and what came back."""

    agent_id: str
    camera_id: str
    site: str
    vendor: str | None
    model: str | None
    state: str  # planned | excluded
    reason: str | None
    changes: dict[str, Any]
    skipped: list[dict[str, Any]]
    findings: list[str]
    controls: list[str]
    outcome: str | None
    outcome_reason: str | None
    results: dict[str, Any]  # setting -> {outcome, asked, got}
    reaudit: dict[str, Any]  # pass | fail | inconclusive -> controls
    sealed: bool  # the sealed snapshot of the settings before is on record
    rollback_status: str | None
    rollback_reason: str | None
    rollback_results: dict[str, Any]
    rollback_by: str | None

    @property
    def can_roll_back(self) -> bool:
        """Once, where the camera holds changed settings: a success, or a failure that left
        the applied ones in place (``not_applied``; a failed step was rolled back already)."""
        changed = self.outcome == "succeeded" or self.outcome_reason == "not_applied"
        return self.sealed and changed and self.rollback_status is None


@dataclass(frozen=True, slots=True)
class PlanDetail:
    rollout: RolloutDetail
    items: list[ItemView]


@dataclass(frozen=True, slots=True)
class Staging:
    """How the approved plan rolls out (the firmware campaigns' policy)."""

    canary_count: int = 1
    batch_size: int = 10
    max_parallel_per_site: int = 2
    failure_threshold: int = 1
    windows: Mapping[str, campaign.Window] = field(default_factory=dict)


def settings_params(
    plan_id: int, changes: Mapping[SettingName, SettingValue], controls: Sequence[str], escrow: Any
) -> dict[str, Any]:
    """The ``settings.apply`` params of one camera of a plan."""
    return RemediateParams(
        changes=changes,
        escrow_kid=escrow.thumbprint(),
        escrow_jwk=json.dumps(escrow.as_dict(private=False), sort_keys=True),
        plan_id=plan_id,
        controls=tuple(controls),
    ).to_params()


def _camera_changes(
    codes: Sequence[tuple[str, list[str]]], vendor: str | None, sel: Selection, options: Options
) -> tuple[dict[SettingName, SettingValue], list[str], list[str], list[Skip]]:
    """(changes, findings closed, their controls, left out) for one camera's failing findings."""
    settable = VENDOR_SETTINGS.get((vendor or "").lower(), frozenset()) | ONVIF_SETTINGS
    withheld = WITHHELD.get((vendor or "").lower(), {})
    changes: dict[SettingName, SettingValue] = {}
    closed: list[str] = []
    controls: set[str] = set()
    skipped: list[Skip] = []
    for code, ctrls in codes:
        remedy = REMEDIES.get(code)
        if remedy is None:
            skipped.append(Skip(code, None, "not_remediable"))
            continue
        if code in ON_REQUEST and sel.code != code and not sel.names(ctrls):
            skipped.append(Skip(code, None, "on_request"))
            continue
        wanted: dict[SettingName, SettingValue] = {}
        missing = []
        for setting in remedy:
            value = SAFE_VALUES.get(setting, getattr(options, setting, None))
            if setting not in settable:
                missing.append(Skip(code, setting, withheld.get(setting, "not_settable")))
            elif value is None:
                missing.append(Skip(code, setting, "needs_value"))
            else:
                wanted[setting] = value
        skipped += missing
        if not missing:  # a finding is closed by all of its settings or not touched
            changes |= wanted
            closed.append(code)
            controls.update(ctrls)
    return changes, closed, sorted(controls), skipped[:MAX_SKIPPED]


def _cut(text: str | None, column: Any) -> str | None:
    """``text`` cut to a text column's length: an identity is what the camera said, of any
    length in rows older collectors stored."""
    return None if text is None else text[: column.type.length]


def _checked(options: Options) -> Options:
    """``options`` whose values are valid settings values (``Invalid`` otherwise)."""
    if options.ntp_server is not None:
        try:
            check_setting_value("ntp_server", options.ntp_server)
        except BadParams as exc:
            raise Invalid(str(exc)) from exc
    return options


class Remediations(Area):
    """The remediation plans of a scope."""

    __slots__ = ("command_ttl",)

    def __init__(self, s: Scope, *, command_ttl: timedelta = timedelta(hours=2)) -> None:
        super().__init__(s)
        self.command_ttl = command_ttl

    # -- the dry run -------------------------------------------------------------------------

    def preview(self, selection: Selection, options: Options) -> Plan:
        """What a plan over ``selection`` would change, camera by camera; writes nothing."""
        with self.s.engine.connect() as conn:
            return self._plan(conn, selection, _checked(options))

    def _plan(self, conn: Connection, sel: Selection, options: Options) -> Plan:
        q = (
            select(
                Camera.agent_id,
                Camera.camera_id,
                Agent.site,
                Camera.identity,
                Camera.audit,
                Camera.audited_at,
                Agent.last_seen,
                Finding.code,
                Finding.controls,
            )
            .join(Agent, Agent.agent_id == Camera.agent_id)
            .join(
                Finding,
                (Finding.agent_id == Camera.agent_id) & (Finding.camera_id == Camera.camera_id),
            )
            .where(
                self.s.agent_visible(Camera.agent_id),
                Agent.status == "approved",
                Finding.status == "fail",
            )
            .order_by(Camera.agent_id, Camera.camera_id, Finding.code)
        )
        if sel.org_id is not None:
            org = self.s.org_row(conn, sel.org_id)
            q = q.where(Agent.site.in_(self.s.sites_under(org.path)))
        if sel.site is not None:
            require_site_visible(self.s, conn, sel.site)
            q = q.where(Agent.site == sel.site)
        if sel.agent_id is not None:
            self._require_agent_visible(conn, sel.agent_id)
            q = q.where(Camera.agent_id == sel.agent_id)
        if sel.camera_id is not None:
            q = q.where(Camera.camera_id == sel.camera_id)
        if sel.code is not None:
            q = q.where(Finding.code == sel.code)
        cameras: dict[tuple[str, str], list[Any]] = {}
        for r in conn.execute(q):
            if not sel.wanted(r.controls or []):
                continue
            vendor = str(r.identity.get("vendor") or "") or None
            if sel.vendor is not None and (vendor or "").lower() != sel.vendor.lower():
                continue
            key = (r.agent_id, r.camera_id)
            if key not in cameras and len(cameras) >= MAX_CAMERAS:
                raise Invalid(f"the selection reaches more than {MAX_CAMERAS} cameras: narrow it")
            cameras.setdefault(key, []).append(r)
        items = [self._item(rows, sel, options) for rows in cameras.values()]
        return Plan(sel, items)

    def _require_agent_visible(self, conn: Connection, agent_id: str) -> None:
        """Another agency's agent is not found, rather than "nothing to fix" on it."""
        found = conn.execute(
            select(Agent.agent_id).where(
                Agent.agent_id == agent_id, self.s.agent_visible(Agent.agent_id)
            )
        ).first()
        if found is None:
            raise NotVisible(f"agent {agent_id}")

    def _item(self, rows: list[Any], sel: Selection, options: Options) -> PlanItem:
        r = rows[0]
        vendor = str(r.identity.get("vendor") or "") or None
        model = str(r.identity.get("model") or "") or None
        codes = [(x.code, list(x.controls or [])) for x in rows]
        changes, closed, controls, skipped = _camera_changes(codes, vendor, sel, options)
        online = r.last_seen is not None and r.last_seen >= self.s.now - self.s.silent_after
        recent = (
            r.audit == "audited"
            and r.audited_at is not None
            and r.audited_at >= self.s.now - options.audited_within
        )
        reason = None
        if not online:
            reason = "agent_offline"
        elif not recent:
            reason = "not_audited_recently"
        elif not changes and (vendor or "").lower() not in VENDOR_SETTINGS:
            reason = "vendor_not_supported"  # and ONVIF alone closes none of its findings
        elif not changes:
            reason = "nothing_settable"
        if reason is not None:
            changes, closed = {}, []
            controls = sorted({c for _, cs in codes for c in cs})
        findings = closed or [c for c, _ in codes]
        return PlanItem(
            r.agent_id, r.camera_id, r.site, vendor, model, changes, findings, controls,
            skipped, reason,
        )  # fmt: skip

    # -- storing, approving, running -----------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        selection: Selection,
        options: Options,
        escrow_jwk: dict[str, Any],
        staging: Staging,
    ) -> PlanDetail:
        """Store the plan over ``selection`` as a rollout awaiting approval."""
        with self.s.action("remediation.plan", "remediation", name) as act:
            self.s.require("operator")
            escrow = escrow_key(escrow_jwk)
            with read_then_write(self.s.engine) as conn:
                plan = self._plan(conn, selection, _checked(options))
                planned = plan.planned
                if not planned:
                    raise Invalid("nothing in the selection can be fixed (see the dry run)")
                if selection.org_id is not None:
                    act.org_unit_id = self.s.org_row(conn, selection.org_id).id
                elif selection.site is not None:
                    act.org_unit_id = self.s.site_unit(conn, selection.site)
                else:
                    act.org_unit_id = self.s.p.org_unit_id
                policy = staged_policy(
                    len(planned),
                    canary_count=staging.canary_count,
                    canary_percent=None,
                    batch_size=staging.batch_size,
                    max_parallel_per_site=staging.max_parallel_per_site,
                    failure_threshold=staging.failure_threshold,
                    command_ttl=self.command_ttl,
                    windows=dict(staging.windows),
                )
                c = campaign.plan([(*i.key, i.site) for i in planned], policy, approved=False)
                plan_id = campaigns.insert_rollout(
                    conn,
                    name=name,
                    action=SETTINGS_APPLY,
                    image_id=None,
                    org_unit_id=act.org_unit_id,
                    selector=selection.as_json()
                    | ({"ntp_server": options.ntp_server} if options.ntp_server else {}),
                    policy=policy,
                    campaign=c,
                    created_by=self.s.p.username,
                    now=self.s.now,
                )
                by_key = {i.key: i for i in planned}
                conn.execute(
                    insert(RolloutTarget),
                    [
                        {
                            "rollout_id": plan_id,
                            "agent_id": t.agent_id,
                            "camera_id": t.camera_id,
                            "site": t.site,
                            "position": n,
                            "stage": t.stage,
                            "state": t.state,
                            "from_version": None,
                            "params": settings_params(
                                plan_id, by_key[t.key].changes, by_key[t.key].controls, escrow
                            ),
                            "updated_at": self.s.now,
                        }
                        for n, t in enumerate(c.targets)
                    ],
                )
                remediation.add_items(conn, [self._item_row(plan_id, i) for i in plan.items])
                detail = {
                    "targets": len(planned),
                    "excluded": len(plan.excluded),
                    "canary": policy.canary,
                    "stages": c.last_stage + 1,
                    "escrow_kid": escrow.thumbprint(),
                }
                campaigns.record(
                    conn, plan_id, (campaign.Event("plan", self.s.p.username, detail),), self.s.now
                )
                act.detail = detail | {"plan_id": plan_id, "selection": selection.as_json()}
        return self.plan(plan_id)

    def _item_row(self, plan_id: int, i: PlanItem) -> dict[str, Any]:
        return {
            "rollout_id": plan_id,
            "agent_id": i.agent_id,
            "camera_id": i.camera_id,
            "site": i.site,
            "vendor": _cut(i.vendor, RemediationItem.vendor),
            "model": _cut(i.model, RemediationItem.model),
            "state": "excluded" if i.reason else "planned",
            "reason": i.reason,
            "changes": dict(i.changes),
            "skipped": [
                {"code": k.code, "setting": k.setting, "reason": k.reason} for k in i.skipped
            ],
            "findings": list(i.findings),
            "controls": list(i.controls),
            "results": {},
            "reaudit": {},
            "rollback_results": {},
            "updated_at": self.s.now,
        }

    def act(self, plan_id: int, action: Operation) -> PlanDetail:
        """approve (starts the canary), promote, halt (also: reject a plan), resume."""
        self.plan(plan_id)  # visible, and a remediation plan
        operate(self.s, "remediation", plan_id, action)
        return self.plan(plan_id)

    def rollback(self, plan_id: int, agent_id: str, camera_id: str) -> str:
        """Queue the signed restore of a camera to its snapshot; returns the command id."""
        where = f"{plan_id}/{agent_id}/{camera_id}"
        with self.s.action("remediation.rollback", "remediation", where) as act:
            self.s.require("operator")
            item = next(
                (
                    i
                    for i in self.plan(plan_id).items
                    if (i.agent_id, i.camera_id) == (agent_id, camera_id)
                ),
                None,
            )
            if item is None:
                raise NotVisible(f"camera {agent_id}/{camera_id} in plan {plan_id}")
            if not item.can_roll_back:
                raise Invalid("only a camera whose change succeeded can be rolled back, once")
            with read_then_write(self.s.engine) as conn:
                act.org_unit_id = self.s.site_unit(conn, item.site)
                original = conn.execute(
                    select(RolloutTarget.command_id).where(
                        RolloutTarget.rollout_id == plan_id,
                        RolloutTarget.agent_id == agent_id,
                        RolloutTarget.camera_id == camera_id,
                    )
                ).scalar_one()
                if original is None:  # a change that succeeded was sent: a broken record
                    raise Invalid("the change of this camera has no command on record")
                cmd = new_command(
                    SETTINGS_RESTORE,
                    agent_id=agent_id,
                    site=item.site,
                    camera_id=camera_id,
                    params=RestoreParams(original=original, plan_id=plan_id).to_params(),
                    now=self.s.now,
                    ttl=self.command_ttl,
                )
                queue(conn, cmd, issued_by=self.s.p.username, rollout_id=None, now=self.s.now)
                remediation.set_rollback(
                    conn,
                    plan_id,
                    (agent_id, camera_id),
                    cmd.command_id,
                    by=self.s.p.username,
                    now=self.s.now,
                )
            act.detail = {"command_id": cmd.command_id, "restores": original}
        return cmd.command_id

    # -- reading -----------------------------------------------------------------------------

    def plans(self) -> list[RolloutView]:
        return rollout_views(self.s, SETTINGS_APPLY)

    def plan(self, plan_id: int) -> PlanDetail:
        detail = rollout_detail(self.s, SETTINGS_APPLY, plan_id)
        with self.s.engine.connect() as conn:
            rows = conn.execute(
                select(RemediationItem.__table__)
                .where(RemediationItem.rollout_id == plan_id)
                .order_by(
                    RemediationItem.state.desc(),
                    RemediationItem.agent_id,
                    RemediationItem.camera_id,
                )
            ).all()
        items = [
            ItemView(
                r.agent_id, r.camera_id, r.site, r.vendor, r.model, r.state, r.reason,
                r.changes, r.skipped, r.findings, r.controls, r.outcome, r.outcome_reason,
                r.results, r.reaudit, r.sealed is not None, r.rollback_status,
                r.rollback_reason, r.rollback_results, r.rollback_by,
            )
            for r in rows
        ]  # fmt: skip
        return PlanDetail(detail, items)
