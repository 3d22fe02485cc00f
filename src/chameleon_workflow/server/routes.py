"""The HTTP API (FastAPI): thin routes over the engine, the read models and the auditor.

Each route parses its input, calls one service function and renders the result; every
error of the project's tree becomes an ``application/problem+json`` response (RFC 9457)
with the status of ``ERROR_STATUS``. Endpoints are synchronous (``def``): FastAPI runs
them in its thread pool, and the database work is synchronous anyway.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from chameleon_workflow import read_models as queries
from chameleon_workflow.config import Settings
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import ChameleonError, InvalidValueError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.server import auth
from chameleon_workflow.server import schemas as s
from chameleon_workflow.server.metrics import CONTENT_TYPE, CountingBuffer, ServerMetrics
from chameleon_workflow.server.run import BackgroundServices, ServerSettings, database_reachable
from chameleon_workflow.states import LogType
from chameleon_workflow.workflow.loading import parse_workflow_text

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the routes of one app use; built once by ``create_app``."""

    settings: ServerSettings
    session_factory: sessionmaker[Session]
    engine: WorkflowEngine
    persistence: UOWPersistenceService
    buffer: CountingBuffer
    metrics: ServerMetrics
    background: BackgroundServices

    def read(self, query: Callable[[Session], T]) -> T:
        """Run a read-only query in a short session of its own."""
        with self.session_factory() as session:
            return query(session)


def create_app(
    settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    """Build the API with its engine, telemetry buffer, metrics and background services."""
    config = ServerSettings.of(settings)
    if session_factory is None:
        session_factory = make_session_factory(make_engine(config.database_url, config))
    buffer = CountingBuffer(config.telemetry_batch_size, config.telemetry_max_queue_size)
    engine = WorkflowEngine(session_factory, telemetry=buffer, settings=config)
    metrics = ServerMetrics(buffer, session_factory)
    services = Services(
        settings=config,
        session_factory=session_factory,
        engine=engine,
        persistence=engine.persistence,
        buffer=buffer,
        metrics=metrics,
        background=BackgroundServices(engine, buffer, metrics, config, session_factory),
    )

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
    )
    app.state.services = services
    app.include_router(router)
    _install_error_handlers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


# ------------------------------------------------------------------------ dependencies

_bearer = HTTPBearer(auto_error=False, description="An actor token, or the admin token.")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


Svc = Annotated[Services, Depends(_services)]


def _principal(
    svc: Svc, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> auth.Principal:
    token = credentials.credentials if credentials is not None else None
    admin = svc.settings.admin_token
    return auth.authenticate(
        svc.session_factory, token, admin.get_secret_value() if admin else None
    )


Caller = Annotated[auth.Principal, Depends(_principal)]


def _admin(caller: Caller) -> auth.Principal:
    auth.require_admin(caller)
    return caller


def _actor(caller: Caller) -> uuid.UUID:
    return auth.require_actor(caller)


Admin = Annotated[auth.Principal, Depends(_admin)]
ActorId = Annotated[uuid.UUID, Depends(_actor)]


async def _raw_body(request: Request) -> bytes:
    # The endpoint is synchronous; only reading the body needs the event loop.
    return await request.body()


def _aware(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidValueError(f"{name} {moment.isoformat()} is out of range") from None


def _install_error_handlers(app: FastAPI) -> None:
    """Answer every error with a problem document; never a stack trace."""

    def render(problem: s.Problem, headers: Mapping[str, str] | None = None) -> JSONResponse:
        body = problem.model_dump(exclude_none=True)
        return JSONResponse(
            body, problem.status, headers=dict(headers or {}), media_type=s.PROBLEM_MEDIA_TYPE
        )

    def on_error(_: Request, exc: Exception) -> JSONResponse:
        problem = s.problem_of(exc)
        if problem.status >= 500:
            log.error("request failed", exc_info=exc)
        challenge = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
        return render(problem, challenge)

    def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return render(s.problem(exc.status_code, str(exc.detail)), exc.headers)

    def on_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = [_describe(error) for error in exc.errors()]
        return render(s.problem(422, found[0] if found else "invalid request", found))

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    # ChameleonError is handled in place; a bare Exception reaches the outermost middleware,
    # which answers with our 500 problem and still lets the server log the traceback.
    app.add_exception_handler(ChameleonError, on_error)
    app.add_exception_handler(Exception, on_error)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "request"
    return f"{where}: {error.get('msg', 'invalid')}"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Build the OpenAPI document once, adding the schemas that only raw bodies use."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (s.Problem, s.WorkflowImport):
            schemas[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        app.openapi_schema = document
    return app.openapi_schema


E = s.error_responses
router = APIRouter()


# ---------------------------------------------------------------------------- admin


@router.post("/instances", status_code=201, tags=["admin"], responses=E(400, 401, 403, 409, 422))
def create_instance(body: s.InstanceCreate, svc: Svc, _: Admin) -> s.Created:
    """Create an instance (an isolation container)."""
    return s.Created(id=svc.engine.create_instance(body.name, body.description))


@router.post(
    "/workflows",
    status_code=201,
    tags=["admin"],
    responses=E(401, 403, 404, 409, 415, 422),
    openapi_extra=s.WORKFLOW_BODY,
)
def import_workflow(
    svc: Svc,
    _: Admin,
    body: Annotated[bytes, Depends(_raw_body)],
    request: Request,
    instance: Annotated[
        uuid.UUID | None, Query(description="Instance id, when the body is YAML.")
    ] = None,
) -> s.Created:
    """Validate a YAML workflow and import it (YAML body, or JSON ``{instance, yaml}``)."""
    form = s.workflow_request(request.headers.get("content-type", ""), body, instance)
    # Text only: a body such as "/etc/passwd.yaml" is YAML (a string), never a path to read.
    definition = parse_workflow_text(form.yaml, "<request>")
    return s.Created(id=svc.engine.import_workflow(form.instance, definition))


@router.post("/actors", status_code=201, tags=["admin"], responses=E(400, 401, 403, 404, 409, 422))
def register_actor(body: s.ActorCreate, svc: Svc, _: Admin) -> s.ActorCreated:
    """Register an actor; its bearer token is in this response only."""
    actor_id = svc.engine.register_actor(
        body.instance_id, body.identity_key, body.name, body.actor_type, body.capabilities
    )
    return s.ActorCreated(actor_id=actor_id, token=auth.issue_token(svc.session_factory, actor_id))


@router.post(
    "/actors/{actor_id}/token", status_code=201, tags=["admin"], responses=E(401, 403, 404, 422)
)
def rotate_token(actor_id: uuid.UUID, svc: Svc, _: Admin) -> s.ActorCreated:
    """Issue a new bearer token for an actor; the old one stops working."""
    return s.ActorCreated(actor_id=actor_id, token=auth.issue_token(svc.session_factory, actor_id))


@router.post(
    "/actors/{actor_id}/roles",
    status_code=201,
    tags=["admin"],
    responses=E(400, 401, 403, 404, 422),
)
def assign_role(actor_id: uuid.UUID, body: s.RoleAssign, svc: Svc, _: Admin) -> s.RoleAssigned:
    """Give an actor a role (name or id) of its instance."""
    role_id = svc.engine.assign_role(actor_id, s.name_or_id(body.role))
    return s.RoleAssigned(actor_id=actor_id, role_id=role_id)


# ---------------------------------------------------------------------------- work


@router.post(
    "/instances/{instance_id}/uows",
    status_code=201,
    tags=["work"],
    responses=E(400, 401, 403, 404, 422),
)
def instantiate(instance_id: uuid.UUID, body: s.UOWCreate, svc: Svc, caller: Caller) -> s.Created:
    """Start a root UOW of a workflow (admin, or an actor of the instance)."""
    auth.require_instance(caller, instance_id)
    workflow = s.name_or_id(body.workflow)
    return s.Created(
        id=svc.engine.instantiate(instance_id, workflow, body.attributes, caller.actor_id)
    )


@router.post(
    "/roles/{role}/checkout",
    tags=["work"],
    response_model=s.UOW,
    responses={204: {"description": "No UOW is waiting for this role."}, **E(401, 403, 404, 409)},
)
def checkout(role: str, svc: Svc, actor_id: ActorId) -> s.UOW | Response:
    """Claim the oldest waiting UOW of a role (name or id) the calling actor holds."""
    view = svc.engine.checkout(actor_id, s.name_or_id(role))
    return Response(status_code=204) if view is None else s.UOW.of(view)


@router.post("/uows/{uow_id}/submit", tags=["work"], responses=E(400, 401, 403, 404, 409, 422))
def submit(uow_id: uuid.UUID, body: s.Submit, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Finish the caller's step on a UOW it holds and route it onwards."""
    return s.UOW.of(svc.engine.submit(actor_id, uow_id, body.attributes, body.reasoning))


@router.post("/uows/{uow_id}/fail", tags=["work"], responses=E(400, 401, 403, 404, 409, 422))
def fail(uow_id: uuid.UUID, body: s.Fail, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Report a UOW the caller holds as failed (it goes to remediation)."""
    return s.UOW.of(svc.engine.fail(actor_id, uow_id, body.reason))


@router.post("/uows/{uow_id}/heartbeat", tags=["work"], responses=E(401, 403, 404, 409, 422))
def heartbeat(uow_id: uuid.UUID, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Tell the engine the caller is still working on a UOW it holds."""
    return s.UOW.of(svc.engine.heartbeat(actor_id, uow_id))


# ---------------------------------------------------------------------------- reads


@router.get("/uows/{uow_id}", tags=["read"], responses=E(401, 403, 404, 422))
def get_uow(uow_id: uuid.UUID, svc: Svc, caller: Caller) -> s.UOW:
    """Return a UOW's current state (admin, or an actor of its instance)."""
    auth.require_uow_reader(svc.session_factory, caller, uow_id)
    return s.UOW.of(svc.engine.get_uow(uow_id))


@router.get("/uows/{uow_id}/history", tags=["read"], responses=E(401, 403, 404, 422))
def history(uow_id: uuid.UUID, svc: Svc, caller: Caller) -> list[s.TimelineEntry]:
    """Return a UOW's ledger in the order of record, with attribute diffs and hashes."""
    auth.require_uow_reader(svc.session_factory, caller, uow_id)
    entries = svc.read(lambda session: queries.uow_timeline(session, uow_id, svc.persistence))
    return s.rows_of(s.TimelineEntry, entries)


@router.get("/uows/{uow_id}/verify", tags=["audit"], responses=E(401, 403, 404, 422))
def verify_uow(uow_id: uuid.UUID, svc: Svc, _: Admin) -> s.Verification:
    """Verify one UOW: attributes against its hash, its chain, sequences and head."""
    report = svc.read(lambda session: svc.persistence.verify_uow(session, uow_id))
    svc.metrics.record_verification(report)
    return s.Verification.of(report)


@router.get("/verify", tags=["audit"], responses=E(401, 403, 422))
def verify_database(svc: Svc, _: Admin, instance_id: uuid.UUID | None = None) -> s.Verification:
    """Verify every UOW (of one instance if given) and report every finding."""
    report = svc.read(lambda session: svc.persistence.verify_database(session, instance_id))
    svc.metrics.record_verification(report)
    return s.Verification.of(report)


@router.get("/logs", tags=["audit"], responses=E(401, 403, 422))
def logs(
    svc: Svc,
    _: Admin,
    uow_id: uuid.UUID | None = None,
    log_type: Annotated[LogType | None, Query(alias="type")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> s.LogPage:
    """Return interaction-log rows, newest first, filtered by UOW, type and time range."""
    lower, upper = _aware(since, "since"), _aware(until, "until")
    rows = svc.read(
        lambda session: queries.query_logs(
            session,
            uow_id=uow_id,
            log_type=None if log_type is None else str(log_type),
            since=lower,
            until=upper,
            limit=limit,
            offset=offset,
        )
    )
    return s.LogPage(items=s.rows_of(s.LogEntry, rows), limit=limit, offset=offset)


# ---------------------------------------------------------------------------- operations


@router.get(
    "/metrics",
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
def metrics(svc: Svc) -> Response:
    """Return the server's metrics in the Prometheus text format."""
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)


@router.get(
    "/health",
    tags=["operations"],
    responses={503: {"model": s.Health, "description": "A dependency is down."}},
)
def health(svc: Svc, response: Response) -> s.Health:
    """Report whether the database answers, the flusher runs, and how full the buffer is."""
    database = database_reachable(svc.session_factory)
    alive = svc.background.flusher_alive()
    pending, capacity = svc.buffer.get_pending_count(), svc.buffer.max_queue_size
    if not (database and alive):
        response.status_code = 503
    return s.Health(
        status="ok" if database and alive else "degraded",
        database=database,
        flusher_alive=alive,
        buffer_pending=pending,
        buffer_capacity=capacity,
        buffer_fill=pending / capacity,
    )
