"""The register of certified camera models (QCVN 135:2024) and each camera's INV-02 verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Row, delete, insert, select, update

from server.domain.scope import Area, Invalid, NotVisible
from server.storage import read_then_write
from server.storage.errors import Conflict, translate
from server.storage.models import Camera
from server.storage.org_models import ModelEntry


def model_key(text: str | None) -> str:
    return " ".join((text or "").lower().split())


@dataclass(frozen=True, slots=True)
class ModelIn:
    vendor: str
    model: str
    hardware_id: str | None = None
    certificate_number: str | None = None
    certificate_issuer: str | None = None
    certificate_date: date | None = None
    flagged: bool = False
    flag_reason: str | None = None
    flag_reference: str | None = None


@dataclass(frozen=True, slots=True)
class ModelView:
    id: int
    vendor: str
    model: str
    hardware_id: str | None
    certificate_number: str | None
    certificate_issuer: str | None
    certificate_date: date | None
    flagged: bool
    flag_reason: str | None
    flag_reference: str | None
    updated_at: datetime
    updated_by: str | None

    @property
    def certified(self) -> bool:
        return self.certificate_number is not None


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
    )


Inv02 = Literal["certified", "flagged", "uncertified"]


def inv02_status(entry: ModelView | None) -> Inv02:
    """INV-02: compliant only when the model is certified and not flagged by the authorities."""
    if entry is not None and entry.flagged:
        return "flagged"
    if entry is not None and entry.certified:
        return "certified"
    return "uncertified"


class ModelMatcher:
    """Vendor + model (+ hardware id) lookups; an entry with the camera's hardware id wins."""

    def __init__(self, entries: list[ModelView]) -> None:
        self._by_key = {
            (model_key(e.vendor), model_key(e.model), model_key(e.hardware_id)): e for e in entries
        }

    def match(
        self, vendor: str | None, model: str | None, hardware: str | None
    ) -> ModelView | None:
        v, m = model_key(vendor), model_key(model)
        if not v or not m:
            return None
        specific = self._by_key.get((v, m, model_key(hardware))) if hardware else None
        return specific or self._by_key.get((v, m, ""))


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
                        ModelEntry.vendor_key, ModelEntry.model_key, ModelEntry.hardware_key
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
                if k in ("vendor", "model", "hardware_id", "certificate_number", "flagged")
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
                raise Invalid("this vendor, model and hardware id are already registered") from exc
        return next(m for m in self.model_register() if m.id == model_id)

    def delete_model(self, model_id: int) -> None:
        with self.s.action("model.delete", "model", model_id):
            self.s.require("admin")
            self.s.require_whole_fleet()
            with read_then_write(self.s.engine) as conn:
                if not conn.execute(delete(ModelEntry).where(ModelEntry.id == model_id)).rowcount:
                    raise NotVisible(f"register entry {model_id}")

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
            entry = matcher.match(vendor, model, r.identity.get("hardware_id"))
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
