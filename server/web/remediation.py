"""The operators' remediation routes: plan (dry run), store, approve, follow, roll back.

* ``/api/v1/remediation/...``: the JSON API, through the scoped layer (``Remediations``).
* ``/remediation``, ``/remediation/new`` (the dry run of a selection, with the form that stores
  it), ``/remediation/<id>`` (the plan: approve, progress, per-camera results, rollback). The
  approval and a rollback ask for confirmation first (``server.web.confirm``; no script).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Form, Path, Query, Request
from fastapi import status as http
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from server.domain.remediation import (
    Options,
    Plan,
    PlanDetail,
    Remediations,
    Selection,
    Staging,
)
from server.domain.rollouts import RolloutView
from server.domain.scope import Invalid, Scope
from server.firmware import campaign
from server.web.confirm import Confirm, confirm_then
from server.web.deps import ApiScope, DbId, FormScope, PageScope
from server.web.firmware import (
    NAME,
    REFRESH_S,
    TEXT,
    FwWeb,
    Queued,
    WindowIn,
    escrow_of_form,
    windows_of,
)

M = TypeVar("M", bound=BaseModel)
CODE = r"^[a-z0-9][a-z0-9_.-]{0,79}$"
CONTROL = r"^[A-Z]{2,5}(-[0-9]{2})?(,[A-Z]{2,5}(-[0-9]{2})?){0,19}$"  # controls or families
HOST = r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$"
MAX_WINDOWS = 100  # sites with a window in one plan form
Action = Literal["approve", "promote", "halt", "resume"]
CONFIRM_FIRST = {"approve": "confirm.approve_plan", "halt": "confirm.halt_plan"}


class SelectionIn(BaseModel):
    org_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    site: Annotated[str, Field(pattern=NAME)] | None = None
    agent_id: Annotated[str, Field(pattern=NAME)] | None = None
    camera_id: Annotated[str, Field(pattern=NAME)] | None = None
    code: Annotated[str, Field(pattern=CODE)] | None = None
    control: Annotated[str, Field(pattern=CONTROL)] | None = None
    vendor: Annotated[str, Field(max_length=64, pattern=TEXT)] | None = None
    ntp_server: Annotated[str, Field(pattern=HOST)] | None = None
    audited_within_days: Annotated[int, Field(ge=1, le=365)] = 7

    def selection(self) -> Selection:
        return Selection(
            self.org_id, self.site, self.agent_id, self.camera_id, self.code, self.control,
            self.vendor,
        )  # fmt: skip

    def options(self) -> Options:
        return Options(self.ntp_server, timedelta(days=self.audited_within_days))


class PlanCreate(SelectionIn):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT)]
    escrow_jwk: dict[str, str]
    canary_count: Annotated[int, Field(ge=1, le=100_000)] = 1
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 10
    max_parallel_per_site: Annotated[int, Field(ge=1, le=1000)] = 2
    failure_threshold: Annotated[int, Field(ge=1, le=100_000)] = 1
    windows: dict[Annotated[str, Field(pattern=NAME)], WindowIn] = {}

    def staging(self) -> Staging:
        return Staging(
            self.canary_count, self.batch_size, self.max_parallel_per_site,
            self.failure_threshold, windows_of(self.windows),
        )  # fmt: skip


def _validated(model: type[M], fields: dict[str, Any]) -> M:
    """A page's query or form fields (empty ones left out) as ``model``; ``Invalid`` if not."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v != ""})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise Invalid(problems) from exc


def remediations_of(request: Request, s: Scope) -> Remediations:
    return Remediations(s, command_ttl=request.app.state.firmware.command_ttl)


def _api(request: Request, s: ApiScope) -> Remediations:
    return remediations_of(request, s)


Rem = Annotated[Remediations, Depends(_api)]
Agent = Annotated[str, Path(pattern=NAME)]


def windows_of_form(text: str) -> dict[str, dict[str, object]]:
    """Maintenance windows typed in the plan form, one ``SITE=HH:MM-HH:MM[@MINUTES]`` a line
    as on the command line (checked further as the API's ``windows``)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_WINDOWS:
        raise Invalid(f"at most {MAX_WINDOWS} maintenance windows")
    windows: dict[str, dict[str, object]] = {}
    for line in lines:
        try:
            site, w = campaign.parse_window(line)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        windows[site] = {
            "start": w.start.strftime("%H:%M"),
            "end": w.end.strftime("%H:%M"),
            "utc_offset_min": w.utc_offset_min,
        }
    return windows


def api_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1/remediation", tags=["remediation"])

    @api.get("")
    def plans(s: Rem) -> list[RolloutView]:
        return s.plans()

    @api.post("/preview")
    def preview(s: Rem, body: SelectionIn) -> Plan:
        """The dry run: what a plan over the selection would change; stores nothing."""
        return s.preview(body.selection(), body.options())

    @api.post("", status_code=http.HTTP_201_CREATED)
    def create(s: Rem, body: PlanCreate) -> PlanDetail:
        """Store the plan, awaiting approval."""
        return s.create(
            name=body.name,
            selection=body.selection(),
            options=body.options(),
            escrow_jwk=dict(body.escrow_jwk),
            staging=body.staging(),
        )

    @api.get("/{plan_id}")
    def plan(s: Rem, plan_id: DbId) -> PlanDetail:
        return s.plan(plan_id)

    @api.post("/{plan_id}/cameras/{agent_id}/{camera_id}/rollback")
    def rollback(s: Rem, plan_id: DbId, agent_id: Agent, camera_id: Agent) -> Queued:
        return Queued(command_id=s.rollback(plan_id, agent_id, camera_id))

    @api.post("/{plan_id}/{action}")
    def act(s: Rem, plan_id: DbId, action: Action) -> PlanDetail:
        return s.act(plan_id, action)

    return api


Opt = Annotated[str, Query(max_length=255)]


def pages_router() -> APIRouter:
    pages = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @pages.get("/remediation")
    def plans(request: Request, web: FwWeb, s: PageScope) -> Response:
        rem = remediations_of(request, s)
        return web.render(request, s.p, "remediations.html", plans=rem.plans(), refresh=REFRESH_S)

    @pages.get("/remediation/new")
    def new_plan(
        request: Request,
        web: FwWeb,
        s: PageScope,
        *,
        org_id: Opt = "",
        site: Opt = "",
        agent_id: Opt = "",
        camera_id: Opt = "",
        code: Opt = "",
        control: Opt = "",
        vendor: Opt = "",
        ntp_server: Opt = "",
    ) -> Response:
        given = {
            "org_id": org_id, "site": site, "agent_id": agent_id, "camera_id": camera_id,
            "code": code, "control": control, "vendor": vendor, "ntp_server": ntp_server,
        }  # fmt: skip
        body = _validated(SelectionIn, given)
        plan = remediations_of(request, s).preview(body.selection(), body.options())
        return web.render(request, s.p, "remediation_new.html", plan=plan, given=given)

    @pages.post("/remediation")
    def create(
        request: Request,
        s: FormScope,
        *,
        name: Annotated[str, Form(min_length=1, max_length=200, pattern=TEXT)],
        escrow_jwk: Annotated[str, Form(min_length=2, max_length=2000)],
        org_id: Annotated[str, Form(max_length=12)] = "",
        site: Annotated[str, Form(max_length=64)] = "",
        agent_id: Annotated[str, Form(max_length=64)] = "",
        camera_id: Annotated[str, Form(max_length=64)] = "",
        code: Annotated[str, Form(max_length=80)] = "",
        control: Annotated[str, Form(max_length=200)] = "",
        vendor: Annotated[str, Form(max_length=64)] = "",
        ntp_server: Annotated[str, Form(max_length=255)] = "",
        canary_count: Annotated[int, Form(ge=1, le=100_000)] = 1,
        batch_size: Annotated[int, Form(ge=1, le=100_000)] = 10,
        windows: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        given = {
            "org_id": org_id, "site": site, "agent_id": agent_id, "camera_id": camera_id,
            "code": code, "control": control, "vendor": vendor, "ntp_server": ntp_server,
        }  # fmt: skip
        body = _validated(
            PlanCreate,
            given
            | {
                "name": name.strip(),
                "escrow_jwk": escrow_of_form(escrow_jwk),
                "canary_count": canary_count,
                "batch_size": batch_size,
                "windows": windows_of_form(windows),
            },
        )
        made = remediations_of(request, s).create(
            name=body.name,
            selection=body.selection(),
            options=body.options(),
            escrow_jwk=dict(body.escrow_jwk),
            staging=body.staging(),
        )
        return RedirectResponse(f"/remediation/{made.rollout.rollout.id}", http.HTTP_303_SEE_OTHER)

    @pages.get("/remediation/{plan_id}")
    def plan(request: Request, web: FwWeb, s: PageScope, plan_id: DbId) -> Response:
        d = remediations_of(request, s).plan(plan_id)
        return web.render(request, s.p, "remediation.html", d=d, refresh=REFRESH_S)

    @pages.post("/remediation/{plan_id}/cameras/{agent_id}/{camera_id}/rollback")
    def rollback(
        request: Request,
        web: FwWeb,
        s: FormScope,
        *,
        plan_id: DbId,
        agent_id: Agent,
        camera_id: Agent,
        confirm: Confirm = "",
    ) -> Response:
        rem = remediations_of(request, s)

        def named() -> dict[str, str]:
            rem.plan(plan_id)  # visible: the question names nothing the caller may not see
            return {"camera": f"{agent_id}/{camera_id}"}

        return confirm_then(
            request,
            web,
            s,
            confirm,
            question="confirm.rollback_camera",
            named=named,
            act=lambda: rem.rollback(plan_id, agent_id, camera_id),
            back=f"/remediation/{plan_id}",
        )

    @pages.post("/remediation/{plan_id}/{action}")
    def act(
        request: Request,
        web: FwWeb,
        s: FormScope,
        plan_id: DbId,
        action: Action,
        *,
        confirm: Confirm = "",
    ) -> Response:
        rem = remediations_of(request, s)

        def named() -> dict[str, object]:
            d = rem.plan(plan_id)
            planned = sum(1 for i in d.items if i.state == "planned")
            return {"plan": d.rollout.rollout.name, "cameras": planned}

        return confirm_then(
            request,
            web,
            s,
            confirm,
            question=CONFIRM_FIRST.get(action),
            named=named,
            act=lambda: rem.act(plan_id, action),
            back=f"/remediation/{plan_id}",
        )

    return pages


def mount(app: FastAPI) -> None:
    """Called by ``server.web.app.mount`` after the firmware routes (whose state it shares)."""
    app.include_router(api_router())
    app.include_router(pages_router())
