"""Signing in and out: a bearer token exchanged for a session cookie, and back.

The cookie is HttpOnly, SameSite=Strict, scoped to the console's path and Secure when
the console is served over TLS; it holds a random session id, never the token. The
sign-in form carries a CSRF token of its own (a cookie and a field that must match),
so another site cannot sign a browser in under someone else's token.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from chameleon_workflow.console.sessions import COOKIE, SIGNIN_COOKIE
from chameleon_workflow.console.web import ConsoleDep, FormDep, SessionDep, checked_form, prefix
from chameleon_workflow.errors import NotAuthenticatedError, NotAuthorizedError

router = APIRouter()


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=prefix(request) or "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


@router.get("/")
def home(request: Request, console: ConsoleDep) -> Response:
    """Send a signed-in viewer to the UOWs, anyone else to the sign-in page."""
    signed_in = console.sessions.find(request.cookies.get(COOKIE)) is not None
    return RedirectResponse(f"{prefix(request)}/{'uows' if signed_in else 'signin'}", 303)


@router.get("/signin")
def signin_page(request: Request, console: ConsoleDep, message: str | None = None) -> Response:
    """Show the sign-in form, with a fresh CSRF token in a cookie and in the form."""
    token = secrets.token_urlsafe(32)
    response = console.render(request, "signin.html", {"csrf": token, "message": message})
    _cookie(response, request, SIGNIN_COOKIE, token, 600)
    return response


@router.post("/signin")
def sign_in(request: Request, console: ConsoleDep, form: FormDep) -> Response:
    """Exchange a token for a session cookie; a wrong token shows the form again (401)."""
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    given = form.get("csrf", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise NotAuthorizedError("the sign-in form is stale: reload the page and try again")
    try:
        viewer = console.backend.authenticate(form.get("token", "").strip())
    except NotAuthenticatedError:
        token = secrets.token_urlsafe(32)
        context = {"csrf": token, "message": "That token is not valid."}
        refused = console.render(request, "signin.html", context, status=401)
        _cookie(refused, request, SIGNIN_COOKIE, token, 600)
        return refused
    opened = console.sessions.open(viewer)
    response = RedirectResponse(f"{prefix(request)}/uows", 303)
    _cookie(response, request, COOKIE, opened.session_id, int(console.sessions.ttl_s))
    response.delete_cookie(SIGNIN_COOKIE, path=prefix(request) or "/")
    return response


@router.post("/signout")
def sign_out(request: Request, console: ConsoleDep, session: SessionDep, form: FormDep) -> Response:
    """End the session and forget its cookie."""
    checked_form(session, form)
    console.sessions.close(session.session_id)
    response = RedirectResponse(f"{prefix(request)}/signin", 303)
    response.delete_cookie(COOKIE, path=prefix(request) or "/")
    return response
