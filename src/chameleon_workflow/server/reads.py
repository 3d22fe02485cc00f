"""The list and read routes: instances, workflows, actors, UOWs and a UOW's ledger, paged.

The admin and the auditor see every instance; an actor sees its own only (a list is
narrowed to it, and reading one thing of another instance is 403 naming nothing of it).
Where a path or query takes an instance or a workflow, a name or an id is accepted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from chameleon_workflow.engine import history as ledger
from chameleon_workflow.engine import listing, search
from chameleon_workflow.engine.paging import PAGE_DEFAULT, PAGE_MAX, Page
from chameleon_workflow.engine.views import UOWView
from chameleon_workflow.server import auth
from chameleon_workflow.server import pages as p
from chameleon_workflow.server import schemas as s
from chameleon_workflow.server.dependencies import Caller, Svc
from chameleon_workflow.server.problems import error_responses

E = error_responses
router = APIRouter(tags=["read"])

Cursor = Annotated[
    str | None, Query(max_length=500, description="next_cursor of the previous page.")
]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX)]
InstanceRef = Annotated[
    str | None, Query(min_length=1, max_length=s.NAME_MAX, description="Instance name or id.")
]
READ_ERRORS = E(401, 403, 404, 422, 503)


def scope(svc: Svc, caller: auth.Principal, instance: str | None) -> uuid.UUID | None:
    """Return the one instance a list shows (asked for, or the caller's own), or None for all."""
    if instance is None:
        return auth.scope_of(caller)
    return readable_instance(svc, caller, instance)


def readable_instance(svc: Svc, caller: auth.Principal, instance: str) -> uuid.UUID:
    """Return the id of an instance (name or id) the caller may read; 403 or 404 if not."""
    instance_id = svc.read(lambda session: listing.instance_of(session, instance))
    auth.require_instance_reader(caller, instance_id, f"instance {instance!r}")
    return instance_id


@router.get("/instances", responses=E(401, 422, 503))
def list_instances(
    svc: Svc, caller: Caller, cursor: Cursor = None, limit: Limit = PAGE_DEFAULT
) -> p.InstancePage:
    """List the instances the caller may see (an actor: its own), oldest first."""
    page = svc.read(
        lambda session: listing.list_instances(session, auth.scope_of(caller), cursor, limit)
    )
    return p.InstancePage(
        items=[p.body_of(p.Instance, i) for i in page.items], next_cursor=page.next_cursor
    )


@router.get("/instances/{instance}", responses=READ_ERRORS)
def get_instance(instance: str, svc: Svc, caller: Caller) -> p.Instance:
    """Return one instance, by name or id."""
    instance_id = readable_instance(svc, caller, instance)
    return p.body_of(
        p.Instance, svc.read(lambda session: listing.get_instance(session, instance_id))
    )


@router.get("/workflows", responses=READ_ERRORS)
def list_workflows(
    svc: Svc,
    caller: Caller,
    instance: InstanceRef = None,
    cursor: Cursor = None,
    limit: Limit = PAGE_DEFAULT,
) -> p.WorkflowPage:
    """List imported workflows (of one instance if given), oldest first."""
    narrowed = scope(svc, caller, instance)
    page = svc.read(lambda session: listing.list_workflows(session, narrowed, cursor, limit))
    return p.WorkflowPage(
        items=[p.body_of(p.Workflow, w) for w in page.items], next_cursor=page.next_cursor
    )


@router.get("/workflows/{workflow}", responses=READ_ERRORS)
def get_workflow(
    workflow: str, svc: Svc, caller: Caller, instance: InstanceRef = None
) -> p.WorkflowDetail:
    """Return one workflow (name or id) with its roles and interactions, ids and names."""
    narrowed = scope(svc, caller, instance)

    def query(session: Session) -> listing.WorkflowView:
        return listing.get_workflow(session, listing.workflow_of(session, workflow, narrowed))

    found = svc.read(query)
    auth.require_instance_reader(caller, found.instance_id, f"workflow {workflow!r}")
    return p.body_of(p.WorkflowDetail, found)


@router.get("/actors", responses=READ_ERRORS)
def list_actors(
    svc: Svc,
    caller: Caller,
    instance: InstanceRef = None,
    cursor: Cursor = None,
    limit: Limit = PAGE_DEFAULT,
) -> p.ActorPage:
    """List actors with their roles (of one instance if given), oldest first."""
    narrowed = scope(svc, caller, instance)
    page = svc.read(lambda session: listing.list_actors(session, narrowed, cursor, limit))
    return p.ActorPage(
        items=[p.body_of(p.Actor, a) for a in page.items], next_cursor=page.next_cursor
    )


@router.get("/actors/{actor_id}", responses=READ_ERRORS)
def get_actor(actor_id: uuid.UUID, svc: Svc, caller: Caller) -> p.Actor:
    """Return one actor with its roles and whether it has a working token."""
    found = svc.read(lambda session: listing.get_actor(session, actor_id))
    auth.require_instance_reader(caller, found.instance_id, f"actor {actor_id}")
    return p.body_of(p.Actor, found)


@router.get("/uows", responses=READ_ERRORS)
def list_uows(
    svc: Svc,
    caller: Caller,
    instance: InstanceRef = None,
    workflow: Annotated[
        str | None, Query(min_length=1, max_length=s.NAME_MAX, description="Name or id.")
    ] = None,
    status: Annotated[list[str] | None, Query(description="Repeatable.")] = None,
    attribute: Annotated[
        list[str] | None,
        Query(description="Repeatable key=value; the value is JSON when it parses, else text."),
    ] = None,
    since: Annotated[datetime | None, Query(description="Changed at or after.")] = None,
    until: Annotated[datetime | None, Query(description="Changed before.")] = None,
    cursor: Cursor = None,
    limit: Limit = PAGE_DEFAULT,
) -> p.UOWPage:
    """List UOWs matching every filter given, oldest first."""
    narrowed = scope(svc, caller, instance)
    wanted = tuple(search.parse_attribute_filter(a) for a in attribute or ())
    statuses = search.uow_statuses(status or ())
    lower, upper = s.aware(since, "since"), s.aware(until, "until")

    def query(session: Session) -> Page[UOWView]:
        workflow_id = None if workflow is None else listing.workflow_of(session, workflow, narrowed)
        where = search.UOWFilter(narrowed, workflow_id, statuses, wanted, lower, upper)
        return search.list_uows(session, where, cursor, limit)

    page = svc.read(query)
    return p.UOWPage(items=[s.UOW.of(u) for u in page.items], next_cursor=page.next_cursor)


@router.get("/uows/{uow_id}/history", responses=READ_ERRORS)
def history(
    uow_id: uuid.UUID,
    svc: Svc,
    caller: Caller,
    cursor: Cursor = None,
    limit: Limit = PAGE_DEFAULT,
) -> p.HistoryPage:
    """Return a page of a UOW's ledger in the order of record: ids, hashes, links, diffs."""
    auth.require_uow_reader(svc.session_factory, caller, uow_id)
    page = svc.read(lambda session: ledger.history_page(session, uow_id, cursor, limit))
    return p.HistoryPage(
        items=[p.body_of(p.HistoryEntry, e) for e in page.items], next_cursor=page.next_cursor
    )
