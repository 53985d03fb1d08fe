"""Recorders (NVR/DVR) and the cameras on their channels, from what the agents report.

A recorder is a reported device with ``rec.channel`` findings (``agent.checks.recorder``): one
per IP channel, naming the channel's number, address, model, serial and state as the recorder
lists it. A channel's camera is the device the same agent reported at that address (the agent
audits the channel cameras it reaches and reports the offline ones from their recorder), so the
tree site > recorder > channel is built here, below the web, for the dashboard and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select, tuple_

from server.domain.scope import Area, NotVisible
from server.storage.models import Camera, Finding

__all__ = ["ChannelLine", "RecorderLine", "RecorderView", "Recorders", "recorder", "recorders"]

CHANNEL = "rec.channel"
EXPOSED = "rec.passwords_exposed"
MAX_CHANNELS = 256  # a recorder's channels shown at most (the largest NVRs have 256)


@dataclass(frozen=True, slots=True)
class ChannelLine:
    number: int
    address: str
    model: str | None
    serial: str | None
    state: str  # "online", "offline", "unknown"
    camera_id: str | None  # the device the agent reported at that address
    failing: int  # its failed findings (0 without a report)


@dataclass(frozen=True, slots=True)
class RecorderLine:
    agent_id: str
    camera_id: str
    site: str
    address: str
    model: str | None
    channels: int
    offline: int


@dataclass(frozen=True, slots=True)
class RecorderView:
    agent_id: str
    camera_id: str
    site: str
    address: str
    identity: dict[str, Any]
    channels: list[ChannelLine]
    passwords_exposed: bool


def _channel_rows(
    conn: Connection, visible: ColumnElement[bool], *where: ColumnElement[bool]
) -> list[tuple[str, str, dict[str, Any]]]:
    q = select(Finding.agent_id, Finding.camera_id, Finding.evidence).where(
        Finding.code == CHANNEL, visible, *where
    )
    return [(a, c, dict(e or {})) for a, c, e in conn.execute(q)]


def recorders(conn: Connection, visible: ColumnElement[bool]) -> list[RecorderLine]:
    """Every recorder in scope (``visible``: a predicate on ``Finding.agent_id``'s agents),
    with its channel and offline counts, by agent and id."""
    counts: dict[tuple[str, str], list[int]] = {}
    for agent_id, camera_id, evidence in _channel_rows(conn, visible):
        tally = counts.setdefault((agent_id, camera_id), [0, 0])
        tally[0] += 1
        tally[1] += evidence.get("state") == "offline"
    if not counts:
        return []
    rows = conn.execute(
        select(
            Camera.agent_id,
            Camera.camera_id,
            Camera.site,
            Camera.address,
            Camera.identity["model"].as_string(),
        ).where(tuple_(Camera.agent_id, Camera.camera_id).in_(list(counts)))
    )
    return sorted(
        (RecorderLine(a, c, s, addr, m, *counts[(a, c)]) for a, c, s, addr, m in rows),
        key=lambda r: (r.agent_id, r.camera_id),
    )


def recorder(
    conn: Connection, visible: ColumnElement[bool], agent_id: str, camera_id: str
) -> RecorderView | None:
    """One recorder with its channels in order and the device at each channel's address;
    None when it is not a visible recorder."""
    cam = conn.execute(
        select(Camera.site, Camera.address, Camera.identity).where(
            Camera.agent_id == agent_id, Camera.camera_id == camera_id
        )
    ).one_or_none()
    mine = (Finding.agent_id == agent_id, Finding.camera_id == camera_id)
    listed = _channel_rows(conn, visible, *mine)
    if cam is None or not listed:
        return None
    exposed = conn.execute(
        select(func.count()).where(Finding.code == EXPOSED, Finding.status == "fail", *mine)
    ).scalar_one()
    addresses = {str(e.get("address") or "") for _, _, e in listed}
    devices = {
        address: (cid, failing)
        for cid, address, failing in conn.execute(
            select(
                Camera.camera_id,
                Camera.address,
                select(func.count())
                .where(
                    Finding.agent_id == Camera.agent_id,
                    Finding.camera_id == Camera.camera_id,
                    Finding.status == "fail",
                )
                .scalar_subquery(),
            ).where(
                Camera.agent_id == agent_id,
                Camera.address.in_(addresses),
                Camera.camera_id != camera_id,
            )
        )
    }
    channels = sorted(
        (_channel(e, devices) for _, _, e in listed), key=lambda c: (c.number, c.address)
    )[:MAX_CHANNELS]
    return RecorderView(
        agent_id, camera_id, cam.site, cam.address, dict(cam.identity or {}), channels, exposed > 0
    )


def _channel(evidence: dict[str, Any], devices: dict[str, tuple[str, int]]) -> ChannelLine:
    address = str(evidence.get("address") or "")
    camera_id, failing = devices.get(address, (None, 0))
    number = evidence.get("channel")
    return ChannelLine(
        number=number if isinstance(number, int) else 0,
        address=address,
        model=_opt(evidence.get("model")),
        serial=_opt(evidence.get("serial")),
        state=str(evidence.get("state") or "unknown"),
        camera_id=camera_id,
        failing=failing,
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


class Recorders(Area):
    """The recorders of a scope and the cameras on their channels."""

    __slots__ = ()

    def recorders(self) -> list[RecorderLine]:
        """The recorders in scope with their channel counts."""
        with self.s.engine.connect() as conn:
            return recorders(conn, self.s.agent_visible(Finding.agent_id))

    def recorder(self, agent_id: str, camera_id: str) -> RecorderView:
        with self.s.engine.connect() as conn:
            view = recorder(conn, self.s.agent_visible(Finding.agent_id), agent_id, camera_id)
        if view is None:
            raise NotVisible(f"recorder {agent_id}/{camera_id}")
        return view
