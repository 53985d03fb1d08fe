"""Server-rendered dashboard pages (Jinja2, no JavaScript): every form is a POST with CSRF."""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Annotated, Literal, Protocol, TypeVar

from fastapi import APIRouter, Form, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.domain import controls, register
from server.domain.agents import Agents
from server.domain.alert_workflow import SILENCE_HOURS, AlertWorkflow
from server.domain.alerts import Alerts
from server.domain.audit_log import AuditLog
from server.domain.camera_page import summarise
from server.domain.cameras import CAMERA_FILTERS, Cameras
from server.domain.compliance import approval, overall, progress
from server.domain.findings import FindingFilters, Findings
from server.domain.model_register import ModelRegister
from server.domain.orgs import Orgs, SecurityRecord
from server.domain.overview import Overview
from server.domain.recorders import Recorders
from server.domain.register import ModelIn
from server.domain.register_import import RegisterImport
from server.domain.scope import Invalid, NotVisible, Scope
from server.domain.security import new_secret, same
from server.domain.summary import SEVERITIES
from server.domain.throttle import Throttled
from server.domain.users import Users
from server.reports import compliance as reports
from server.storage.org_models import FRAMEWORKS, LEVELS, PLAN_STATUSES, ROLES
from server.web.api import previewed, read_upload
from server.web.confirm import Confirm, confirm_then
from server.web.deps import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    DbId,
    FormScope,
    PageScope,
    Web,
    WebState,
    session_principal,
)
from server.web.survey_pages import survey_pages

STATUSES = ("fail", "inconclusive", "not_applicable", "pass")
INV02 = ("certified", "flagged", "uncertified")
TREND_DAYS = 30
KEV_SHOWN = 100  # cameras listed per CVE on the page (the API lists all)
_CONTROL = re.compile(r"^[A-Z]{2,5}-[0-9]{2}$")
_LOCAL = re.compile(r"^/(?![/\\])[A-Za-z0-9/_.?=&%-]*$")


def _local(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirects)."""
    return target if target and _LOCAL.match(target) else "/"


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


def router() -> APIRouter:
    pages = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    _session_pages(pages)

    @pages.get("/")
    def overview(request: Request, web: Web, s: PageScope) -> Response:
        fleet = Overview(s).fleet()
        peak = max([1, *fleet.failing.values()])
        trend = Overview(s).trend(TREND_DAYS)
        trend_peak = max([1, *(p.open_findings[v] for p in trend for v in ("critical", "high"))])
        return web.render(
            request,
            s.p,
            "overview.html",
            fleet=fleet,
            peak=peak,
            severities=SEVERITIES,
            trend=trend,
            trend_peak=trend_peak,
        )

    @pages.get("/compliance")
    def compliance(request: Request, web: Web, s: PageScope, saved: str = "") -> Response:
        c = Orgs(s).compliance()
        lang = web.lang(request, s.p)
        return web.render(
            request,
            s.p,
            "compliance.html",
            c=c,
            severities=SEVERITIES,
            headline=reports.approval_sentence(
                approval(v.record for v in c.systems), web.catalogue, lang
            ),
            progress=progress(c.orgs),
            overdue=[v for v in c.systems if v.overdue],
            total=overall(
                [o.counts for o in c.orgs if o.node.depth == 0]
                + ([c.unassigned] if c.unassigned else [])
            ),
            editable=s.p.has("admin"),
            frameworks=FRAMEWORKS,
            plans=PLAN_STATUSES,
            levels=LEVELS,
            saved=_org_id(saved),
            catalogue=controls.CATALOGUE,
        )

    @pages.post("/systems/{system_id}/security")
    def set_security(
        s: FormScope,
        system_id: int,
        *,
        framework: Annotated[str, Form(pattern=_choice(FRAMEWORKS))],
        level: Annotated[int, Form(ge=1, le=5)],
        plan_status: Annotated[str, Form(pattern=_choice(PLAN_STATUSES))],
        decision_number: Annotated[str, Form(max_length=64)] = "",
        decision_date: Annotated[str, Form(max_length=10)] = "",
        next_check_due: Annotated[str, Form(max_length=10)] = "",
    ) -> Response:
        record = SecurityRecord(
            framework,
            level,
            _opt(decision_number),
            _day(decision_date, "the decision date"),
            plan_status,
            _day(next_check_due, "the next check date"),
        )
        Orgs(s).set_security_record(system_id, record)
        return _see(f"/compliance?saved={system_id}#system-{system_id}")

    @pages.get("/findings")
    def findings(
        request: Request,
        web: Web,
        s: PageScope,
        *,
        severity: str = "",
        control: str = "",
        vendor: str = "",
        model: str = "",
        org: str = "",
        status: str = "fail",
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> Response:
        filters = FindingFilters(
            severity=severity if severity in SEVERITIES else None,
            control=control if _CONTROL.match(control) else None,
            vendor=vendor[:512] or None,
            model=model[:512] or None,
            org=int(org) if org.isdigit() and int(org) < 2**31 else None,
            status=status if status in STATUSES else None,
        )
        result = Findings(s).findings(filters, page, web.config.page_size)
        query = {
            "severity": severity,
            "control": control,
            "vendor": vendor,
            "model": model,
            "org": org,
            "status": status,
        }
        return web.render(
            request,
            s.p,
            "findings.html",
            result=result,
            f=filters,
            query=query,
            facets=Findings(s).facets(),
            orgs=Orgs(s).org_tree(),
            severities=SEVERITIES,
            statuses=STATUSES,
            # their findings may be missing: the list alone must not look clean
            not_audited=Cameras(s).cameras_not_audited(),
        )

    @pages.get("/cameras")
    def cameras(
        request: Request,
        web: Web,
        s: PageScope,
        *,
        audit: str = "",
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> Response:
        state = audit if audit in CAMERA_FILTERS else None
        return web.render(
            request,
            s.p,
            "cameras.html",
            result=Cameras(s).cameras(state, page, web.config.page_size),
            audit=state or "",
            states=CAMERA_FILTERS,
        )

    @pages.get("/cameras/{agent_id}/{camera_id}")
    def camera(
        request: Request, web: Web, s: PageScope, agent_id: str, camera_id: str, *, queued: str = ""
    ) -> Response:
        cam = Cameras(s).camera(agent_id, camera_id)
        return web.render(
            request, s.p, "camera.html", cam=cam, summary=summarise(cam), queued=queued[:64]
        )

    @pages.get("/recorders")
    def recorders(request: Request, web: Web, s: PageScope) -> Response:
        return web.render(request, s.p, "recorders.html", recorders=Recorders(s).recorders())

    @pages.get("/recorders/{agent_id}/{camera_id}")
    def recorder(
        request: Request, web: Web, s: PageScope, agent_id: str, camera_id: str
    ) -> Response:
        return web.render(
            request, s.p, "recorder.html", rec=Recorders(s).recorder(agent_id, camera_id)
        )

    @pages.get("/agents")
    def agents(
        request: Request,
        web: Web,
        s: PageScope,
        changed: Annotated[str, Query(max_length=64)] = "",
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> Response:
        result = Agents(s).agent_page(page, web.config.page_size)
        done = next(iter(Agents(s).agents(changed)), None) if changed else None
        return web.render(request, s.p, "agents.html", result=result, done=done)

    @pages.post("/agents/{agent_id}/{action}")
    def agent_action(
        request: Request,
        web: Web,
        s: FormScope,
        agent_id: str,
        action: str,
        *,
        confirm: Confirm = "",
    ) -> Response:
        if action not in ("approve", "revoke"):
            raise Invalid(f"unknown action {action}")
        return confirm_then(
            request,
            web,
            s,
            confirm,
            question="confirm.revoke_agent" if action == "revoke" else None,
            # a foreign agent: not found, not a question
            named=lambda: {"agent": Agents(s).agent(agent_id).agent_id},
            act=lambda: Agents(s).set_agent_status(
                agent_id, "approve" if action == "approve" else "revoke"
            ),
            back="/agents",
            done=f"/agents?changed={agent_id}",
        )

    _more_pages(pages)
    survey_pages(pages)
    _alert_pages(pages)
    _admin_pages(pages)
    return pages


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


_Row = TypeVar("_Row", bound=_HasId)


def _named(rows: Iterable[_Row], row_id: int, what: str) -> _Row:
    """The row ``row_id`` of what the caller sees (a confirmation names it), else not found."""
    found = next((r for r in rows if r.id == row_id), None)
    if found is None:
        raise NotVisible(f"{what} {row_id}")
    return found


def _opt(text: str) -> str | None:
    return text.strip() or None


def _regulation(text: str) -> str | None:
    if text and text not in register.REGULATIONS:
        raise Invalid(f"unknown regulation {text!r}")
    return text or None


def _choice(values: tuple[str, ...]) -> str:
    return "^(" + "|".join(values) + ")$"


def _day(text: str, what: str) -> date | None:
    """A form's ``yyyy-mm-dd`` date (what a date input sends), or None when left empty."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError as exc:
        raise Invalid(f"{what} is not a date") from exc


def _org_id(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


def _alerts_page(request: Request, web: WebState, s: Scope, secret: str | None) -> Response:
    """The alerts with who acknowledged, silenced or owns each; routes for operators."""
    shown = Alerts(s).alerts()
    orgs = Orgs(s).org_tree()
    flow = AlertWorkflow(s)
    return web.render(
        request,
        s.p,
        "alerts.html",
        alerts=shown,
        states=flow.states([a.id for a in shown]),
        people=flow.assignable() if s.p.has("operator") else [],
        silence_hours=SILENCE_HOURS,
        routes=Alerts(s).alert_routes() if s.p.has("operator") else None,
        orgs=orgs,
        org_names={o.id: o.name for o in orgs},
        secret=secret,  # shown only on the answer to the POST that made it, never from a URL
    )


def _alert_pages(pages: APIRouter) -> None:
    """Alerts, what people do with them, and the routes they are sent through."""

    @pages.get("/alerts")
    def alerts(request: Request, web: Web, s: PageScope) -> Response:
        return _alerts_page(request, web, s, secret=None)

    @pages.post("/alerts/{event_id}/{action}")
    def alert_action(
        s: FormScope,
        event_id: DbId,
        action: str,
        *,
        hours: Annotated[int, Form(ge=1, le=max(SILENCE_HOURS))] = SILENCE_HOURS[0],
        assignee: Annotated[str, Form(max_length=12)] = "",
    ) -> Response:
        AlertWorkflow(s).act(event_id, action, hours=hours, assignee=_org_id(assignee))
        return _see(f"/alerts#alert-{event_id}")

    @pages.post("/alert-routes")
    async def add_route(request: Request, web: Web, s: FormScope) -> Response:
        form = await request.form()
        kinds = [k for k in form.getlist("kinds") if isinstance(k, str)]
        fields = {k: str(form.get(k, ""))[:512] for k in ("name", "org", "channel", "target")}
        if not fields["name"] or not fields["target"]:
            raise Invalid("a route needs a name and a target")
        _, secret = Alerts(s).create_alert_route(
            org_unit_id=_org_id(fields["org"]),
            name=fields["name"][:64],
            channel=fields["channel"],
            target=fields["target"],
            kinds=kinds,
        )
        # shown once on the page that follows, as with API tokens
        return _alerts_page(request, web, s, secret=secret)

    @pages.post("/alert-routes/{route_id}/delete")
    def delete_route(
        request: Request, web: Web, s: FormScope, route_id: DbId, confirm: Confirm = ""
    ) -> Response:
        return confirm_then(
            request,
            web,
            s,
            confirm,
            question="confirm.delete_route",
            named=lambda: {"route": _named(Alerts(s).alert_routes(), route_id, "alert route").name},
            act=lambda: Alerts(s).delete_alert_route(route_id),
            back="/alerts",
        )


def _more_pages(pages: APIRouter) -> None:
    @pages.get("/models")
    def models(request: Request, web: Web, s: PageScope, imported: str = "") -> Response:
        identities = ModelRegister(s).model_counts()
        counts = {k: sum(m.cameras for m in identities if m.inv02 == k) for k in INV02}
        # one line per model as reported (the API lists every camera)
        per_model = Counter[tuple[str | None, str | None, str | None, str]]()
        for m in identities:
            per_model[m.vendor, m.model, m.hardware_id, m.inv02] += m.cameras
        editable = s.p.has("admin") and s.p.org_path is None
        return web.render(
            request,
            s.p,
            "models.html",
            register=ModelRegister(s).model_register(),
            total=sum(counts.values()),
            per_model=sorted(per_model.items(), key=lambda kv: (INV02.index(kv[0][3]), -kv[1])),
            counts=counts,
            editable=editable,
            regulations=register.REGULATIONS,
            imported=int(imported) if imported.isdigit() and len(imported) < 7 else None,
        )

    @pages.post("/models")
    def add_model(
        s: FormScope,
        *,
        vendor: Annotated[str, Form(min_length=1, max_length=128)],
        model: Annotated[str, Form(min_length=1, max_length=128)],
        hardware_id: Annotated[str, Form(max_length=128)] = "",
        certificate_number: Annotated[str, Form(max_length=64)] = "",
        certificate_issuer: Annotated[str, Form(max_length=200)] = "",
        certificate_date: Annotated[str, Form(max_length=10)] = "",
        flagged: Annotated[str, Form(max_length=1)] = "",
        flag_reason: Annotated[str, Form(max_length=512)] = "",
        firmware: Annotated[str, Form(max_length=128)] = "",
        regulation: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        cert_date = _day(certificate_date, "the certificate date")
        ModelRegister(s).save_model(
            ModelIn(
                vendor.strip(),
                model.strip(),
                _opt(hardware_id),
                _opt(certificate_number),
                _opt(certificate_issuer),
                cert_date,
                flagged == "1",
                _opt(flag_reason),
                firmware=_opt(firmware),
                regulation=_regulation(regulation),
            )
        )
        return _see("/models")

    @pages.post("/models/import")
    def preview_import(request: Request, web: Web, s: FormScope, file: UploadFile) -> Response:
        data = read_upload(file, register.CSV_MAX_BYTES)
        preview = RegisterImport(s).preview(data)
        return web.render(
            request,
            s.p,
            "models_import.html",
            preview=preview,
            content=base64.b64encode(data).decode("ascii") if preview.plan else "",
            filename=file.filename or "",
        )

    @pages.post("/models/import/apply")
    def apply_import(
        s: FormScope,
        *,
        content: Annotated[str, Form(max_length=register.CSV_MAX_BYTES * 4 // 3 + 4)],
        sha256: Annotated[str, Form(pattern=r"^[0-9a-f]{64}$")],
        replace: Annotated[str, Form(max_length=1)] = "",
    ) -> Response:
        done = RegisterImport(s).apply(previewed(content, sha256), replace=replace == "1")
        return _see(f"/models?imported={len(done.changes)}")

    @pages.post("/models/{model_id}/delete")
    def delete_model(
        request: Request, web: Web, s: FormScope, model_id: DbId, confirm: Confirm = ""
    ) -> Response:

        def named() -> dict[str, str]:
            entry = _named(ModelRegister(s).model_register(), model_id, "register entry")
            return {"model": f"{entry.vendor} {entry.model}"}

        return confirm_then(
            request,
            web,
            s,
            confirm,
            question="confirm.delete_model",
            named=named,
            act=lambda: ModelRegister(s).delete_model(model_id),
            back="/models",
        )

    @pages.get("/kev")
    def kev(request: Request, web: Web, s: PageScope) -> Response:
        groups = Findings(s).kev(KEV_SHOWN)
        devices = Findings(s).kev_cameras()
        return web.render(request, s.p, "kev.html", groups=groups, devices=devices)

    @pages.get("/reports")
    def reports_page(request: Request, web: Web, s: PageScope) -> Response:
        today = s.today
        return web.render(
            request,
            s.p,
            "reports.html",
            orgs=[o for o in Orgs(s).org_tree() if o.kind != "site"],
            start=today.replace(day=1).isoformat(),
            end=today.isoformat(),
        )

    @pages.get("/orgs")
    def orgs(request: Request, web: Web, s: PageScope) -> Response:
        return web.render(
            request, s.p, "orgs.html", orgs=Orgs(s).org_tree(), default_zone=web.config.timezone
        )

    @pages.post("/orgs/{org_id}/timezone")
    def set_org_timezone(
        s: FormScope, org_id: DbId, timezone: Annotated[str, Form(max_length=64)] = ""
    ) -> Response:
        Orgs(s).set_timezone(org_id, timezone.strip() or None)
        return _see(f"/orgs#org-{org_id}")

    @pages.post("/orgs")
    def add_org(
        s: FormScope,
        *,
        name: Annotated[str, Form(min_length=1, max_length=200)],
        kind: Annotated[str, Form(pattern="^(province|ministry|agency|system)$")],
        parent: Annotated[str, Form(max_length=12)] = "",
    ) -> Response:
        Orgs(s).create_org(parent_id=_org_id(parent), kind=kind, name=name.strip())
        return _see("/orgs")


def _admin_pages(pages: APIRouter) -> None:
    """Users, their sign-in locks, API tokens and the audit log."""

    @pages.get("/users")
    def users(request: Request, web: Web, s: PageScope) -> Response:
        listed = Users(s).users()
        orgs = Orgs(s).org_tree()
        return web.render(
            request,
            s.p,
            "users.html",
            users=listed,
            orgs=[o for o in orgs if o.kind != "site"],
            org_names={o.id: o.name for o in orgs},
            roles=ROLES,
            locks=Users(s).sign_in_locks(),
        )

    @pages.post("/users")
    def add_user(
        s: FormScope,
        *,
        username: Annotated[str, Form(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
        password: Annotated[str, Form(min_length=10, max_length=256)],
        role: Annotated[str, Form(pattern="^(viewer|operator|admin)$")],
        org: Annotated[str, Form(max_length=12)] = "",
    ) -> Response:
        Users(s).create_user(username, password, role, _org_id(org))
        return _see("/users")

    @pages.post("/sign-in-locks/unlock")
    def unlock(
        s: FormScope,
        *,
        kind: Annotated[Literal["account", "source"], Form()],
        name: Annotated[str, Form(min_length=1, max_length=64)],
    ) -> Response:
        Users(s).unlock_sign_in(kind, name)
        return _see("/users")

    @pages.post("/users/{user_id}/{action}")
    def user_action(
        request: Request,
        web: Web,
        s: FormScope,
        user_id: DbId,
        action: str,
        *,
        confirm: Confirm = "",
    ) -> Response:
        if action not in ("disable", "enable"):
            raise Invalid(f"unknown action {action}")
        return confirm_then(
            request,
            web,
            s,
            confirm,
            question="confirm.disable_user" if action == "disable" else None,
            named=lambda: {"user": Users(s).user(user_id).username},
            act=lambda: Users(s).set_user_disabled(user_id, action == "disable"),
            back="/users",
        )

    @pages.get("/tokens")
    def tokens(request: Request, web: Web, s: PageScope) -> Response:
        return web.render(request, s.p, "tokens.html", tokens=Users(s).tokens(), secret=None)

    @pages.post("/tokens")
    def add_token(
        request: Request,
        web: Web,
        s: FormScope,
        name: Annotated[str, Form(min_length=1, max_length=64)],
    ) -> Response:
        _, secret = Users(s).create_token(name.strip())
        return web.render(request, s.p, "tokens.html", tokens=Users(s).tokens(), secret=secret)

    @pages.post("/tokens/{token_id}/revoke")
    def revoke_token(
        request: Request, web: Web, s: FormScope, token_id: DbId, confirm: Confirm = ""
    ) -> Response:
        return confirm_then(
            request,
            web,
            s,
            confirm,
            question="confirm.revoke_token",
            named=lambda: {"token": _named(Users(s).tokens(), token_id, "token").name},
            act=lambda: Users(s).revoke_token(token_id),
            back="/tokens",
        )

    @pages.get("/audit")
    def audit(request: Request, web: Web, s: PageScope) -> Response:
        return web.render(request, s.p, "audit.html", entries=AuditLog(s).audit())


def _session_pages(pages: APIRouter) -> None:
    """Sign-in (throttled: server.domain.throttle), sign-out and the language choice."""

    @pages.get("/login")
    def login_form(request: Request, web: Web, next: str = "/") -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or new_secret()
        response = web.render(request, None, "login.html", csrf=token, next=_local(next))
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=web.secure(request)
        )
        return response

    @pages.post("/login")
    def login(
        request: Request,
        web: Web,
        *,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=256)],
        csrf: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        source = request.client.host if request.client else None
        try:
            result = (
                web.auth.login(username, password, web.now(), source)
                if expected and same(csrf, expected)
                else None
            )
        except Throttled as exc:
            refused = web.render(
                request,
                None,
                "login.html",
                status.HTTP_429_TOO_MANY_REQUESTS,
                next=_local(next),
                throttled=exc.retry_after,
            )
            refused.headers["Retry-After"] = exc.retry_after
            return refused
        if result is None:
            return web.render(
                request,
                None,
                "login.html",
                401,
                next=_local(next),
                csrf_login=expected,
                failed=True,
            )
        session_id, _ = result
        response = _see(_local(next))
        response.set_cookie(
            web.config.cookie_name,
            session_id,
            max_age=web.config.session_ttl_s,
            httponly=True,
            samesite="lax",
            secure=web.secure(request),
        )
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @pages.post("/logout")
    def logout(request: Request, web: Web, s: FormScope) -> Response:
        web.auth.logout(request.cookies.get(web.config.cookie_name, ""))
        response = _see("/login")
        response.delete_cookie(web.config.cookie_name)
        return response

    @pages.post("/lang")
    def set_lang(
        request: Request,
        web: Web,
        lang: Annotated[str, Form(pattern="^(vi|en)$")],
        csrf: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        principal = session_principal(request, web)
        expected = principal.csrf if principal else request.cookies.get(LOGIN_COOKIE)
        if not (expected and same(csrf, expected)):
            raise Invalid("stale form")
        if principal is not None:
            Users(web.scoped(principal, web.now())).set_language(lang)
        response = _see(_local(next))
        response.set_cookie(
            LANG_COOKIE, lang, samesite="lax", max_age=365 * 86400, secure=web.secure(request)
        )
        return response
