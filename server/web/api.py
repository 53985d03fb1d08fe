"""The operator API under ``/api/v1`` (OpenAPI at ``/api/docs``): JSON over the scoped layer.

Authentication: ``Authorization: Bearer <API token>``, or the dashboard's session cookie plus an
``X-CSRF-Token`` header on writes. Errors: 401 not authenticated, 403 role too low or CSRF token
missing, 404 unknown or outside the caller's organisation subtree, 422 invalid request.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, Field

from server.config import WebConfig
from server.domain import controls, csvtable, register
from server.domain.agents import Agents, AgentView
from server.domain.alert_workflow import SILENCE_HOURS, Action, AlertState, AlertWorkflow
from server.domain.alerts import Alerts, AlertView, RouteView
from server.domain.audit_log import AuditLog, AuditView
from server.domain.cameras import CAMERA_FILTERS, CameraPage, Cameras, CameraView
from server.domain.findings import FindingFilters, FindingPage, Findings, KevGroup
from server.domain.model_register import DeviceView, ModelRegister
from server.domain.orgs import Compliance, OrgNode, Orgs, SecurityRecord, SystemView
from server.domain.overview import Fleet, Overview, TrendPoint
from server.domain.register import REGULATIONS, ModelIn, ModelView
from server.domain.register_import import InvalidFile, RegisterImport
from server.domain.reports import Reports
from server.domain.retention import Retention, RetentionPolicies
from server.domain.scope import Invalid
from server.domain.summary import SEVERITIES
from server.domain.users import TokenView, Users, UserView
from server.reports import compliance as reports
from server.reports import document as documents
from server.storage.org_models import ALERT_KINDS, FRAMEWORKS, PLAN_STATUSES, ROLES
from server.times import zone_or
from server.web.deps import ApiScope as Scope
from server.web.deps import DbId, web_state

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CONTROL = r"^[A-Z]{2,5}-[0-9]{2}$"
TEXT = r"^[^\x00-\x1f\x7f]+$"  # printable: no control characters (PostgreSQL refuses NUL)
AgentId = Annotated[str, Path(pattern=NAME)]
CameraId = Annotated[str, Path(pattern=NAME)]
Label = Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT)]
Password = Annotated[str, Field(min_length=10, max_length=256)]


def _choice(values: tuple[str, ...]) -> str:
    return "^(" + "|".join(values) + ")$"


class Me(BaseModel):
    user_id: int
    username: str
    role: str
    org_unit_id: int | None
    lang: str | None


class OrgCreate(BaseModel):
    parent_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None
    kind: Annotated[str, Field(pattern=_choice(("province", "ministry", "agency", "system")))]
    name: Label


class SiteMap(BaseModel):
    system_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    name: Label | None = None


class SecurityRecordIn(BaseModel):
    framework: Annotated[str, Field(pattern=_choice(FRAMEWORKS))]
    level: Annotated[int, Field(ge=1, le=5)]
    decision_number: Annotated[str, Field(max_length=64, pattern=TEXT)] | None = None
    decision_date: date | None = None
    plan_status: Annotated[str, Field(pattern=_choice(PLAN_STATUSES))]
    next_check_due: date | None = None


class UserCreate(BaseModel):
    username: Annotated[str, Field(pattern=NAME)]
    password: Password
    role: Annotated[str, Field(pattern=_choice(ROLES))]
    org_unit_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None


class PasswordChange(BaseModel):
    password: Password


class TokenCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=TEXT)]


class TokenCreated(BaseModel):
    token: str  # shown once; only its hash is stored
    info: TokenView


class RetentionIn(BaseModel):
    raw_reports_days: Annotated[int, Field(ge=1, le=36500)]


class ModelEntryIn(BaseModel):
    vendor: Annotated[str, Field(min_length=1, max_length=128, pattern=TEXT)]
    model: Annotated[str, Field(min_length=1, max_length=128, pattern=TEXT)]
    hardware_id: Annotated[str, Field(max_length=128, pattern=TEXT)] | None = None
    certificate_number: Annotated[str, Field(max_length=64, pattern=TEXT)] | None = None
    certificate_issuer: Annotated[str, Field(max_length=200, pattern=TEXT)] | None = None
    certificate_date: date | None = None
    flagged: bool = False
    flag_reason: Annotated[str, Field(max_length=512, pattern=TEXT)] | None = None
    flag_reference: Annotated[str, Field(max_length=200, pattern=TEXT)] | None = None
    firmware: Annotated[str, Field(max_length=128, pattern=TEXT)] | None = None
    regulation: Annotated[str, Field(pattern=_choice(REGULATIONS))] | None = None


class LineErrorOut(BaseModel):
    line: int  # 1: the header
    code: str  # the message catalogue's register.e.<code>
    params: dict[str, str | int]


class ImportOut(BaseModel):
    sha256: str
    errors: list[LineErrorOut] = []
    applied: bool = False
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    removed: int = 0

    @classmethod
    def refused(cls, digest: str, errors: list[csvtable.LineError]) -> ImportOut:
        found = [LineErrorOut(line=e.line, code=e.code, params=e.params) for e in errors]
        return cls(sha256=digest, errors=found)


def read_upload(file: UploadFile, limit: int) -> bytes:
    """An uploaded file's bytes, refused past ``limit``."""
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise Invalid(f"the file is larger than {limit // 1024} KiB")
    return data


def previewed(content: str, sha256: str) -> bytes:
    """The file a preview page sends back with its confirmation (base64 in a hidden field),
    refused unless it is whole and the very file previewed (``sha256``, hex)."""
    try:
        data = base64.b64decode(content, validate=True)
    except ValueError as exc:
        raise Invalid("the previewed file did not come back whole") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise Invalid("the file differs from the one previewed")
    return data


class AlertActionIn(BaseModel):
    hours: Annotated[int, Field(ge=1, le=max(SILENCE_HOURS))] | None = None  # silence
    assignee_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None  # assign


class RouteIn(BaseModel):
    org_unit_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=TEXT)]
    channel: Literal["webhook", "email"]
    # a http(s) URL, or comma-separated e-mail addresses
    target: Annotated[str, Field(min_length=3, max_length=512, pattern=r"^[^\x00-\x20\x7f]+$")]
    kinds: Annotated[
        list[Literal["finding", "silent", "audit"]], Field(min_length=1, max_length=3)
    ] = list(ALERT_KINDS)


class RouteCreated(BaseModel):
    secret: str | None  # the webhook's HMAC-SHA256 key, shown once
    info: RouteView


def router(config: WebConfig) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["dashboard"])
    created = status.HTTP_201_CREATED

    @api.get("/me")
    def me(s: Scope) -> Me:
        return Me(
            user_id=s.p.user_id,
            username=s.p.username,
            role=s.p.role,
            org_unit_id=s.p.org_unit_id,
            lang=s.p.lang,
        )

    @api.get("/fleet")
    def fleet(s: Scope) -> Fleet:
        return Overview(s).fleet()

    @api.get("/orgs")
    def orgs(s: Scope) -> list[OrgNode]:
        return Orgs(s).org_tree()

    @api.get("/orgs/{org_id}")
    def org(s: Scope, org_id: DbId) -> OrgNode:
        return Orgs(s).org(org_id)

    @api.post("/orgs", status_code=created)
    def create_org(s: Scope, body: OrgCreate) -> OrgNode:
        return Orgs(s).create_org(parent_id=body.parent_id, kind=body.kind, name=body.name)

    @api.put("/sites/{site}")
    def map_site(s: Scope, site: Annotated[str, Path(pattern=NAME)], body: SiteMap) -> OrgNode:
        return Orgs(s).map_site(site, body.system_id, body.name)

    @api.get("/compliance")
    def compliance(s: Scope) -> Compliance:
        return Orgs(s).compliance()

    @api.get("/systems")
    def systems(s: Scope) -> list[SystemView]:
        return Orgs(s).systems()

    @api.get("/systems/{system_id}")
    def system(s: Scope, system_id: DbId) -> SystemView:
        return Orgs(s).system(system_id)

    @api.put("/systems/{system_id}/security")
    def set_security(s: Scope, system_id: DbId, body: SecurityRecordIn) -> SystemView:
        return Orgs(s).set_security_record(system_id, SecurityRecord(**body.model_dump()))

    @api.get("/findings")
    def findings(
        s: Scope,
        *,
        severity: Annotated[str | None, Query(pattern=_choice(SEVERITIES))] = None,
        control: Annotated[str | None, Query(pattern=CONTROL)] = None,
        vendor: Annotated[str | None, Query(max_length=512, pattern=TEXT)] = None,
        model: Annotated[str | None, Query(max_length=512, pattern=TEXT)] = None,
        org: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        status: Annotated[
            str | None, Query(pattern=_choice(("pass", "fail", "not_applicable", "inconclusive")))
        ] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=500)] = config.page_size,
    ) -> FindingPage:
        filters = FindingFilters(severity, control, vendor, model, org, status)
        return Findings(s).findings(filters, page, per_page)

    _camera_routes(api, config)
    _report_routes(api)
    _alert_routes(api)

    @api.get("/agents")
    def agents(s: Scope) -> list[AgentView]:
        return Agents(s).agents()

    @api.get("/agents/{agent_id}")
    def agent(s: Scope, agent_id: AgentId) -> AgentView:
        return Agents(s).agent(agent_id)

    @api.post("/agents/{agent_id}/approve")
    def approve(s: Scope, agent_id: AgentId) -> AgentView:
        return Agents(s).set_agent_status(agent_id, "approve")

    @api.post("/agents/{agent_id}/revoke")
    def revoke(s: Scope, agent_id: AgentId) -> AgentView:
        return Agents(s).set_agent_status(agent_id, "revoke")

    @api.get("/users")
    def users(s: Scope) -> list[UserView]:
        return Users(s).users()

    @api.post("/users", status_code=created)
    def create_user(s: Scope, body: UserCreate) -> UserView:
        return Users(s).create_user(body.username, body.password, body.role, body.org_unit_id)

    @api.get("/users/{user_id}")
    def user(s: Scope, user_id: DbId) -> UserView:
        return Users(s).user(user_id)

    @api.post("/users/{user_id}/disable")
    def disable_user(s: Scope, user_id: DbId) -> UserView:
        return Users(s).set_user_disabled(user_id, True)

    @api.post("/users/{user_id}/enable")
    def enable_user(s: Scope, user_id: DbId) -> UserView:
        return Users(s).set_user_disabled(user_id, False)

    @api.put("/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
    def set_password(s: Scope, user_id: DbId, body: PasswordChange) -> None:
        Users(s).set_password(user_id, body.password)

    @api.get("/tokens")
    def tokens(s: Scope) -> list[TokenView]:
        return Users(s).tokens()

    @api.post("/tokens", status_code=created)
    def create_token(s: Scope, body: TokenCreate) -> TokenCreated:
        info, secret = Users(s).create_token(body.name)
        return TokenCreated(token=secret, info=info)

    @api.delete("/tokens/{token_id}")
    def revoke_token(s: Scope, token_id: DbId) -> TokenView:
        return Users(s).revoke_token(token_id)

    @api.get("/audit")
    def audit(s: Scope, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AuditView]:
        return AuditLog(s).audit(limit)

    @api.get("/retention")
    def retention(s: Scope) -> list[Retention]:
        return RetentionPolicies(s).retention()

    @api.put("/retention/{level}")
    def set_retention(
        s: Scope, level: Annotated[int, Path(ge=1, le=5)], body: RetentionIn
    ) -> Retention:
        return RetentionPolicies(s).set_retention(level, body.raw_reports_days)

    _model_routes(api)

    @api.get("/controls")
    def control_catalogue(s: Scope) -> controls.Catalogue:
        """Every control with its requirement group in QCVN 11:2026/BCA (the regulation in
        force) and in QCVN 135:2024/BTTTT (replaced), and the public sources of each mapping."""
        return controls.CATALOGUE

    @api.get("/devices")
    def devices(s: Scope) -> list[DeviceView]:
        return ModelRegister(s).devices()

    @api.get("/kev")
    def kev(s: Scope) -> list[KevGroup]:
        return Findings(s).kev()

    @api.get("/trend")
    def trend(s: Scope, days: Annotated[int, Query(ge=1, le=366)] = 30) -> list[TrendPoint]:
        return Overview(s).trend(days)

    return api


def _alert_routes(api: APIRouter) -> None:
    """Alerts, their handling, and the routes they are sent through."""
    created = status.HTTP_201_CREATED

    @api.get("/alerts")
    def alerts(s: Scope, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AlertView]:
        return Alerts(s).alerts(limit)

    @api.post("/alerts/{event_id}/{action}")
    def alert_action(
        s: Scope, event_id: DbId, action: Action, body: AlertActionIn | None = None
    ) -> AlertState:
        """Acknowledge, silence (``hours``), end the silence, or assign (``assignee_id``, none:
        nobody); answers the alert's handling with its history."""
        given = body or AlertActionIn()
        return AlertWorkflow(s).act(event_id, action, hours=given.hours, assignee=given.assignee_id)

    @api.get("/alert-routes")
    def alert_routes(s: Scope) -> list[RouteView]:
        return Alerts(s).alert_routes()

    @api.post("/alert-routes", status_code=created)
    def create_alert_route(s: Scope, body: RouteIn) -> RouteCreated:
        info, secret = Alerts(s).create_alert_route(
            org_unit_id=body.org_unit_id,
            name=body.name,
            channel=body.channel,
            target=body.target,
            kinds=list(body.kinds),
        )
        return RouteCreated(secret=secret, info=info)

    @api.delete("/alert-routes/{route_id}", status_code=status.HTTP_204_NO_CONTENT)
    def delete_alert_route(s: Scope, route_id: DbId) -> None:
        Alerts(s).delete_alert_route(route_id)


def _camera_routes(api: APIRouter, config: WebConfig) -> None:
    @api.get("/cameras")
    def cameras(
        s: Scope,
        *,
        audit: Annotated[str | None, Query(pattern=_choice(CAMERA_FILTERS))] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=500)] = config.page_size,
    ) -> CameraPage:
        """Cameras in scope with their audit state; ``audit=not_audited_any``: every camera
        whose audit did not complete."""
        return Cameras(s).cameras(audit, page, per_page)

    @api.get("/cameras/{agent_id}/{camera_id}")
    def camera(s: Scope, agent_id: AgentId, camera_id: CameraId) -> CameraView:
        return Cameras(s).camera(agent_id, camera_id)


def _model_routes(api: APIRouter) -> None:
    """The certified-model register: national reference data, every user reads it."""
    created = status.HTTP_201_CREATED

    @api.get("/models")
    def models(s: Scope) -> list[ModelView]:
        return ModelRegister(s).model_register()

    @api.post("/models", status_code=created)
    def create_model(s: Scope, body: ModelEntryIn) -> ModelView:
        return ModelRegister(s).save_model(ModelIn(**body.model_dump()))

    @api.put("/models/{model_id}")
    def update_model(s: Scope, model_id: DbId, body: ModelEntryIn) -> ModelView:
        return ModelRegister(s).save_model(ModelIn(**body.model_dump()), model_id)

    @api.get(
        "/models/export",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}},
    )
    def export_models(s: Scope) -> Response:
        """The register as CSV, in the columns the import reads; also the dashboard's download
        link (a session cookie is enough for a GET)."""
        return Response(
            register.to_csv(ModelRegister(s).model_register()),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="model-register.csv"'},
        )

    @api.post("/models/import")
    def import_models(
        s: Scope, file: UploadFile, *, apply: bool = False, replace: bool = False
    ) -> ImportOut:
        """Check a register CSV and say what it would change (line-numbered errors, if any);
        with ``apply=true`` write it in one transaction (``replace=true``: entries not in the
        file are removed). Whole-fleet administrators only."""
        importer = RegisterImport(s)
        data = read_upload(file, register.CSV_MAX_BYTES)
        digest = hashlib.sha256(data).hexdigest()
        if apply:
            try:
                done = importer.apply(data, replace=replace)
            except InvalidFile as exc:
                return ImportOut.refused(digest, exc.errors)
        else:
            preview = importer.preview(data)
            if preview.plan is None:
                return ImportOut.refused(digest, preview.errors)
            done = preview.plan
        return ImportOut(
            sha256=digest,
            applied=apply,
            added=done.count("add"),
            replaced=done.count("replace"),
            unchanged=done.count("same"),
            removed=len(done.removed) if replace else 0,
        )

    @api.delete("/models/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
    def delete_model(s: Scope, model_id: DbId) -> None:
        ModelRegister(s).delete_model(model_id)


MAX_PERIOD = timedelta(days=3660)
# a form sends a field left empty as "": that is left out too
_Field = Annotated[str, Query(max_length=documents.FIELD_MAX, pattern=r"^[^\x00-\x1f\x7f]*$")]


def letterhead(
    *,
    issuer: _Field | None = None,
    governing: _Field | None = None,
    number: _Field | None = None,
    place: _Field | None = None,
    addressee: _Field | None = None,
    recipient: Annotated[list[str] | None, Query()] = None,
    signer_title: _Field | None = None,
    signer_name: _Field | None = None,
) -> documents.Letterhead:
    """The document's letterhead from the request (what is left out stays dots to fill in)."""
    recipients = tuple(r.strip() for r in recipient or () if r.strip())
    if len(recipients) > documents.RECIPIENTS_MAX:
        raise Invalid(f"at most {documents.RECIPIENTS_MAX} recipients")
    if any(len(r) > documents.FIELD_MAX or not re.match(TEXT, r) for r in recipients):
        raise Invalid("a recipient has control characters or is too long")
    return documents.Letterhead(
        issuing_body=_given(issuer),
        governing_body=_given(governing),
        number=_given(number),
        place=_given(place),
        addressee=_given(addressee),
        recipients=recipients,
        signer_title=_given(signer_title),
        signer_name=_given(signer_name),
    )


def _given(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


Head = Annotated[documents.Letterhead, Depends(letterhead)]


def _report_routes(api: APIRouter) -> None:
    @api.get(
        "/reports/compliance",
        response_class=Response,
        responses={200: {"content": {m.split(";")[0]: {} for m in documents.MEDIA.values()}}},
    )
    def compliance_report(
        request: Request,
        s: Scope,
        head: Head,
        *,
        org: Annotated[int, Query(ge=1, le=2**31 - 1)],
        start: Annotated[date, Query(alias="from")],
        end: Annotated[date, Query(alias="to")],
        format: reports.Format = "pdf",
        lang: Literal["vi", "en"] = "vi",
    ) -> Response:
        """The compliance report of an organisation unit's subtree for a period (UTC days): the
        document sent upward (``pdf``, or ``docx`` to edit before signing; the letterhead from
        the optional parameters, dots where left out), or machine-readable CSV (``csv``: one
        row per unit; ``csv-summary``: the totals as key, value); also the dashboard's download
        form (a session cookie is enough for a GET)."""
        if end - start > MAX_PERIOD:
            raise Invalid("the period is longer than ten years")
        report = reports.build(Reports(s).report_data(org, start, end))
        systems = Orgs(s).systems() if format in ("pdf", "docx") else []
        catalogue = web_state(request).catalogue
        zone = zone_or(report.data.zone, web_state(request).config.zone())
        body = documents.render(report, systems, head, catalogue, lang=lang, fmt=format, zone=zone)
        name = reports.filename(report, format)
        return Response(
            body,
            media_type=documents.MEDIA[format],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
