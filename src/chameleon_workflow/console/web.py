"""What every console page shares: templates, the signed-in session, forms, safe headers.

Templates are Jinja2 with autoescaping forced on: every stored string (names,
attributes, reasoning) reaches the page as text, never markup. Pages send a
Content-Security-Policy without inline script, a form is refused unless it carries
the session's CSRF token and comes from this origin, and no GET changes anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chameleon_workflow.console.backend import ConsoleBackend
from chameleon_workflow.console.sessions import COOKIE, ConsoleSession, SessionStore
from chameleon_workflow.console.verification import Runs
from chameleon_workflow.errors import (
    LimitExceededError,
    MalformedRequestError,
    NotAuthenticatedError,
    NotAuthorizedError,
)

#: Scripts, styles and images only from the console's own files; nothing inline or framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SAFE_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)
MAX_FORM_BYTES = 16_384


class SafeHeaders:
    """Add the console's security headers to every response it sends."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap the console app."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the app's response with the headers added."""

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SAFE_HEADERS]}
            await send(message)

        await self.app(scope, receive, tagged)


def environment() -> Environment:
    """Build the console's template environment (autoescaping always on)."""
    env = Environment(
        loader=PackageLoader("chameleon_workflow.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True)
    env.globals["query"] = urlencode
    return env


class Console:
    """One console's state: its backend, templates, sessions and verification runs."""

    def __init__(self, backend: ConsoleBackend) -> None:
        """Build the console's parts around ``backend``."""
        self.backend = backend
        self.templates = environment()
        self.sessions = SessionStore(backend.session_ttl_s)
        self.runs = Runs(backend)

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any],
        session: ConsoleSession | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """Render a page, with the base path and the session the layout needs."""
        page = self.templates.get_template(template).render(
            base=prefix(request), session=session, **context
        )
        return HTMLResponse(page, status)


def prefix(request: Request) -> str:
    """Return the path the console is mounted at (``/ui``)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(_console)]


def _session(request: Request, console: ConsoleDep) -> ConsoleSession:
    found = console.sessions.find(request.cookies.get(COOKIE))
    if found is None:
        raise NotAuthenticatedError("sign in to use the console")
    return found


SessionDep = Annotated[ConsoleSession, Depends(_session)]


async def _form(request: Request) -> dict[str, str]:
    """Read a posted form after checking it comes from this origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise NotAuthorizedError("a form from another site is refused")
    if request.headers.get("content-type", "").split(";")[0] != (
        "application/x-www-form-urlencoded"
    ):
        raise MalformedRequestError("a form must be posted as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise LimitExceededError(f"a form is at most {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise MalformedRequestError("a form must be UTF-8") from exc
    return {name: values[-1] for name, values in fields.items()}


FormDep = Annotated[dict[str, str], Depends(_form)]


def checked_form(session: ConsoleSession, form: Mapping[str, str]) -> Mapping[str, str]:
    """Return a form carrying the session's CSRF token; refuse any other."""
    if not session.csrf_ok(form.get("csrf")):
        raise NotAuthorizedError("the form's CSRF token is missing or stale: reload the page")
    return form
