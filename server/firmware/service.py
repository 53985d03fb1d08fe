"""Firmware catalogue, campaigns and commands through the scoped layer (tenancy, roles, audit).

``FirmwareScoped`` extends ``server.domain.scope.Scoped`` and uses its predicates: cameras are
selected only inside the principal's organisation subtree, every action checks the role first
and is written to the audit log with its outcome. The catalogue and the TUF repository are
fleet-wide (one signed repository serves every tenant), so changing them takes an administrator
of the whole fleet; campaigns and password rotations take an operator, downgrades an
administrator (whose name travels in the command as ``downgrade_approved_by``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import ColumnElement, Connection, insert, select, true, update
from sqlalchemy.exc import IntegrityError

from server.domain.scope import Invalid, NotVisible, Scoped
from server.firmware import campaign, store
from server.firmware.commands import PASSWORD_ROTATE, new_command
from server.firmware.scheduler import queue
from server.firmware.tuf_repo import TargetSpec, TufRepository, valid_target_path
from server.storage import Repository, read_then_write
from server.storage.firmware_models import (
    CommandRecord,
    FirmwareImage,
    Rollout,
    RolloutEvent,
    RolloutTarget,
)
from server.storage.models import Agent, Camera
from server.storage.org_models import OrgUnit

CHUNK: Final = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DIGITS = re.compile(r"\d+")
# text that may span lines: no control characters but tab, newline and carriage return (and
# never NUL, which PostgreSQL cannot store in a text column)
NOTES_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
_NOTES = re.compile(NOTES_PATTERN)


_OPERATIONS: Final = {"promote": campaign.promote, "halt": campaign.halt, "resume": campaign.resume}


def version_key(version: str) -> tuple[int, ...]:
    """Numbers of a vendor version string in order: ``V5.7.10 build 230101`` > ``V5.7.3``."""
    return tuple(int(n) for n in _DIGITS.findall(version))


@dataclass(frozen=True, slots=True)
class Upload:
    path: Path  # inside the repository's incoming directory
    sha256: str
    length: int


def receive(tuf: TufRepository, stream: BinaryIO, max_bytes: int) -> Upload:
    """Copy an upload into ``incoming/`` while hashing it; refuse it beyond ``max_bytes``."""
    tuf.incoming_dir.mkdir(parents=True, exist_ok=True)
    path = tuf.incoming_dir / f"upload-{os.urandom(8).hex()}"
    digest = hashlib.sha256()
    length = 0
    with open(path, "xb") as out:
        while chunk := stream.read(CHUNK):
            length += len(chunk)
            if length > max_bytes:
                out.close()
                path.unlink()
                raise Invalid(f"the image exceeds the {max_bytes} byte limit")
            digest.update(chunk)
            out.write(chunk)
    return Upload(path, digest.hexdigest(), length)


@dataclass(frozen=True, slots=True)
class ImageView:
    id: int
    target_path: str
    vendor: str
    models: list[str]
    version: str
    build_date: date | None
    sha256: str
    length: int
    vendor_sha256: str | None
    release_notes: str
    uploaded_at: datetime
    uploaded_by: str
    retired_at: datetime | None
    retired_by: str | None
    published: bool  # listed in the signed targets metadata agents can fetch now


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
    image_id: int
    version: str
    target_path: str
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


def catalogue_targets(repo: Repository) -> list[TargetSpec]:
    """What the next signed targets metadata lists: every image not retired."""
    with repo.engine.connect() as conn:
        rows = conn.execute(
            select(FirmwareImage.__table__)
            .where(FirmwareImage.retired_at.is_(None))
            .order_by(FirmwareImage.id)
        ).all()
    return [
        TargetSpec(
            r.target_path,
            r.length,
            r.sha256,
            {
                "vendor": r.vendor,
                "models": list(r.models),
                "version": r.version,
                "build_date": r.build_date.isoformat() if r.build_date else None,
            },
        )
        for r in rows
    ]


def escrow_key(jwk: dict[str, Any]) -> OKPKey:
    """The escrow public key: X25519 only, and never a private key."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "X25519" or "d" in jwk:
        raise Invalid("the escrow key must be an X25519 public JWK")
    try:
        return OKPKey.import_key(jwk)
    except (JoseError, ValueError) as exc:
        raise Invalid(f"the escrow key is not a valid JWK: {exc}") from exc


class FirmwareScoped(Scoped):
    def __init__(
        self,
        scoped: Scoped,
        tuf: TufRepository,
        *,
        command_ttl: timedelta = timedelta(hours=2),
    ) -> None:
        super().__init__(scoped.repo, scoped.p, silent_after=scoped.silent_after, now=scoped.now)
        self.tuf = tuf
        self.command_ttl = command_ttl

    # -- catalogue -------------------------------------------------------------------------

    def images(self, image_id: int | None = None) -> list[ImageView]:
        published = self.tuf.published_targets()
        q = select(FirmwareImage.__table__).order_by(FirmwareImage.id.desc())
        if image_id is not None:
            q = q.where(FirmwareImage.id == image_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            ImageView(
                r.id, r.target_path, r.vendor, list(r.models), r.version, r.build_date,
                r.sha256, r.length, r.vendor_sha256, r.release_notes, r.uploaded_at,
                r.uploaded_by, r.retired_at, r.retired_by,
                published.get(r.target_path) is not None
                and published[r.target_path].hashes.get("sha256") == r.sha256,
            )
            for r in rows
        ]  # fmt: skip

    def image(self, image_id: int) -> ImageView:
        found = self.images(image_id)
        if not found:
            raise NotVisible(f"firmware image {image_id}")
        return found[0]

    def upload(
        self,
        upload: Upload,
        *,
        filename: str,
        vendor: str,
        models: list[str],
        version: str,
        build_date: date | None,
        vendor_sha256: str | None,
        release_notes: str,
    ) -> ImageView:
        """Add a received image; the vendor's published SHA-256, when given, must match."""
        target = f"{vendor.lower()}/{version}/{filename}"
        try:
            with self._action("firmware.upload", "firmware", target) as act:
                act.detail = {"sha256": upload.sha256, "length": upload.length, "models": models}
                self._require("admin")
                self._require_whole_fleet()
                if not valid_target_path(target):
                    raise Invalid(f"vendor, version and file name must be plain names: {target}")
                if not models:
                    raise Invalid("name at least one model the image fits")
                if not _NOTES.match(release_notes):
                    raise Invalid("release notes may hold no control characters but line breaks")
                if vendor_sha256 is not None:
                    expected = vendor_sha256.strip().lower()
                    if not _SHA256.match(expected) or expected != upload.sha256:
                        act.detail["vendor_sha256"] = expected
                        raise Invalid("the image's SHA-256 differs from the vendor's published one")
                stored = self.tuf.stored_path(target, upload.sha256)
                stored.parent.mkdir(parents=True, exist_ok=True)
                with self.engine.begin() as conn:
                    try:
                        new_id = conn.execute(
                            insert(FirmwareImage)
                            .values(
                                target_path=target,
                                vendor=vendor,
                                models=sorted(set(models)),
                                version=version,
                                build_date=build_date,
                                sha256=upload.sha256,
                                length=upload.length,
                                vendor_sha256=vendor_sha256,
                                release_notes=release_notes,
                                uploaded_at=self.now,
                                uploaded_by=self.p.username,
                            )
                            .returning(FirmwareImage.id)
                        ).scalar_one()
                    except IntegrityError as exc:
                        raise Invalid(f"{target} is already in the catalogue") from exc
                    os.replace(upload.path, stored)
        finally:
            upload.path.unlink(missing_ok=True)
        return self.image(new_id)

    def retire(self, image_id: int) -> ImageView:
        with self._action("firmware.retire", "firmware", image_id) as act:
            self._require("admin")
            self._require_whole_fleet()
            with self.engine.begin() as conn:
                done = conn.execute(
                    update(FirmwareImage)
                    .where(FirmwareImage.id == image_id, FirmwareImage.retired_at.is_(None))
                    .values(retired_at=self.now, retired_by=self.p.username)
                ).rowcount
            if not done:
                raise Invalid(f"image {image_id} is unknown or already retired")
            act.detail = {"note": "removed from the next signed targets; running campaigns halt"}
        return self.image(image_id)

    # -- campaigns -------------------------------------------------------------------------

    def _rollout_visible(self) -> ColumnElement[bool]:
        if self.p.org_path is None:
            return true()
        return Rollout.org_unit_id.in_(select(OrgUnit.id).where(self._org_visible()))

    def rollouts(self, rollout_id: int | None = None) -> list[RolloutView]:
        q = (
            select(Rollout.__table__, FirmwareImage.version, FirmwareImage.target_path)
            .join(FirmwareImage, FirmwareImage.id == Rollout.image_id)
            .where(self._rollout_visible())
            .order_by(Rollout.id.desc())
        )
        if rollout_id is not None:
            q = q.where(Rollout.id == rollout_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
            tallies: dict[int, Counter[str]] = {r.id: Counter() for r in rows}
            stages: dict[int, int] = {}
            if rows:
                for t in conn.execute(
                    select(
                        RolloutTarget.rollout_id, RolloutTarget.state, RolloutTarget.stage
                    ).where(RolloutTarget.rollout_id.in_(list(tallies)))
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

    def rollout(self, rollout_id: int) -> RolloutDetail:
        found = self.rollouts(rollout_id)
        if not found:
            raise NotVisible(f"rollout {rollout_id}")
        with self.engine.connect() as conn:
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

    def _require_site_visible(self, conn: Connection, site: str) -> None:
        """A site outside the caller's subtree is not found, like any object of another agency
        (not "no camera matches", which would confirm that it exists)."""
        if self.p.org_path is None:
            return  # the whole fleet, unmapped sites included
        if conn.execute(self._sites_under(self.p.org_path).where(OrgUnit.site == site)).first():
            return
        raise NotVisible(f"site {site}")

    def _candidates(
        self, conn: Connection, image: Any, sel: Selector
    ) -> list[tuple[str, str, str, str | None]]:
        """Visible cameras of approved agents that the image fits: (agent, camera, site, fw)."""
        q = (
            select(Camera.agent_id, Camera.camera_id, Agent.site, Camera.identity)
            .join(Agent, Agent.agent_id == Camera.agent_id)
            .where(self._agent_visible(Camera.agent_id), Agent.status == "approved")
            .order_by(Camera.agent_id, Camera.camera_id)
        )
        if sel.org_id is not None:
            org = self._org(conn, sel.org_id)
            q = q.where(Agent.site.in_(self._sites_under(org.path)))
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
        with self._action("rollout.create", "rollout", name) as act:
            self._require("operator")
            if allow_downgrade:
                self._require("admin")
            image = self.image(image_id)
            act.detail = {"image_id": image_id, "version": image.version, "downgrade": False}
            if image.retired_at is not None or not image.published:
                raise Invalid("only published images that are not retired can be rolled out")
            with read_then_write(self.engine) as conn:
                if selector.org_id is not None:
                    act.org_unit_id = self._org(conn, selector.org_id).id
                elif selector.site is not None:
                    self._require_site_visible(conn, selector.site)
                    act.org_unit_id = self._site_org(conn, selector.site)
                else:
                    act.org_unit_id = self.p.org_unit_id
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
                try:
                    policy = campaign.Policy(
                        canary=campaign.canary_size(len(chosen), canary_count, canary_percent),
                        batch_size=batch_size,
                        max_parallel_per_site=max_parallel_per_site,
                        failure_threshold=failure_threshold,
                        command_ttl=self.command_ttl,
                        windows=windows,
                    )
                except ValueError as exc:
                    raise Invalid(str(exc)) from exc
                plan = campaign.plan([c[:3] for c in chosen], policy)
                approver = self.p.username if downgrades else None
                act.detail["downgrade"] = bool(downgrades)
                rollout_id = conn.execute(
                    insert(Rollout)
                    .values(
                        name=name,
                        image_id=image_id,
                        org_unit_id=act.org_unit_id,
                        selector={
                            "org_id": selector.org_id,
                            "site": selector.site,
                            "model": selector.model,
                            "firmware": selector.firmware,
                        },
                        policy=store.policy_to_json(policy),
                        phase=plan.phase,
                        stage=plan.stage,
                        failures=0,
                        resume_to=None,
                        downgrade_approved_by=approver,
                        created_by=self.p.username,
                        created_at=self.now,
                        updated_at=self.now,
                    )
                    .returning(Rollout.id)
                ).scalar_one()
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
                            "updated_at": self.now,
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
                store.record(
                    conn,
                    rollout_id,
                    (campaign.Event("create", self.p.username, detail),),
                    self.now,
                )
                if approver:
                    store.record(
                        conn,
                        rollout_id,
                        (campaign.Event("approve_downgrade", approver, {"n": downgrades}),),
                        self.now,
                    )
                act.detail.update(detail, rollout_id=rollout_id)
        return self.rollout(rollout_id)

    def act(self, rollout_id: int, action: Literal["promote", "halt", "resume"]) -> RolloutDetail:
        with self._action(f"rollout.{action}", "rollout", rollout_id) as act:
            self._require("operator")
            view = self.rollout(rollout_id)
            with self.engine.connect() as conn:
                act.org_unit_id = conn.execute(
                    select(Rollout.org_unit_id).where(Rollout.id == rollout_id)
                ).scalar()
            act.detail = {"from": view.rollout.phase}
            with store.LOCK, read_then_write(self.engine) as conn:
                loaded = store.load(conn, rollout_id)
                assert loaded is not None  # visible above
                try:
                    step = _OPERATIONS[action](loaded.campaign, self.p.username)
                except campaign.NotAllowed as exc:
                    raise Invalid(str(exc)) from exc
                store.save(conn, rollout_id, loaded.campaign, step, self.now)
            act.detail["to"] = step.campaign.phase
        return self.rollout(rollout_id)

    # -- password rotation -----------------------------------------------------------------

    def rotate_password(
        self, agent_id: str, camera_id: str, escrow_jwk: dict[str, Any], username: str
    ) -> str:
        """Queue a signed ``password.rotate`` command; returns its command id."""
        with self._action("camera.password_rotate", "camera", f"{agent_id}/{camera_id}") as act:
            self._require("operator")
            cam = self.camera(agent_id, camera_id)
            escrow = escrow_key(escrow_jwk)
            with read_then_write(self.engine) as conn:
                act.org_unit_id = self._site_org(conn, cam.site)
                cmd = new_command(
                    PASSWORD_ROTATE,
                    agent_id=agent_id,
                    site=cam.site,
                    camera_id=camera_id,
                    params={
                        "escrow_kid": escrow.thumbprint(),
                        "escrow_jwk": json.dumps(escrow.as_dict(private=False), sort_keys=True),
                        "username": username,
                        "min_length": 20,
                    },
                    now=self.now,
                    ttl=self.command_ttl,
                )
                queue(conn, cmd, issued_by=self.p.username, rollout_id=None, now=self.now)
            act.detail = {"command_id": cmd.command_id, "escrow_kid": escrow.thumbprint()}
        return cmd.command_id

    def command(self, command_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CommandRecord.__table__).where(
                    CommandRecord.command_id == command_id,
                    self._agent_visible(CommandRecord.agent_id),
                )
            ).one_or_none()
        if row is None:
            raise NotVisible(f"command {command_id}")
        return dict(row._mapping)
