"""Dashboard pages of Internet providers' surveys (Directive 23/CT-TTg): prefixes, progress per
survey agent with the time left, the subscriber map's import, notices and the report upward.

No script: every action is a form POST with CSRF; the tenancy and the roles are the domain's.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, UploadFile, status
from fastapi.responses import RedirectResponse, Response
from pydantic import Field

from server.domain.notices import MOVES, Notices
from server.domain.orgs import Orgs
from server.domain.subscriber_map import MAP_CODES, TABLE
from server.domain.survey import SCHEDULE_DAYS, Surveys
from server.domain.survey_report import SurveyReports
from server.reports.document import MEDIA
from server.reports.survey import SurveyFormat, notice_text, render
from server.web.api import Head, previewed, read_upload
from server.web.deps import DbId, FormScope, PageScope, Web

_Prefix = Annotated[str, Form(min_length=1, max_length=64)]
# the survey agents ticked on a form (none: all of the provider's)
_Agents = Annotated[list[Annotated[str, Field(max_length=64)]] | None, Form(max_length=256)]


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


def line_error_key(code: str) -> str:
    """The catalogue key of a line error of the subscriber map."""
    return f"survey.e.{code}" if code in MAP_CODES else f"register.e.{code}"


def survey_pages(pages: APIRouter) -> None:  # one function per route
    @pages.get("/surveys")
    def surveys(request: Request, web: Web, s: PageScope) -> Response:
        orgs = [o for o in Orgs(s).org_tree() if o.kind not in ("site", "system")]
        # the survey agents the forms offer, each under the deepest provider it serves (the
        # tree lists a unit before the units under it)
        offered: dict[str, str] = {}
        if s.p.has("operator"):
            for o in orgs:
                offered.update(dict.fromkeys(Surveys(s).survey_agents(o.id), o.name))
        return web.render(
            request,
            s.p,
            "surveys.html",
            surveys=Surveys(s).surveys(),
            survey_agents=sorted(offered.items()),
            prefixes=Surveys(s).prefixes(),
            lists=Surveys(s).list_entries(),
            schedules=Surveys(s).schedules(),
            orgs=orgs,
            names={o.id: o.name for o in orgs},
        )

    @pages.post("/surveys/prefixes")
    def add_prefix(s: FormScope, *, org: Annotated[int, Form(ge=1)], prefix: _Prefix) -> Response:
        Surveys(s).declare_prefix(org, prefix)
        return _see("/surveys")

    @pages.post("/surveys/prefixes/{prefix_id}/delete")
    def remove_prefix(s: FormScope, prefix_id: DbId) -> Response:
        Surveys(s).remove_prefix(prefix_id)
        return _see("/surveys")

    @pages.post("/surveys/lists")
    def add_to_list(
        s: FormScope,
        *,
        org: Annotated[int, Form(ge=1)],
        kind: Annotated[Literal["exclude", "opt_out"], Form()],
        prefix: _Prefix,
    ) -> Response:
        Surveys(s).add_to_list(org, kind, prefix)
        return _see("/surveys")

    @pages.post("/surveys/lists/{entry_id}/delete")
    def remove_from_list(s: FormScope, entry_id: DbId) -> Response:
        Surveys(s).remove_from_list(entry_id)
        return _see("/surveys")

    @pages.post("/surveys/schedule")
    def schedule(
        s: FormScope,
        *,
        org: Annotated[int, Form(ge=1)],
        every_days: Annotated[int, Form(ge=SCHEDULE_DAYS[0], le=SCHEDULE_DAYS[1])],
        agents: _Agents = None,
    ) -> Response:
        Surveys(s).set_schedule(org, every_days, agents or None)
        return _see("/surveys")

    @pages.post("/surveys/start")
    def start(s: FormScope, *, org: Annotated[int, Form(ge=1)], agents: _Agents = None) -> Response:
        """None ticked: every approved survey agent of the provider, as on the command line."""
        return _see(f"/surveys/{Surveys(s).start(org, agents or None)}")

    @pages.get("/surveys/{survey_id}")
    def survey(request: Request, web: Web, s: PageScope, survey_id: DbId) -> Response:
        return web.render(
            request,
            s.p,
            "survey.html",
            survey=Surveys(s).survey(survey_id),
            notices=Notices(s).notices(survey_id),
            moves=MOVES,
        )

    @pages.get("/surveys/{survey_id}/report")
    def report(
        request: Request,
        web: Web,
        s: PageScope,
        head: Head,
        survey_id: DbId,
        *,
        format: SurveyFormat = "pdf",
        lang: Literal["vi", "en"] = "vi",
    ) -> Response:
        body = render(
            SurveyReports(s).survey_report(survey_id), head, web.catalogue, lang=lang, fmt=format
        )
        name = f"survey-{survey_id}.{format}"
        return Response(
            body,
            media_type=MEDIA[format],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @pages.get("/surveys/notices/{notice_id}")
    def notice(request: Request, web: Web, s: PageScope, notice_id: DbId) -> Response:
        found = Notices(s).notice(notice_id)
        return web.render(
            request,
            s.p,
            "notice.html",
            notice=found,
            texts={lang: notice_text(found, web.catalogue, lang) for lang in ("vi", "en")},
            moves=MOVES,
        )

    @pages.post("/surveys/notices/{notice_id}")
    def move_notice(
        s: FormScope, notice_id: DbId, *, state: Annotated[str, Form(max_length=16)]
    ) -> Response:
        moved = Notices(s).move_notice(notice_id, state)
        return _see(f"/surveys/{moved.survey_id}")

    @pages.post("/surveys/subscribers")
    def preview_map(
        request: Request, web: Web, s: FormScope, org: Annotated[int, Form(ge=1)], file: UploadFile
    ) -> Response:
        data = read_upload(file, TABLE.max_bytes)
        preview = Notices(s).preview_map(org, data)
        return web.render(
            request,
            s.p,
            "survey_map.html",
            preview=preview,
            org=org,
            content=base64.b64encode(data).decode("ascii") if not preview.errors else "",
            filename=file.filename or "",
            error_key=line_error_key,
        )

    @pages.post("/surveys/subscribers/apply")
    def apply_map(
        s: FormScope,
        *,
        org: Annotated[int, Form(ge=1)],
        content: Annotated[str, Form(max_length=TABLE.max_bytes * 4 // 3 + 4)],
        sha256: Annotated[str, Form(pattern=r"^[0-9a-f]{64}$")],
    ) -> Response:
        Notices(s).apply_map(org, previewed(content, sha256))
        return _see("/surveys")
