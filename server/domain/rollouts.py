"""Firmware campaigns (rollouts) and signed commands of a scope (``server.domain.scope``).

Cameras are selected only inside the principal's organisation subtree, every action checks the
role first and is written to the audit log with its outcome. Campaigns and password rotations
take an operator, downgrades an administrator (whose name travels in the command as
``downgrade_approved_by``); the catalogue they use is ``server.domain.firmware``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import Connection, insert, select

from protocol.commands import RotateParams
from server.domain.cameras import Cameras
from server.domain.firmware import FirmwareImages, version_key
from server.domain.scope import Area, Invalid, NotVisible, Scope
from server.firmware import campaign
from server.firmware.commands import FIRMWARE_APPLY, PASSWORD_ROTATE, new_command
from server.firmware.tuf_repo import TufRepository
from server.storage import campaigns, read_then_write
from server.storage.commands import queue
from server.storage.firmware_models import (
    CommandRecord,
    FirmwareImage,
    Rollout,
    RolloutEvent,
    RolloutTarget,
)
from server.storage.models import Agent, Camera
from server.storage.org_models import OrgUnit

Operation = Literal["approve", "promote", "halt", "resume"]
_OPERATIONS: Final = {
    "approve": campaign.approve,
    "promote": campaign.promote,
    "halt": campaign.halt,
    "resume": campaign.resume,
}


@dataclass(frozen=True, slots=True)
class Selector:
    org_id: int | None = None
    site: str | None = None
    model: str | None = None
    firmware: str | None = None  # the cameras' current firmware version


@dataclass(frozen=True, slots=True)
class RolloutView:
    id: int
    name: str
    image_id: int | None  # None: a rollout of another action than firmware
    version: str | None
    target_path: str | None
    phase: str
    stage: int
    stages: int
    failures: int
    failure_threshold: int
    total: int
    pending: int
    in_flight: int
    succeeded: int
    failed: int
    downgrade_approved_by: str | None
    created_by: str
    created_at: datetime

    @property
    def percent_done(self) -> int:
        return (100 * (self.succeeded + self.failed)) // max(self.total, 1)


@dataclass(frozen=True, slots=True)
class TargetView:
    agent_id: str
    camera_id: str
    site: str
    stage: int
    state: str
    step: str | None
    from_version: str | None
    command_id: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class EventView:
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RolloutDetail:
    rollout: RolloutView
    policy: dict[str, Any]
    selector: dict[str, Any]
    targets: list[TargetView]
    events: list[EventView]


def escrow_key(jwk: dict[str, Any]) -> OKPKey:
    """The escrow public key: X25519 only, and never a private key."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "X25519" or "d" in jwk:
        raise Invalid("the escrow key must be an X25519 public JWK")
    try:
        return OKPKey.import_key(jwk)
    except (JoseError, ValueError) as exc:
        raise Invalid(f"the escrow key is not a valid JWK: {exc}") from exc


def rollout_views(s: Scope, action: str, rollout_id: int | None = None) -> list[RolloutView]:
    """The visible rollouts of one command action, newest first, with their targets' tallies."""
    q = (
        select(Rollout.__table__, FirmwareImage.version, FirmwareImage.target_path)
        .outerjoin(FirmwareImage, FirmwareImage.id == Rollout.image_id)
        .where(s.unit_visible(Rollout.org_unit_id), Rollout.action == action)
        .order_by(Rollout.id.desc())
    )
    if rollout_id is not None:
        q = q.where(Rollout.id == rollout_id)
    with s.engine.connect() as conn:
        rows = conn.execute(q).all()
        tallies: dict[int, Counter[str]] = {r.id: Counter() for r in rows}
        stages: dict[int, int] = {}
        if rows:
            for t in conn.execute(
                select(RolloutTarget.rollout_id, RolloutTarget.state, RolloutTarget.stage).where(
                    RolloutTarget.rollout_id.in_(list(tallies))
                )
            ):
                tallies[t.rollout_id][t.state] += 1
                stages[t.rollout_id] = max(stages.get(t.rollout_id, 0), t.stage)
    return [
        RolloutView(
            r.id, r.name, r.image_id, r.version, r.target_path, r.phase, r.stage,
            stages.get(r.id, 0) + 1, r.failures, r.policy["failure_threshold"],
            sum(tallies[r.id].values()), tallies[r.id]["pending"],
            tallies[r.id]["in_flight"], tallies[r.id]["succeeded"], tallies[r.id]["failed"],
            r.downgrade_approved_by, r.created_by, r.created_at,
        )
        for r in rows
    ]  # fmt: skip


def rollout_detail(s: Scope, action: str, rollout_id: int) -> RolloutDetail:
    found = rollout_views(s, action, rollout_id)
    if not found:
        raise NotVisible(f"rollout {rollout_id}")
    with s.engine.connect() as conn:
        row = conn.execute(select(Rollout.__table__).where(Rollout.id == rollout_id)).one()
        targets = [
            TargetView(
                t.agent_id, t.camera_id, t.site, t.stage, t.state, t.step,
                t.from_version, t.command_id, t.reason,
            )
            for t in conn.execute(
                select(RolloutTarget.__table__)
                .where(RolloutTarget.rollout_id == rollout_id)
                .order_by(RolloutTarget.position)
            )
        ]  # fmt: skip
        events = [
            EventView(e.at, e.actor, e.action, e.detail)
            for e in conn.execute(
                select(RolloutEvent.__table__)
                .where(RolloutEvent.rollout_id == rollout_id)
                .order_by(RolloutEvent.id)
            )
        ]
    return RolloutDetail(found[0], row.policy, row.selector, targets, events)


def staged_policy(
    targets: int,
    *,
    canary_count: int | None,
    canary_percent: float | None,
    batch_size: int,
    max_parallel_per_site: int,
    failure_threshold: int,
    command_ttl: timedelta,
    windows: Mapping[str, campaign.Window],
) -> campaign.Policy:
    """The staging of a rollout over ``targets`` cameras (firmware or a remediation plan);
    ``Invalid`` for a value the campaign refuses."""
    try:
        return campaign.Policy(
            canary=campaign.canary_size(targets, canary_count, canary_percent),
            batch_size=batch_size,
            max_parallel_per_site=max_parallel_per_site,
            failure_threshold=failure_threshold,
            command_ttl=command_ttl,
            windows=windows,
        )
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


def require_site_visible(s: Scope, conn: Connection, site: str) -> None:
    """A site outside the caller's subtree is not found, like any object of another agency
    (not "no camera matches", which would confirm that it exists)."""
    if s.p.org_path is None:
        return  # the whole fleet, unmapped sites included
    if conn.execute(s.sites_under(s.p.org_path).where(OrgUnit.site == site)).first():
        return
    raise NotVisible(f"site {site}")


def operate(s: Scope, noun: str, rollout_id: int, action: Operation) -> None:
    """An operator's step on a visible rollout of any action (approve a plan, promote the
    canary, halt, resume), through the campaign state machine, audited as ``<noun>.<action>``."""
    with s.action(f"{noun}.{action}", noun, rollout_id) as act:
        s.require("operator")
        with s.engine.connect() as conn:
            row = conn.execute(
                select(Rollout.org_unit_id, Rollout.phase).where(
                    Rollout.id == rollout_id, s.unit_visible(Rollout.org_unit_id)
                )
            ).one_or_none()
        if row is None:
            raise NotVisible(f"{noun} {rollout_id}")
        act.org_unit_id = row.org_unit_id
        act.detail = {"from": row.phase}
        with campaigns.LOCK, read_then_write(s.engine) as conn:
            loaded = campaigns.load_existing(conn, rollout_id)  # visible above
            try:
                step = _OPERATIONS[action](loaded.campaign, s.p.username)
            except campaign.NotAllowed as exc:
                raise Invalid(str(exc)) from exc
            campaigns.save(conn, rollout_id, loaded.campaign, step, s.now)
        act.detail["to"] = step.campaign.phase


class Rollouts(Area):
    """The firmware campaigns and signed commands of a scope."""

    __slots__ = ("command_ttl", "tuf")

    def __init__(
        self, s: Scope, tuf: TufRepository, *, command_ttl: timedelta = timedelta(hours=2)
    ) -> None:
        super().__init__(s)
        self.tuf = tuf
        self.command_ttl = command_ttl

    def rollouts(self, rollout_id: int | None = None) -> list[RolloutView]:
        return rollout_views(self.s, FIRMWARE_APPLY, rollout_id)

    def rollout(self, rollout_id: int) -> RolloutDetail:
        return rollout_detail(self.s, FIRMWARE_APPLY, rollout_id)

    def _candidates(
        self, conn: Connection, image: Any, sel: Selector
    ) -> list[tuple[str, str, str, str | None]]:
        """Visible cameras of approved agents that the image fits: (agent, camera, site, fw)."""
        q = (
            select(Camera.agent_id, Camera.camera_id, Agent.site, Camera.identity)
            .join(Agent, Agent.agent_id == Camera.agent_id)
            .where(self.s.agent_visible(Camera.agent_id), Agent.status == "approved")
            .order_by(Camera.agent_id, Camera.camera_id)
        )
        if sel.org_id is not None:
            org = self.s.org_row(conn, sel.org_id)
            q = q.where(Agent.site.in_(self.s.sites_under(org.path)))
        if sel.site is not None:
            q = q.where(Agent.site == sel.site)
        fits = {m.lower() for m in image.models}
        found = []
        for r in conn.execute(q):
            model = str(r.identity.get("model") or "")
            vendor = str(r.identity.get("vendor") or "")
            firmware = r.identity.get("firmware")
            if model.lower() not in fits or (vendor and vendor.lower() != image.vendor.lower()):
                continue
            if sel.model is not None and model != sel.model:
                continue
            if sel.firmware is not None and firmware != sel.firmware:
                continue
            found.append((r.agent_id, r.camera_id, r.site, firmware))
        return found

    def create_rollout(
        self,
        *,
        name: str,
        image_id: int,
        selector: Selector,
        canary_count: int | None,
        canary_percent: float | None,
        batch_size: int,
        max_parallel_per_site: int,
        failure_threshold: int,
        windows: dict[str, campaign.Window],
        allow_downgrade: bool = False,
    ) -> RolloutDetail:
        with self.s.action("rollout.create", "rollout", name) as act:
            self.s.require("operator")
            if allow_downgrade:
                self.s.require("admin")
            image = FirmwareImages(self.s, self.tuf).image(image_id)
            act.detail = {"image_id": image_id, "version": image.version, "downgrade": False}
            if image.retired_at is not None or not image.published:
                raise Invalid("only published images that are not retired can be rolled out")
            with read_then_write(self.s.engine) as conn:
                if selector.org_id is not None:
                    act.org_unit_id = self.s.org_row(conn, selector.org_id).id
                elif selector.site is not None:
                    require_site_visible(self.s, conn, selector.site)
                    act.org_unit_id = self.s.site_unit(conn, selector.site)
                else:
                    act.org_unit_id = self.s.p.org_unit_id
                row = conn.execute(
                    select(FirmwareImage.__table__).where(FirmwareImage.id == image_id)
                ).one()
                wanted = version_key(image.version)
                chosen: list[tuple[str, str, str, str | None]] = []
                downgrades = 0
                for cam in self._candidates(conn, row, selector):
                    current = version_key(cam[3] or "")
                    if current == wanted:
                        continue  # already there
                    if current > wanted:
                        if not allow_downgrade:
                            continue
                        downgrades += 1
                    chosen.append(cam)
                if not chosen:
                    raise Invalid("no camera in scope matches the selection and needs this image")
                policy = staged_policy(
                    len(chosen),
                    canary_count=canary_count,
                    canary_percent=canary_percent,
                    batch_size=batch_size,
                    max_parallel_per_site=max_parallel_per_site,
                    failure_threshold=failure_threshold,
                    command_ttl=self.command_ttl,
                    windows=windows,
                )
                plan = campaign.plan([c[:3] for c in chosen], policy)
                approver = self.s.p.username if downgrades else None
                act.detail["downgrade"] = bool(downgrades)
                rollout_id = campaigns.insert_rollout(
                    conn,
                    name=name,
                    action=FIRMWARE_APPLY,
                    image_id=image_id,
                    org_unit_id=act.org_unit_id,
                    selector={
                        "org_id": selector.org_id,
                        "site": selector.site,
                        "model": selector.model,
                        "firmware": selector.firmware,
                    },
                    policy=policy,
                    campaign=plan,
                    created_by=self.s.p.username,
                    now=self.s.now,
                    downgrade_approved_by=approver,
                )
                versions = {(c[0], c[1]): c[3] for c in chosen}
                conn.execute(
                    insert(RolloutTarget),
                    [
                        {
                            "rollout_id": rollout_id,
                            "agent_id": t.agent_id,
                            "camera_id": t.camera_id,
                            "site": t.site,
                            "position": i,
                            "stage": t.stage,
                            "state": t.state,
                            "from_version": versions[t.key],
                            "updated_at": self.s.now,
                        }
                        for i, t in enumerate(plan.targets)
                    ],
                )
                detail = {
                    "targets": len(plan.targets),
                    "canary": policy.canary,
                    "stages": plan.last_stage + 1,
                    "downgrades": downgrades,
                }
                campaigns.record(
                    conn,
                    rollout_id,
                    (campaign.Event("create", self.s.p.username, detail),),
                    self.s.now,
                )
                if approver:
                    campaigns.record(
                        conn,
                        rollout_id,
                        (campaign.Event("approve_downgrade", approver, {"n": downgrades}),),
                        self.s.now,
                    )
                act.detail.update(detail, rollout_id=rollout_id)
        return self.rollout(rollout_id)

    def act(self, rollout_id: int, action: Literal["promote", "halt", "resume"]) -> RolloutDetail:
        self.rollout(rollout_id)  # a firmware rollout (a remediation plan has its own routes)
        operate(self.s, "rollout", rollout_id, action)
        return self.rollout(rollout_id)

    def rotate_password(
        self, agent_id: str, camera_id: str, escrow_jwk: dict[str, Any], username: str
    ) -> str:
        """Queue a signed ``password.rotate`` command; returns its command id."""
        with self.s.action("camera.password_rotate", "camera", f"{agent_id}/{camera_id}") as act:
            self.s.require("operator")
            cam = Cameras(self.s).camera(agent_id, camera_id)
            escrow = escrow_key(escrow_jwk)
            with read_then_write(self.s.engine) as conn:
                act.org_unit_id = self.s.site_unit(conn, cam.site)
                cmd = new_command(
                    PASSWORD_ROTATE,
                    agent_id=agent_id,
                    site=cam.site,
                    camera_id=camera_id,
                    params=RotateParams(
                        escrow_kid=escrow.thumbprint(),
                        escrow_jwk=json.dumps(escrow.as_dict(private=False), sort_keys=True),
                        username=username,
                        min_length=20,
                    ).to_params(),
                    now=self.s.now,
                    ttl=self.command_ttl,
                )
                queue(conn, cmd, issued_by=self.s.p.username, rollout_id=None, now=self.s.now)
            act.detail = {"command_id": cmd.command_id, "escrow_kid": escrow.thumbprint()}
        return cmd.command_id

    def command(self, command_id: str) -> dict[str, Any]:
        with self.s.engine.connect() as conn:
            row = conn.execute(
                select(CommandRecord.__table__).where(
                    CommandRecord.command_id == command_id,
                    self.s.agent_visible(CommandRecord.agent_id),
                )
            ).one_or_none()
        if row is None:
            raise NotVisible(f"command {command_id}")
        return dict(row._mapping)
