"""The register of certified camera models (QCVN 11:2026/BCA; QCVN 135:2024/BTTTT kept) and each
camera's INV-02 verdict; the entries and matching themselves are in ``server.domain.register``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from server.domain.register import Inv02, ModelIn, ModelMatcher, ModelView, inv02_status
from server.domain.register import key as model_key
from server.domain.scope import Area, Invalid, NotVisible
from server.storage import read_then_write
from server.storage.errors import Conflict, translate
from server.storage.models import Camera
from server.storage.org_models import ModelEntry


def _model_view(r: Row[Any]) -> ModelView:
    return ModelView(
        r.id,
        r.vendor,
        r.model,
        r.hardware_id,
        r.certificate_number,
        r.certificate_issuer,
        r.certificate_date,
        r.flagged,
        r.flag_reason,
        r.flag_reference,
        r.updated_at,
        r.updated_by,
        r.firmware,
        r.regulation,
    )


@dataclass(frozen=True, slots=True)
class DeviceView:
    agent_id: str
    camera_id: str
    site: str
    vendor: str | None
    model: str | None
    hardware_id: str | None
    firmware: str | None
    register_id: int | None
    inv02: Inv02


@dataclass(frozen=True, slots=True)
class ModelCount:
    """The cameras in scope that report one identity (vendor, model, hardware, firmware)."""

    vendor: str | None
    model: str | None
    hardware_id: str | None
    firmware: str | None
    inv02: Inv02
    cameras: int


def _identity() -> tuple[Any, ...]:
    return tuple(
        Camera.identity[k].as_string() for k in ("vendor", "model", "hardware_id", "firmware")
    )


class ModelRegister(Area):
    """The certified-model register and the devices of a scope."""

    __slots__ = ()

    def model_register(self) -> list[ModelView]:
        """The register is national reference data: every user reads all of it."""
        with self.s.engine.connect() as conn:
            return [
                _model_view(r)
                for r in conn.execute(
                    select(ModelEntry.__table__).order_by(
                        ModelEntry.vendor_key,
                        ModelEntry.model_key,
                        ModelEntry.hardware_key,
                        ModelEntry.firmware_key,
                    )
                ).all()
            ]

    def save_model(self, entry: ModelIn, model_id: int | None = None) -> ModelView:
        """Create (``model_id`` None) or replace a register entry: whole-fleet administrators."""
        with self.s.action(
            "model.save", "model", model_id or f"{entry.vendor}/{entry.model}"
        ) as act:
            self.s.require("admin")
            self.s.require_whole_fleet()
            values = {
                "vendor": entry.vendor,
                "model": entry.model,
                "hardware_id": entry.hardware_id or None,
                "vendor_key": model_key(entry.vendor),
                "model_key": model_key(entry.model),
                "hardware_key": model_key(entry.hardware_id),
                "firmware": entry.firmware or None,
                "firmware_key": model_key(entry.firmware),
                "regulation": entry.regulation,
                "certificate_number": entry.certificate_number,
                "certificate_issuer": entry.certificate_issuer,
                "certificate_date": entry.certificate_date,
                "flagged": entry.flagged,
                "flag_reason": entry.flag_reason,
                "flag_reference": entry.flag_reference,
                "updated_at": self.s.now,
                "updated_by": self.s.p.username,
            }
            act.detail = {
                k: v.isoformat() if isinstance(v, date) else v
                for k, v in values.items()
                if k
                in (
                    "vendor",
                    "model",
                    "hardware_id",
                    "firmware",
                    "regulation",
                    "certificate_number",
                    "flagged",
                )
            }
            try:
                with translate(), read_then_write(self.s.engine) as conn:
                    if model_id is None:
                        model_id = conn.execute(
                            insert(ModelEntry).values(values).returning(ModelEntry.id)
                        ).scalar_one()
                    elif not conn.execute(
                        update(ModelEntry).where(ModelEntry.id == model_id).values(values)
                    ).rowcount:
                        raise NotVisible(f"register entry {model_id}")
            except Conflict as exc:
                raise Invalid(
                    "this vendor, model, hardware id and firmware are already registered"
                ) from exc
        return next(m for m in self.model_register() if m.id == model_id)

    def delete_model(self, model_id: int) -> None:
        with self.s.action("model.delete", "model", model_id):
            self.s.require("admin")
            self.s.require_whole_fleet()
            with read_then_write(self.s.engine) as conn:
                if not conn.execute(delete(ModelEntry).where(ModelEntry.id == model_id)).rowcount:
                    raise NotVisible(f"register entry {model_id}")

    def model_counts(self) -> list[ModelCount]:
        """Cameras in scope per reported identity, each identity matched once against the
        register (the page's summary: a few hundred identities, not every camera)."""
        matcher = ModelMatcher(self.model_register())
        identity = _identity()
        with self.s.engine.connect() as conn:
            rows = conn.execute(
                select(*identity, func.count())
                .where(self.s.agent_visible(Camera.agent_id))
                .group_by(*identity)
            ).all()
        return [ModelCount(*r[:4], inv02_status(matcher.match(*r[:4])), r[4]) for r in rows]

    def devices(self) -> list[DeviceView]:
        """Every camera in scope with its register match and INV-02 verdict."""
        matcher = ModelMatcher(self.model_register())
        with self.s.engine.connect() as conn:
            rows = conn.execute(
                select(Camera.agent_id, Camera.camera_id, Camera.site, Camera.identity)
                .where(self.s.agent_visible(Camera.agent_id))
                .order_by(Camera.agent_id, Camera.camera_id)
            ).all()
        result = []
        for r in rows:
            vendor, model = r.identity.get("vendor"), r.identity.get("model")
            entry = matcher.match(
                vendor, model, r.identity.get("hardware_id"), r.identity.get("firmware")
            )
            result.append(
                DeviceView(
                    r.agent_id,
                    r.camera_id,
                    r.site,
                    vendor,
                    model,
                    r.identity.get("hardware_id"),
                    r.identity.get("firmware"),
                    entry.id if entry else None,
                    inv02_status(entry),
                )
            )
        return result
