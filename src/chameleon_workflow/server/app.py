"""The FastAPI app: its services, its lifespan, its error handlers and its OpenAPI document.

``create_app`` wires the engine, the telemetry buffer, the metrics and the background
services into one ``Services``, mounts the routes, and answers every error with an
``application/problem+json`` body (RFC 9457), never a stack trace: a database that is
down or a lost connection is 503 with ``Retry-After``, and a 5xx is one log line naming
the request (see ``middleware``). Endpoints are synchronous (``def``): FastAPI runs them
in its thread pool, and the database work is synchronous anyway.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from chameleon_workflow.background import FailureLog
from chameleon_workflow.config import Settings
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import ChameleonError
from chameleon_workflow.server.archive_routes import router as archive_router
from chameleon_workflow.server.console_mount import mount_console
from chameleon_workflow.server.dependencies import Services
from chameleon_workflow.server.docs import install_docs
from chameleon_workflow.server.export_routes import router as export_router
from chameleon_workflow.server.metrics import CountingBuffer, ServerMetrics
from chameleon_workflow.server.middleware import (
    BodyTooLargeError,
    RequestMiddleware,
    body_too_large,
    log_failed_request,
)
from chameleon_workflow.server.oversight_routes import router as oversight_router
from chameleon_workflow.server.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    invalid_request,
    problem,
    problem_headers,
    problem_of,
)
from chameleon_workflow.server.reads import router as read_router
from chameleon_workflow.server.redaction_routes import router as redaction_router
from chameleon_workflow.server.routes import router
from chameleon_workflow.server.schemas import WorkflowImport
from chameleon_workflow.server.services import BackgroundServices
from chameleon_workflow.server.settings import ServerSettings


def create_app(
    settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    """Build the API with its engine, telemetry buffer, metrics and background services."""
    services = build_services(ServerSettings.of(settings), session_factory)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.background.start()
        try:
            yield
        finally:
            # Draining blocks for up to the deadline: keep it off the event loop.
            await anyio.to_thread.run_sync(services.background.stop)

    app = FastAPI(
        title="Chameleon",
        summary="Workflow engine with an append-only, hash-chained, verifiable history.",
        version="0.1.0",
        lifespan=lifespan,
        # The docs are served from local files (``docs``), never from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.include_router(router)
    app.include_router(oversight_router)
    app.include_router(read_router)
    app.include_router(export_router)
    app.include_router(archive_router)
    app.include_router(redaction_router)
    install_docs(app)
    mount_console(app, services)
    # One traceback per distinct error and app: an outage must not flood the log.
    failures = FailureLog(logging.getLogger("chameleon_workflow.server"))
    _install_error_handlers(app, failures)
    app.add_middleware(
        RequestMiddleware, max_body_bytes=services.settings.max_request_bytes, failures=failures
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def build_services(
    config: ServerSettings, session_factory: sessionmaker[Session] | None = None
) -> Services:
    """Build the engine, buffer, metrics and background services one app shares."""
    if session_factory is None:
        session_factory = make_session_factory(make_engine(config.database_url, config))
    buffer = CountingBuffer(config.telemetry_batch_size, config.telemetry_max_queue_size)
    engine = WorkflowEngine(session_factory, telemetry=buffer, settings=config)
    engine.persistence.ledger_keys(engine.engine)  # without a ledger key, refuse to start
    metrics = ServerMetrics(buffer)
    background = BackgroundServices(engine, buffer, metrics, config, session_factory)
    metrics.watch(background.health)
    return Services(
        settings=config,
        session_factory=session_factory,
        engine=engine,
        persistence=engine.persistence,
        buffer=buffer,
        metrics=metrics,
        background=background,
    )


def _install_error_handlers(app: FastAPI, failures: FailureLog) -> None:
    """Answer every error with a problem document; never a stack trace."""

    def render(found: Problem, headers: Mapping[str, str] | None = None) -> JSONResponse:
        body = found.model_dump(exclude_none=True)
        return JSONResponse(
            body, found.status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
        )

    def on_error(request: Request, exc: Exception) -> JSONResponse:
        found = problem_of(exc)
        if found.status >= 500:
            log_failed_request(failures, request.scope, found.status, exc)
        return render(found, problem_headers(found.status))

    def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return render(problem(exc.status_code, str(exc.detail)), exc.headers)

    def on_too_large(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyTooLargeError)
        return render(problem_of(body_too_large(exc.limit)), {"Connection": "close"})

    def on_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return render(invalid_request(exc.errors()))

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(BodyTooLargeError, on_too_large)
    app.add_exception_handler(RequestValidationError, on_invalid)
    # Any other error is answered by RequestMiddleware, which keeps the connection open.
    app.add_exception_handler(ChameleonError, on_error)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Build the OpenAPI document once, adding the schemas that only raw bodies use."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, WorkflowImport):
            schemas[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        app.openapi_schema = document
    return app.openapi_schema
