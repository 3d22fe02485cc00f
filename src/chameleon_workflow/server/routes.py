"""The HTTP routes: thin handlers over the engine, the read models and the auditor.

Each route parses its input, calls one service function and renders the result; errors
propagate to the app's handlers, which turn them into problem documents. The admin
routes set an instance up, the work routes drive UOWs as an actor, the read and audit
routes show the ledger, and the operations routes serve metrics and health.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from chameleon_workflow import read_models as queries
from chameleon_workflow.checkpoints.store import latest_checkpoint
from chameleon_workflow.engine.listing import instance_of
from chameleon_workflow.server import auth
from chameleon_workflow.server import schemas as s
from chameleon_workflow.server.dependencies import (
    ActorId,
    Admin,
    Caller,
    MetricsReader,
    RawBody,
    Reader,
    Services,
    Svc,
)
from chameleon_workflow.server.metrics import CONTENT_TYPE
from chameleon_workflow.server.problems import error_responses
from chameleon_workflow.server.services import database_reachable
from chameleon_workflow.states import LogType
from chameleon_workflow.workflow.loading import parse_workflow_text

E = error_responses
router = APIRouter()


# ---------------------------------------------------------------------------- admin


@router.post(
    "/instances", status_code=201, tags=["admin"], responses=E(400, 401, 403, 409, 413, 422, 503)
)
def create_instance(body: s.InstanceCreate, svc: Svc, _: Admin) -> s.Created:
    """Create an instance (an isolation container)."""
    return s.Created(id=svc.engine.create_instance(body.name, body.description))


@router.post(
    "/workflows",
    status_code=201,
    tags=["admin"],
    responses=E(400, 401, 403, 404, 409, 413, 415, 422, 503),
    openapi_extra=s.WORKFLOW_BODY,
)
def import_workflow(
    svc: Svc,
    _: Admin,
    body: RawBody,
    request: Request,
    instance: Annotated[
        str | None,
        Query(max_length=s.NAME_MAX, description="Instance name or id, when the body is YAML."),
    ] = None,
) -> s.Created:
    """Validate a YAML workflow and import it (YAML body, or JSON ``{instance, yaml}``)."""
    form = s.workflow_request(request.headers.get("content-type", ""), body, instance)
    # Text only: a body such as "/etc/passwd.yaml" is YAML (a string), never a path to read.
    definition = parse_workflow_text(form.yaml, "<request>")
    instance_id = _instance(svc, form.instance)
    return s.Created(id=svc.engine.import_workflow(instance_id, definition))


@router.post(
    "/actors", status_code=201, tags=["admin"], responses=E(400, 401, 403, 404, 409, 413, 422, 503)
)
def register_actor(body: s.ActorCreate, svc: Svc, _: Admin) -> s.ActorCreated:
    """Register an actor; its bearer token is in this response only."""
    actor_id = svc.engine.register_actor(
        _instance(svc, body.instance_id),
        body.identity_key,
        body.name,
        body.actor_type,
        body.capabilities,
    )
    return s.ActorCreated(actor_id=actor_id, token=auth.issue_token(svc.session_factory, actor_id))


@router.post(
    "/actors/{actor_id}/token",
    status_code=201,
    tags=["admin"],
    responses=E(401, 403, 404, 422, 503),
)
def rotate_token(actor_id: uuid.UUID, svc: Svc, _: Admin) -> s.ActorCreated:
    """Issue a new bearer token for an actor; the old one stops working."""
    return s.ActorCreated(actor_id=actor_id, token=auth.issue_token(svc.session_factory, actor_id))


@router.post(
    "/actors/{actor_id}/roles",
    status_code=201,
    tags=["admin"],
    responses=E(400, 401, 403, 404, 413, 422, 503),
)
def assign_role(actor_id: uuid.UUID, body: s.RoleAssign, svc: Svc, _: Admin) -> s.RoleAssigned:
    """Give an actor a role (name or id) of its instance."""
    role_id = svc.engine.assign_role(actor_id, s.name_or_id(body.role))
    return s.RoleAssigned(actor_id=actor_id, role_id=role_id)


@router.delete(
    "/actors/{actor_id}/roles/{role}",
    status_code=204,
    tags=["admin"],
    responses=E(401, 403, 404, 422, 503),
)
def revoke_role(actor_id: uuid.UUID, role: str, svc: Svc, _: Admin) -> Response:
    """Take a role (name or id) away from an actor; it can no longer check out for it."""
    svc.engine.revoke_role(actor_id, s.name_or_id(role))
    return Response(status_code=204)


@router.delete(
    "/actors/{actor_id}/token",
    status_code=204,
    tags=["admin"],
    responses=E(401, 403, 404, 422, 503),
)
def revoke_token(actor_id: uuid.UUID, svc: Svc, _: Admin) -> Response:
    """Revoke an actor's bearer token: the next request that carries it is refused (401)."""
    svc.engine.revoke_token(actor_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- work


@router.post(
    "/instances/{instance}/uows",
    status_code=201,
    tags=["work"],
    responses=E(400, 401, 403, 404, 413, 422, 503),
)
def instantiate(instance: str, body: s.UOWCreate, svc: Svc, caller: Caller) -> s.Created:
    """Start a root UOW of a workflow in an instance (name or id): the admin or its actors."""
    auth.require_writer(caller)  # the auditor is refused before any lookup
    instance_id = _instance(svc, instance)
    auth.require_instance(caller, instance_id)
    workflow = s.name_or_id(body.workflow)
    return s.Created(
        id=svc.engine.instantiate(instance_id, workflow, body.attributes, caller.actor_id)
    )


@router.post(
    "/roles/{role}/checkout",
    tags=["work"],
    response_model=s.UOW,
    responses={
        204: {"description": "No UOW is waiting for this role."},
        **E(401, 403, 404, 409, 422, 503),
    },
)
def checkout(role: str, svc: Svc, actor_id: ActorId) -> s.UOW | Response:
    """Claim the oldest waiting UOW of a role (name or id) the calling actor holds."""
    view = svc.engine.checkout(actor_id, s.name_or_id(role))
    return Response(status_code=204) if view is None else s.UOW.of(view)


@router.post(
    "/uows/{uow_id}/submit", tags=["work"], responses=E(400, 401, 403, 404, 409, 413, 422, 503)
)
def submit(uow_id: uuid.UUID, body: s.Submit, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Finish the caller's step on a UOW it holds and route it onwards."""
    return s.UOW.of(svc.engine.submit(actor_id, uow_id, body.attributes, body.reasoning))


@router.post(
    "/uows/{uow_id}/fail", tags=["work"], responses=E(400, 401, 403, 404, 409, 413, 422, 503)
)
def fail(uow_id: uuid.UUID, body: s.Fail, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Report a UOW the caller holds as failed (it goes to remediation)."""
    return s.UOW.of(svc.engine.fail(actor_id, uow_id, body.reason))


@router.post(
    "/uows/{uow_id}/remediate",
    tags=["work"],
    responses=E(400, 401, 403, 404, 409, 413, 422, 503),
)
def remediate(uow_id: uuid.UUID, body: s.Remediate, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Send a FAILED UOW back into the flow as PENDING (an actor holding the EPSILON role)."""
    target = None if body.to_interaction is None else s.name_or_id(body.to_interaction)
    view = svc.engine.remediate(actor_id, uow_id, body.attributes, target, body.reasoning)
    return s.UOW.of(view)


@router.post("/uows/{uow_id}/heartbeat", tags=["work"], responses=E(401, 403, 404, 409, 422, 503))
def heartbeat(uow_id: uuid.UUID, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Tell the engine the caller is still working on a UOW it holds."""
    return s.UOW.of(svc.engine.heartbeat(actor_id, uow_id))


# ---------------------------------------------------------------------------- reads


@router.get("/uows/{uow_id}", tags=["read"], responses=E(401, 403, 404, 422, 503))
def get_uow(uow_id: uuid.UUID, svc: Svc, caller: Caller) -> s.UOW:
    """Return a UOW's current state (admin, or an actor of its instance)."""
    auth.require_uow_reader(svc.session_factory, caller, uow_id)
    return s.UOW.of(svc.engine.get_uow(uow_id))


@router.get("/uows/{uow_id}/verify", tags=["audit"], responses=E(401, 403, 404, 422, 503))
def verify_uow(uow_id: uuid.UUID, svc: Svc, _: Reader) -> s.Verification:
    """Verify one UOW: attributes against its hash, its chain, sequences and head."""
    report = svc.read(lambda session: svc.persistence.verify_uow(session, uow_id))
    svc.metrics.record_verification(report)
    return s.Verification.of(report)


@router.get("/verify", tags=["audit"], responses=E(401, 403, 404, 422, 503))
def verify_database(
    svc: Svc,
    _: Reader,
    instance_id: Annotated[
        str | None, Query(max_length=s.NAME_MAX, description="Instance name or id.")
    ] = None,
) -> s.Verification:
    """Verify every UOW (of one instance if given) and report every finding."""
    narrowed = None if instance_id is None else _instance(svc, instance_id)
    report = svc.read(lambda session: svc.persistence.verify_database(session, narrowed))
    svc.metrics.record_verification(report)
    return s.Verification.of(report)


@router.get("/logs", tags=["audit"], responses=E(401, 403, 404, 422, 503))
def logs(
    svc: Svc,
    _: Reader,
    instance: Annotated[
        str | None, Query(max_length=s.NAME_MAX, description="Instance name or id.")
    ] = None,
    uow_id: uuid.UUID | None = None,
    log_type: Annotated[LogType | None, Query(alias="type")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> s.LogPage:
    """Return interaction-log rows, newest first, filtered by instance, UOW, type and time."""
    lower, upper = s.aware(since, "since"), s.aware(until, "until")
    narrowed = None if instance is None else _instance(svc, instance)
    rows = svc.read(
        lambda session: queries.query_logs(
            session,
            instance_id=narrowed,
            uow_id=uow_id,
            log_type=None if log_type is None else str(log_type),
            since=lower,
            until=upper,
            limit=limit,
            offset=offset,
        )
    )
    return s.LogPage(items=s.rows_of(s.LogEntry, rows), limit=limit, offset=offset)


@router.get("/checkpoints/latest", tags=["audit"], responses=E(401, 403, 404, 503))
def checkpoint_latest(svc: Svc, _: Reader) -> s.Checkpoint:
    """Return the newest signed checkpoint (docs/checkpoints.md), to keep outside the database."""
    head = svc.read(lambda session: latest_checkpoint(session.connection()))
    return s.Checkpoint(**head.to_json())


# ---------------------------------------------------------------------------- operations


@router.get(
    "/metrics",
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}, **E(401)},
)
def metrics(svc: Svc, _: MetricsReader) -> Response:
    """Return the server's metrics in the Prometheus text format (counters kept in memory)."""
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)


@router.get(
    "/health",
    tags=["operations"],
    responses={503: {"model": s.Health, "description": "A dependency is down or failing."}},
)
def health(svc: Svc, response: Response) -> s.Health:
    """Report whether the database answers, each background service runs, and buffer fill."""
    database = database_reachable(svc.session_factory)
    services = svc.background.health()
    healthy = database and all(service.ok for service in services)
    pending, capacity = svc.buffer.get_pending_count(), svc.buffer.max_queue_size
    if not healthy:
        response.status_code = 503
    return s.Health(
        status="ok" if healthy else "degraded",
        database=database,
        flusher_alive=svc.background.flusher_alive(),
        services=[s.ServiceStatus.of(service) for service in services],
        buffer_pending=pending,
        buffer_capacity=capacity,
        buffer_fill=pending / capacity,
    )


def _instance(svc: Services, ref: str) -> uuid.UUID:
    """Return the id of the instance a request names (by name or id)."""
    return svc.read(lambda session: instance_of(session, ref))
