"""Server-rendered dashboard pages (Jinja2, no JavaScript): every form is a POST with CSRF."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.queries import SEVERITIES
from server.web.deps import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    FormScope,
    PageScope,
    Web,
    session_principal,
)
from server.web.scope import FindingFilters, Invalid
from server.web.security import new_secret, same

STATUSES = ("fail", "inconclusive", "not_applicable", "pass")
_CONTROL = re.compile(r"^[A-Z]{2,5}-[0-9]{2}$")
_LOCAL = re.compile(r"^/(?![/\\])[A-Za-z0-9/_.?=&%-]*$")


def _local(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirects)."""
    return target if target and _LOCAL.match(target) else "/"


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


def router() -> APIRouter:
    pages = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @pages.get("/login")
    def login_form(request: Request, web: Web, next: str = "/") -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or new_secret()
        response = web.render(request, None, "login.html", csrf=token, next=_local(next))
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=web.config.cookie_secure
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
        result = (
            web.auth.login(username, password, web.now())
            if expected and same(csrf, expected)
            else None
        )
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
            secure=web.config.cookie_secure,
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
            web.scoped(principal, web.now()).set_language(lang)
        response = _see(_local(next))
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", max_age=365 * 86400)
        return response

    @pages.get("/")
    def overview(request: Request, web: Web, s: PageScope) -> Response:
        fleet = s.fleet()
        peak = max([1, *fleet.failing.values()])
        return web.render(
            request, s.p, "overview.html", fleet=fleet, peak=peak, severities=SEVERITIES
        )

    @pages.get("/compliance")
    def compliance(request: Request, web: Web, s: PageScope) -> Response:
        return web.render(request, s.p, "compliance.html", c=s.compliance(), severities=SEVERITIES)

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
        result = s.findings(filters, page, web.config.page_size)
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
            facets=s.facets(),
            orgs=s.org_tree(),
            severities=SEVERITIES,
            statuses=STATUSES,
        )

    @pages.get("/cameras/{agent_id}/{camera_id}")
    def camera(request: Request, web: Web, s: PageScope, agent_id: str, camera_id: str) -> Response:
        return web.render(request, s.p, "camera.html", cam=s.camera(agent_id, camera_id))

    @pages.get("/agents")
    def agents(request: Request, web: Web, s: PageScope, changed: str = "") -> Response:
        rows = s.agents()
        done = next((a for a in rows if a.agent_id == changed), None)
        return web.render(request, s.p, "agents.html", agents=rows, done=done)

    @pages.post("/agents/{agent_id}/{action}")
    def agent_action(s: FormScope, agent_id: str, action: str) -> Response:
        if action not in ("approve", "revoke"):
            raise Invalid(f"unknown action {action}")
        s.set_agent_status(agent_id, "approve" if action == "approve" else "revoke")
        return _see(f"/agents?changed={agent_id}")

    return pages
