"""The UOW pages: a filtered, paged list with counts by status, a UOW's timeline, its proofs.

An actor sees its own instance only; the admin and the auditor see every instance.
Filters come from a GET form, so an empty field means "no filter".
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from chameleon_workflow.checkpoints.proofs import prove_inclusion
from chameleon_workflow.console import data
from chameleon_workflow.console.backend import Viewer
from chameleon_workflow.console.web import ConsoleDep, SessionDep
from chameleon_workflow.engine import listing, search
from chameleon_workflow.engine.paging import PAGE_DEFAULT, PAGE_MAX, Page
from chameleon_workflow.engine.views import UOWView
from chameleon_workflow.errors import InvalidValueError, NotAuthorizedError, NotFoundError

router = APIRouter()
Text = Annotated[str | None, Query(max_length=200)]
Texts = Annotated[list[str] | None, Query(max_length=20)]
TIMELINE_PAGE = 100


def moment(value: str | None, name: str) -> datetime | None:
    """Parse a time filter (a form's local time is taken as UTC); None when left empty."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidValueError(f"{name}: {value!r} is not a date and time") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def readable_instance(session: Session, viewer: Viewer, ref: str | None) -> uuid.UUID | None:
    """Return the instance a list shows: the one asked for (if readable) or the viewer's own."""
    if not ref:
        return viewer.scope
    instance_id = listing.instance_of(session, ref)
    if not viewer.may_read(instance_id):
        raise NotAuthorizedError(f"instance {ref!r} belongs to another instance's actors")
    return instance_id


def require_uow(session: Session, viewer: Viewer, uow_id: uuid.UUID) -> None:
    """Refuse a UOW the viewer may not read (403) or that does not exist (404)."""
    instance_id = data.uow_instance(session, uow_id)
    if instance_id is None:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    if not viewer.may_read(instance_id):
        raise NotAuthorizedError(f"UOW {uow_id} belongs to another instance")


@router.get("/uows")
def uows(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    instance: Text = None,
    workflow: Text = None,
    status: Texts = None,
    attribute: Texts = None,
    since: Text = None,
    until: Text = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
) -> Response:
    """List the UOWs matching the filters, a page at a time, with counts by status."""
    wanted = tuple(search.parse_attribute_filter(a) for a in attribute or () if a.strip())
    statuses = search.uow_statuses(s for s in status or () if s)
    lower, upper = moment(since, "since"), moment(until, "until")

    def query(db: Session) -> tuple[Page[UOWView], dict[str, int]]:
        narrowed = readable_instance(db, session.viewer, instance)
        workflow_id = None if not workflow else listing.workflow_of(db, workflow, narrowed)
        where = search.UOWFilter(narrowed, workflow_id, statuses, wanted, lower, upper)
        found = search.list_uows(db, where, cursor or None, limit)
        return found, data.status_counts(db, narrowed, workflow_id)

    page, counts = console.backend.engine.read(query)
    filters = {
        "instance": instance or "",
        "workflow": workflow or "",
        "status": [s for s in status or () if s],
        "attribute": [a for a in attribute or () if a.strip()],
        "since": since or "",
        "until": until or "",
        "limit": limit,
    }
    context = {"page": page, "counts": counts, "filters": filters, "statuses": list(counts)}
    return console.render(request, "uows.html", context, session)


@router.get("/uows/{uow_id}")
def uow_timeline(
    uow_id: uuid.UUID,
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Show a UOW's timeline: each row verified or not, covered by a checkpoint or not."""
    engine = console.backend.engine
    engine.read(lambda db: require_uow(db, session.viewer, uow_id))
    current = engine.get_uow(uow_id)
    report = engine.read(lambda db: engine.persistence.verify_uow(db, uow_id))
    found = engine.read(lambda db: data.timeline(db, uow_id, report, cursor, TIMELINE_PAGE))
    flow = engine.read(lambda db: listing.get_workflow(db, current.workflow_id))
    roles = {role.role_id: role.name for role in flow.roles}
    context = {"uow": current, "timeline": found, "report": report, "roles": roles, "flow": flow}
    return console.render(request, "timeline.html", context, session)


@router.get("/uows/{uow_id}/proofs/{history_id}")
def inclusion_proof(
    uow_id: uuid.UUID, history_id: uuid.UUID, console: ConsoleDep, session: SessionDep
) -> Response:
    """Download the inclusion proof of one of the UOW's rows in the latest checkpoint."""

    def query(db: Session) -> dict[str, object]:
        require_uow(db, session.viewer, uow_id)
        if data.history_owner(db, history_id) != uow_id:
            raise NotFoundError(f"UOW {uow_id} has no ledger row {history_id}")
        head = data.latest_checkpoint(db)
        if head is None:
            raise NotFoundError("no checkpoint yet: the ledger was never sealed")
        proof = prove_inclusion(db.connection(), head, data.HISTORY_TABLE, str(history_id))
        return proof.to_json()

    document = console.backend.engine.read(query)
    name = f"proof-{history_id}.json"
    return Response(
        json.dumps(document, indent=2) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
