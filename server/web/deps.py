"""Request state, dependencies and error handlers of the dashboard and operator API.

The dependencies here turn a request into a ``Scope`` (the one enforcement layer); routes in
``server.web.api`` and ``server.web.pages`` receive nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException, Path, Request, Security, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment

from protocol.remediation import REMEDIES
from server.config import WebConfig
from server.domain.auth import Authenticator
from server.domain.orgs import zone_name
from server.domain.scope import Forbidden, Invalid, NotVisible, Principal, Scope
from server.domain.security import same
from server.storage import Repository
from server.times import utc_offset, when, zone_or
from server.web.i18n import LANGS, Catalogue

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LANG_COOKIE = "cw_lang"
LOGIN_COOKIE = "cw_login"  # double-submit token of the login and language forms
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class LoginRequired(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class CsrfRejected(Exception):
    pass


@dataclass(frozen=True, slots=True)
class WebState:
    repo: Repository
    config: WebConfig
    auth: Authenticator
    catalogue: Catalogue
    templates: Environment

    def now(self) -> datetime:
        return datetime.now(UTC)

    def scoped(self, principal: Principal, now: datetime) -> Scope:
        return Scope(
            self.repo,
            principal,
            silent_after=timedelta(seconds=self.config.silent_after_s),
            now=now,
        )

    def zone(self, principal: Principal | None) -> ZoneInfo:
        """The zone pages show times in: that of the principal's organisation unit (its own or
        inherited), the collector's for whole-fleet users and before sign-in."""
        path = principal.org_path if principal else None
        return zone_or(zone_name(self.repo.engine, path), self.config.zone())

    def secure(self, request: Request) -> bool:
        """Whether cookies get ``Secure``: the request came over TLS (the scheme a trusted proxy
        forwarded counts, see ``http.trusted_proxies``), or the config says so."""
        return self.config.cookie_secure or request.url.scheme == "https"

    def lang(self, request: Request, principal: Principal | None) -> str:
        if principal is not None and principal.lang in LANGS:
            return principal.lang
        cookie = request.cookies.get(LANG_COOKIE)
        return cookie if cookie in LANGS else self.config.default_lang

    def render(
        self,
        request: Request,
        principal: Principal | None,
        template: str,
        status_code: int = 200,
        csrf: str | None = None,  # the login form's token before its cookie is set
        **context: Any,
    ) -> HTMLResponse:
        lang = self.lang(request, principal)
        t = self.catalogue.bound(lang)

        def finding(
            code: str, evidence: dict[str, Any], reason: str | None = None, vendor: Any = None
        ) -> Any:
            shown = vendor if isinstance(vendor, str) else None
            return self.catalogue.finding(lang, code, evidence, reason, shown)

        def evidence_label(key: str) -> str:
            return self.catalogue.evidence_label(lang, key)

        def detail_label(key: str) -> str:
            return self.catalogue.detail_label(lang, key)

        zone = self.zone(principal)

        def shown_when(value: datetime | date | None) -> str:
            return when(value, lang, zone)

        html = self.templates.get_template(template).render(
            request=request,
            principal=principal,
            lang=lang,
            langs=LANGS,
            t=t,
            finding=finding,
            evidence_label=evidence_label,
            detail_label=detail_label,
            when=shown_when,
            remediable=REMEDIES,  # finding codes a plan can fix ("Fix" links)
            zone=f"{zone.key} ({utc_offset(zone, self.now())})",
            csrf=csrf or (principal.csrf if principal else request.cookies.get(LOGIN_COOKIE, "")),
            **context,
        )
        response = HTMLResponse(html, status_code)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


Web = Annotated[WebState, Depends(web_state)]
_bearer = HTTPBearer(auto_error=False, description="API token (camwarden-server tokens / UI)")
_csrf_header = APIKeyHeader(
    name="X-CSRF-Token", auto_error=False, description="needed with the session cookie on writes"
)


def api_scope(
    request: Request,
    web: Web,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    csrf: Annotated[str | None, Security(_csrf_header)],
) -> Scope:
    """An API token, or the session cookie (plus the CSRF header on writes)."""
    now = web.now()
    if bearer is not None:
        principal = web.auth.from_token(bearer.credentials, now)
    else:
        principal = session_principal(request, web)
        unsafe = request.method not in SAFE_METHODS
        if principal is not None and unsafe and not (principal.csrf and csrf):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing CSRF token")
        if principal is not None and unsafe and not same(csrf or "", principal.csrf or ""):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong CSRF token")
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "log in or send an API token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return web.scoped(principal, now)


def session_principal(request: Request, web: WebState) -> Principal | None:
    session = request.cookies.get(web.config.cookie_name)
    return web.auth.from_session(session, web.now()) if session else None


def page_scope(request: Request, web: Web) -> Scope:
    principal = session_principal(request, web)
    if principal is None:
        raise LoginRequired(request.url.path)
    return web.scoped(principal, web.now())


async def form_scope(request: Request, web: Web) -> Scope:
    """A page POST: logged in, and the form's ``csrf`` field matches the session's token."""
    scoped = page_scope(request, web)
    form = await request.form()
    token = form.get("csrf")
    if not (isinstance(token, str) and scoped.p.csrf and same(token, scoped.p.csrf)):
        raise CsrfRejected
    return scoped


ApiScope = Annotated[Scope, Depends(api_scope)]
DbId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # a row id in a URL
PageScope = Annotated[Scope, Depends(page_scope)]
FormScope = Annotated[Scope, Depends(form_scope)]

_STATUS: dict[type[Exception], int] = {NotVisible: 404, Forbidden: 403, Invalid: 422}
_MESSAGE: dict[type[Exception], str] = {
    NotVisible: "error.not_found",
    Forbidden: "error.forbidden",
    Invalid: "error.invalid",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def install_handlers(app: FastAPI) -> None:
    async def scope_error(request: Request, exc: Exception) -> Response:
        kind = next(k for k in _STATUS if isinstance(exc, k))  # Invalid has subclasses
        code = _STATUS[kind]
        web = web_state(request)
        principal = session_principal(request, web)
        lang = web.lang(request, principal)
        key = getattr(exc, "key", None)  # an error with its own text in the catalogue
        params = getattr(exc, "params", {})
        detail = web.catalogue.t(lang, key, **params) if isinstance(key, str) else str(exc)
        if _is_api(request):
            if isinstance(key, str):  # the text, and the stable code with its values
                return JSONResponse({"detail": detail, "code": key, "params": params}, code)
            return JSONResponse({"detail": str(exc)}, code)
        message = web.catalogue.t(lang, _MESSAGE[kind], detail=detail)
        return web.render(request, principal, "error.html", code, message=message)

    async def login_required(request: Request, exc: Exception) -> Response:
        path = exc.path if isinstance(exc, LoginRequired) else "/"
        return RedirectResponse(f"/login?next={quote(path)}", status.HTTP_303_SEE_OTHER)

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        web = web_state(request)
        principal = session_principal(request, web)
        message = web.catalogue.t(web.lang(request, principal), "error.csrf")
        return web.render(request, principal, "error.html", 403, message=message)

    for kind in (NotVisible, Forbidden, Invalid):
        app.add_exception_handler(kind, scope_error)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(CsrfRejected, csrf_rejected)
