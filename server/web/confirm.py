"""A second step before a destructive action (revoke, halt, delete, disable), without script.

The action's form posts once; without ``confirm=yes`` the answer is a page that names what is
about to happen and repeats the POST with ``confirm=yes`` and the same CSRF token, or goes back.
A GET never changes anything, so a link cannot trigger the action.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Form, Request
from fastapi.responses import Response

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
