"""The operators' firmware routes, mounted with the dashboard by ``server.web.app.mount``.

(The agents fetch the signed TUF repository from ``server.api``.)

* ``/api/v1/firmware/...`` and ``/api/v1/rollouts/...``: the operator API, through the scoped
  layer (``FirmwareImages``, ``Rollouts``) like every other ``/api/v1`` route.
* ``/rollouts`` and ``/rollouts/<id>``: dashboard pages with progress bars, refreshed every
  few seconds by a ``<meta http-equiv=refresh>`` (the CSP allows no script).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from datetime import date, time, timedelta
from importlib.resources import files
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Form,
    Path,
    Query,
    Request,
    UploadFile,
)
from fastapi import status as http
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment
from pydantic import BaseModel, Field

from server.config import ServerConfig
from server.domain.firmware import NOTES_PATTERN, FirmwareImages, ImageView, receive
from server.domain.orgs import Orgs
from server.domain.rollouts import RolloutDetail, Rollouts, RolloutView, Selector
from server.domain.scope import Invalid, Scope
from server.firmware import campaign
from server.firmware.tuf_repo import NotInitialised, RoleStatus, TufRepository
from server.web.confirm import Confirm, confirm_then
from server.web.deps import ApiScope, DbId, FormScope, PageScope, Web, WebState
from server.web.display import environment
from server.web.i18n import LANGS, Catalogue

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TEXT = r"^[^\x00-\x1f\x7f]+$"
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Action = Literal["promote", "halt", "resume"]
REFRESH_S = 5


class WindowIn(BaseModel):
    start: Annotated[str, Field(pattern=HHMM)]
    end: Annotated[str, Field(pattern=HHMM)]
    utc_offset_min: Annotated[int, Field(ge=-720, le=840)] = 420


class RolloutCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT)]
    image_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    org_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    site: Annotated[str, Field(pattern=NAME)] | None = None
    model: Annotated[str, Field(max_length=512, pattern=TEXT)] | None = None
    firmware: Annotated[str, Field(max_length=512, pattern=TEXT)] | None = None
    canary_count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    canary_percent: Annotated[float, Field(gt=0, le=100)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 10
    max_parallel_per_site: Annotated[int, Field(ge=1, le=1000)] = 2
    failure_threshold: Annotated[int, Field(ge=1, le=100_000)] = 1
    windows: dict[Annotated[str, Field(pattern=NAME)], WindowIn] = {}
    allow_downgrade: bool = False


class PasswordRotation(BaseModel):
    agent_id: Annotated[str, Field(pattern=NAME)]
    camera_id: Annotated[str, Field(pattern=NAME)]
    username: Annotated[str, Field(min_length=1, max_length=64, pattern=TEXT)]
    escrow_jwk: dict[str, str]


class Queued(BaseModel):
    command_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class FirmwareState:
    tuf: TufRepository
    max_image_bytes: int
    command_ttl: timedelta
    templates: Environment  # the firmware and remediation pages' (with the dashboard's)
    texts: Catalogue  # the dashboard's with the firmware and remediation pages' added


def windows_of(windows: dict[str, WindowIn]) -> dict[str, campaign.Window]:
    return {
        site: campaign.Window(
            time.fromisoformat(w.start), time.fromisoformat(w.end), w.utc_offset_min
        )
        for site, w in windows.items()
    }


def escrow_of_form(text: str) -> dict[str, Any]:
    """The escrow public JWK pasted in a form (checked further by ``rollouts.escrow_key``)."""
    try:
        jwk = json.loads(text)
    except ValueError as exc:
        raise Invalid("the escrow key is not a JWK (JSON)") from exc
    if not isinstance(jwk, dict) or not all(isinstance(v, str) for v in jwk.values()):
        raise Invalid("the escrow key is not a JWK (a JSON object of strings)")
    return jwk


def _state(request: Request) -> FirmwareState:
    state: FirmwareState = request.app.state.firmware
    return state


def _page_web(request: Request, web: Web) -> WebState:
    """The dashboard's web state with the firmware and remediation pages' templates and texts."""
    fw = _state(request)
    return dataclasses.replace(web, templates=fw.templates, catalogue=fw.texts)


FwWeb = Annotated[WebState, Depends(_page_web)]


def rollouts_of(request: Request, s: Scope) -> Rollouts:
    fw = _state(request)
    return Rollouts(s, fw.tuf, command_ttl=fw.command_ttl)


def _api_rollouts(request: Request, s: ApiScope) -> Rollouts:
    return rollouts_of(request, s)


def images_of(request: Request, s: Scope) -> FirmwareImages:
    return FirmwareImages(s, _state(request).tuf)


def _api_images(request: Request, s: ApiScope) -> FirmwareImages:
    return images_of(request, s)


Images = Annotated[FirmwareImages, Depends(_api_images)]
Fw = Annotated[Rollouts, Depends(_api_rollouts)]


def api_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["firmware"])

    @api.get("/firmware")
    def images(s: Images) -> list[ImageView]:
        return s.images()

    @api.post("/firmware", status_code=http.HTTP_201_CREATED)
    def upload(
        request: Request,
        s: Images,
        file: UploadFile,
        *,
        vendor: Annotated[str, Form(pattern=NAME)],
        models: Annotated[str, Form(max_length=2000, pattern=TEXT)],
        version: Annotated[str, Form(pattern=NAME)],
        build_date: Annotated[date | None, Form()] = None,
        vendor_sha256: Annotated[str | None, Form(pattern=r"^[0-9a-fA-F]{64}$")] = None,
        release_notes: Annotated[str, Form(max_length=20_000, pattern=NOTES_PATTERN)] = "",
    ) -> ImageView:
        """Upload an image (multipart). ``models``: comma-separated models it fits."""
        s.s.require("admin")  # before reading a large body into the repository
        s.s.require_whole_fleet()
        fw = _state(request)
        received = receive(fw.tuf, file.file, fw.max_image_bytes)
        return s.upload(
            received,
            filename=file.filename or "firmware.bin",
            vendor=vendor,
            models=[m.strip() for m in models.split(",") if m.strip()],
            version=version,
            build_date=build_date,
            vendor_sha256=vendor_sha256,
            release_notes=release_notes,
        )

    @api.get("/firmware/tuf")
    def tuf_status(s: Images) -> list[RoleStatus]:
        return s.tuf.status()

    @api.get("/firmware/{image_id}")
    def image(s: Images, image_id: DbId) -> ImageView:
        return s.image(image_id)

    @api.post("/firmware/{image_id}/retire")
    def retire(s: Images, image_id: DbId) -> ImageView:
        return s.retire(image_id)

    @api.get("/rollouts")
    def rollouts(s: Fw) -> list[RolloutView]:
        return s.rollouts()

    @api.post("/rollouts", status_code=http.HTTP_201_CREATED)
    def create(s: Fw, body: RolloutCreate) -> RolloutDetail:
        return s.create_rollout(
            name=body.name,
            image_id=body.image_id,
            selector=Selector(body.org_id, body.site, body.model, body.firmware),
            canary_count=body.canary_count,
            canary_percent=body.canary_percent,
            batch_size=body.batch_size,
            max_parallel_per_site=body.max_parallel_per_site,
            failure_threshold=body.failure_threshold,
            windows=windows_of(body.windows),
            allow_downgrade=body.allow_downgrade,
        )

    @api.post("/rollouts/password-rotations", status_code=http.HTTP_202_ACCEPTED)
    def rotate(s: Fw, body: PasswordRotation) -> Queued:
        cid = s.rotate_password(body.agent_id, body.camera_id, dict(body.escrow_jwk), body.username)
        return Queued(command_id=cid)

    @api.get("/rollouts/commands/{command_id}")
    def command(s: Fw, command_id: Annotated[str, Path(pattern=NAME)]) -> dict[str, Any]:
        return s.command(command_id)

    @api.get("/rollouts/{rollout_id}")
    def rollout(s: Fw, rollout_id: DbId) -> RolloutDetail:
        return s.rollout(rollout_id)

    @api.post("/rollouts/{rollout_id}/{action}")
    def act(s: Fw, rollout_id: DbId, action: Action) -> RolloutDetail:
        return s.act(rollout_id, action)

    return api


def catalogue() -> Catalogue:
    """The dashboard's texts with the rollout pages' texts added."""
    data: dict[str, dict[str, Any]] = {}
    for lang in LANGS:
        base = tomllib.loads((files("server.web") / "i18n" / f"{lang}.toml").read_text("utf-8"))
        own = tomllib.loads((files("server.firmware") / "i18n" / f"{lang}.toml").read_text("utf-8"))
        base["ui"] = base.get("ui", {}) | own["ui"]
        data[lang] = base
    return Catalogue(data)


def pages_router() -> APIRouter:
    pages = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @pages.get("/rollouts")
    def rollouts(request: Request, web: FwWeb, s: PageScope) -> Response:
        fw = rollouts_of(request, s)
        return web.render(request, s.p, "rollouts.html", rollouts=fw.rollouts(), refresh=REFRESH_S)

    @pages.get("/rollouts/new")
    def new_rollout(
        request: Request,
        web: FwWeb,
        s: PageScope,
        site: Annotated[str, Query(max_length=64)] = "",
        model: Annotated[str, Query(max_length=128)] = "",
    ) -> Response:
        images = [i for i in images_of(request, s).images() if i.published and i.retired_at is None]
        sites = [o.site for o in Orgs(s).org_tree() if o.site]
        return web.render(
            request, s.p, "rollout_new.html", images=images, sites=sites, site=site, model=model
        )

    @pages.post("/rollouts")
    def create_rollout(
        request: Request,
        s: FormScope,
        *,
        name: Annotated[str, Form(min_length=1, max_length=200, pattern=TEXT)],
        image_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
        site: Annotated[str, Form(max_length=64)] = "",
        model: Annotated[str, Form(max_length=128)] = "",
        canary_count: Annotated[int, Form(ge=1, le=100_000)] = 1,
        batch_size: Annotated[int, Form(ge=1, le=100_000)] = 10,
    ) -> Response:
        made = rollouts_of(request, s).create_rollout(
            name=name.strip(),
            image_id=image_id,
            selector=Selector(site=site or None, model=model.strip() or None),
            canary_count=canary_count,
            canary_percent=None,
            batch_size=batch_size,
            max_parallel_per_site=2,
            failure_threshold=1,
            windows={},
        )
        return RedirectResponse(f"/rollouts/{made.rollout.id}", http.HTTP_303_SEE_OTHER)

    @pages.post("/cameras/{agent_id}/{camera_id}/rotate-password")
    def rotate_password(
        request: Request,
        s: FormScope,
        agent_id: Annotated[str, Path(pattern=NAME)],
        camera_id: Annotated[str, Path(pattern=NAME)],
        *,
        username: Annotated[str, Form(min_length=1, max_length=64, pattern=TEXT)],
        escrow_jwk: Annotated[str, Form(min_length=2, max_length=2000)],
    ) -> Response:
        jwk = escrow_of_form(escrow_jwk)
        cid = rollouts_of(request, s).rotate_password(agent_id, camera_id, jwk, username)
        target = f"/cameras/{quote(agent_id)}/{quote(camera_id)}?queued={quote(cid)}"
        return RedirectResponse(target, http.HTTP_303_SEE_OTHER)

    @pages.get("/rollouts/{rollout_id}")
    def rollout(request: Request, web: FwWeb, s: PageScope, rollout_id: DbId) -> Response:
        fw = rollouts_of(request, s)
        return web.render(request, s.p, "rollout.html", d=fw.rollout(rollout_id), refresh=REFRESH_S)

    @pages.post("/rollouts/{rollout_id}/{action}")
    def act(
        request: Request,
        web: FwWeb,
        s: FormScope,
        rollout_id: DbId,
        action: str,
        *,
        confirm: Confirm = "",
    ) -> Response:
        if action not in ("promote", "halt", "resume"):
            raise Invalid(f"unknown action {action}")
        fw = rollouts_of(request, s)
        return confirm_then(
            request,
            web,
            s,
            confirm,
            question="confirm.halt_rollout" if action == "halt" else None,
            named=lambda: {"rollout": fw.rollout(rollout_id).rollout.name},
            act=lambda: fw.act(rollout_id, action),  # type: ignore[arg-type]  # checked above
            back=f"/rollouts/{rollout_id}",
        )

    return pages


def mount(app: FastAPI, config: ServerConfig, tuf: TufRepository) -> None:
    """Called by ``server.web.app.mount`` after the dashboard's own routes."""
    app.state.firmware = FirmwareState(
        tuf,
        config.firmware.max_image_bytes,
        timedelta(seconds=config.firmware.command_ttl_s),
        environment("server.firmware", "server.web"),
        catalogue(),
    )
    app.include_router(api_router())
    app.include_router(pages_router())

    app.add_exception_handler(NotInitialised, _not_initialised)


async def _not_initialised(_request: Request, exc: Exception) -> Response:
    """Before ``firmware init`` and the first signed import there is nothing to serve: say so."""
    return JSONResponse({"detail": str(exc)}, status_code=http.HTTP_409_CONFLICT)
