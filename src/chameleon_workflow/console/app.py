"""The console app: its pages, its static files and its error pages, mounted under ``/ui``.

Errors are pages too: an expired or missing session goes back to the sign-in page, and
any other refusal is a page saying why in one line, with the status the API would give.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from chameleon_workflow.console import (
    record_pages,
    signin,
    uow_pages,
    verify_pages,
    workflow_pages,
)
from chameleon_workflow.console.backend import ConsoleBackend
from chameleon_workflow.console.web import Console, SafeHeaders, prefix
from chameleon_workflow.errors import (
    ChameleonError,
    DatabaseUnavailableError,
    InvalidValueError,
    NotAuthenticatedError,
    NotAuthorizedError,
    NotFoundError,
)

ERROR_STATUS: tuple[tuple[type[ChameleonError], int], ...] = (
    (NotAuthorizedError, 403),
    (NotFoundError, 404),
    (InvalidValueError, 400),
    (DatabaseUnavailableError, 503),
)


def create_console(backend: ConsoleBackend) -> FastAPI:
    """Build the console app; the server mounts it at ``/ui``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console = Console(backend)
    app.state.console = console
    app.include_router(signin.router)
    app.include_router(uow_pages.router)
    app.include_router(verify_pages.router)
    app.include_router(record_pages.router)
    app.include_router(workflow_pages.router)
    app.mount(
        "/static",
        StaticFiles(packages=[("chameleon_workflow.console", "static")]),
        name="static",
    )

    def error_page(request: Request, status: int, message: str) -> Response:
        return console.render(
            request, "error.html", {"status": status, "message": message}, None, status
        )

    def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, NotAuthenticatedError):
            return RedirectResponse(f"{prefix(request)}/signin", 303)
        status = next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)
        return error_page(request, status, str(exc) if status < 500 else "the server failed")

    def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error_page(request, exc.status_code, str(exc.detail))

    def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        where = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}"
            for error in exc.errors()
        )
        return error_page(request, 400, f"invalid input: {where}")

    app.add_exception_handler(ChameleonError, on_error)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_middleware(SafeHeaders)
    return app
