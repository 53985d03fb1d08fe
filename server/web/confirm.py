"""A second step before a destructive action (revoke, halt, delete, disable), without script.

The action's form posts once; without ``confirm=yes`` the answer is a page that names what is
about to happen and repeats the POST with ``confirm=yes`` and the same CSRF token, or goes back.
A GET never changes anything, so a link cannot trigger the action. ``confirm_then`` is the
whole pattern for a route: ask when the action needs it and the answer is not yet given, else
act and go on with a 303.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final

from fastapi import Form, Request, status
from fastapi.responses import RedirectResponse, Response

from server.domain.scope import Scope
from server.web.deps import WebState

CONFIRMED: Final = "yes"
Confirm = Annotated[str, Form(max_length=3)]  # the form field a confirmation page sends


def ask(
    request: Request, web: WebState, s: Scope, back: str, question: str, **values: Any
) -> Response:
    """The confirmation page for the POST being answered: ``question`` is a catalogue key."""
    return web.render(
        request,
        s.p,
        "confirm.html",
        question=web.catalogue.t(web.lang(request, s.p), question, **values),
        action=request.url.path,
        back=back,
        confirmed=CONFIRMED,
    )


def confirm_then(
    request: Request,
    web: WebState,
    s: Scope,
    confirm: str,
    *,
    question: str | None,
    named: Callable[[], Mapping[str, Any]],
    act: Callable[[], object],
    back: str,
    done: str | None = None,
) -> Response:
    """A route's confirm-then-act: with ``question`` (a catalogue key; None: the action needs no
    confirmation) and no ``confirm=yes``, the confirmation page, its values from ``named`` (read
    only then: it is also where a caller who may not see the object gets not found); else
    ``act`` and a 303 to ``done`` (default ``back``, where the confirmation page goes back to)."""
    if question is not None and confirm != CONFIRMED:
        return ask(request, web, s, back, question, **named())
    act()
    return RedirectResponse(done or back, status.HTTP_303_SEE_OTHER)
