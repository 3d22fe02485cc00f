"""What the HTTP API lists and reads: instances, workflows and actors, page by page.

Every list is in creation order and paged by an opaque cursor (``paging``). A ``scope``
narrows a list to one instance (an actor sees its own only). Names or ids are resolved
here too. Nothing here writes; the functions work in the caller's session. UOWs are
found by ``search``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from chameleon_workflow.db import translated_errors
from chameleon_workflow.engine.paging import (
    Page,
    after_cursor,
    check_limit,
    page_of,
)
from chameleon_workflow.errors import InvalidValueError, NotFoundError
from chameleon_workflow.models import (
    ActorRoleAssignment,
    InstanceContext,
    LocalActor,
    LocalInteraction,
    LocalRole,
    LocalWorkflow,
)


@dataclass(frozen=True, slots=True)
class InstanceView:
    """An instance: an isolation container."""

    instance_id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RoleRef:
    """A role of a workflow."""

    role_id: uuid.UUID
    name: str
    role_type: str


@dataclass(frozen=True, slots=True)
class InteractionRef:
    """An interaction of a workflow."""

    interaction_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class WorkflowView:
    """An imported workflow; its roles and interactions when read one at a time."""

    workflow_id: uuid.UUID
    instance_id: uuid.UUID
    name: str
    version: str
    definition_hash: str | None
    created_at: datetime
    roles: tuple[RoleRef, ...] = ()
    interactions: tuple[InteractionRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ActorRole:
    """A role an actor holds."""

    role_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class ActorView:
    """An actor, the roles it holds and whether it has a working token."""

    actor_id: uuid.UUID
    instance_id: uuid.UUID
    identity_key: str
    name: str
    actor_type: str
    roles: tuple[ActorRole, ...]
    has_token: bool


# ---------------------------------------------------------------------- resolving


def instance_of(session: Session, ref: str | uuid.UUID) -> uuid.UUID:
    """Return the id of the instance with this name or id; NotFoundError when none."""
    wanted = _id_or_name(ref, InstanceContext.instance_id, InstanceContext.name)
    with translated_errors():
        found = session.scalar(select(InstanceContext.instance_id).where(wanted))
    if found is None:
        raise NotFoundError(f"no instance named or with id {str(ref)!r}")
    return found


def workflow_of(
    session: Session, ref: str | uuid.UUID, instance_id: uuid.UUID | None = None
) -> uuid.UUID:
    """Return the id of a workflow identified by ``ref``, or named by it (in one instance if given).

    An id is found wherever it is, so that the caller can tell "not yours" (403) from
    "no such workflow" (404); a name is looked up in ``instance_id`` only.
    """
    wanted = _id_or_name(ref, LocalWorkflow.local_workflow_id, LocalWorkflow.name)
    query = select(LocalWorkflow.local_workflow_id).where(wanted)
    if instance_id is not None and _maybe_id(ref) is None:
        query = query.where(LocalWorkflow.instance_id == instance_id)
    with translated_errors():
        found = list(session.scalars(query.limit(2)))
    if not found:
        raise NotFoundError(f"no workflow named or with id {str(ref)!r}")
    if len(found) > 1:
        raise InvalidValueError(
            f"workflow name {str(ref)!r} is used in several instances; pass its id or an instance"
        )
    return found[0]


def _id_or_name(ref: str | uuid.UUID, id_column: Any, name_column: Any) -> ColumnElement[bool]:
    if isinstance(ref, str) and "\x00" in ref:
        raise InvalidValueError("a name must not contain NUL (\\u0000)")
    ident = _maybe_id(ref)
    return id_column == ident if ident is not None else name_column == ref  # type: ignore[no-any-return]


def _maybe_id(ref: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(ref, uuid.UUID):
        return ref
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


# ---------------------------------------------------------------------- instances


def list_instances(
    session: Session, scope: uuid.UUID | None, cursor: str | None, limit: int
) -> Page[InstanceView]:
    """Return a page of instances (only ``scope`` when given)."""
    table = InstanceContext
    query = select(table)
    if scope is not None:
        query = query.where(table.instance_id == scope)
    query = after_cursor(query, table.deployment_date, table.instance_id, cursor)
    with translated_errors():
        rows = session.scalars(query.limit(check_limit(limit) + 1)).all()
    kept, after = page_of(rows, limit, lambda r: (r.deployment_date.isoformat(), r.instance_id))
    return Page(tuple(_instance(r) for r in kept), after)


def get_instance(session: Session, instance_id: uuid.UUID) -> InstanceView:
    """Return one instance."""
    with translated_errors():
        row = session.get(InstanceContext, instance_id)
    if row is None:
        raise NotFoundError(f"no instance with id {instance_id}")
    return _instance(row)


def _instance(row: InstanceContext) -> InstanceView:
    return InstanceView(row.instance_id, row.name, row.description, row.deployment_date)


# ---------------------------------------------------------------------- workflows


def list_workflows(
    session: Session, scope: uuid.UUID | None, cursor: str | None, limit: int
) -> Page[WorkflowView]:
    """Return a page of workflows (of one instance when ``scope`` is given)."""
    table = LocalWorkflow
    query = select(table)
    if scope is not None:
        query = query.where(table.instance_id == scope)
    query = after_cursor(query, table.created_at, table.local_workflow_id, cursor)
    with translated_errors():
        rows = session.scalars(query.limit(check_limit(limit) + 1)).all()
    kept, after = page_of(rows, limit, lambda r: (r.created_at.isoformat(), r.local_workflow_id))
    return Page(tuple(_workflow(r) for r in kept), after)


def get_workflow(session: Session, workflow_id: uuid.UUID) -> WorkflowView:
    """Return one workflow with its roles and interactions (ids and names)."""
    with translated_errors():
        row = session.get(LocalWorkflow, workflow_id)
        if row is None:
            raise NotFoundError(f"no workflow with id {workflow_id}")
        roles = session.execute(
            select(LocalRole.role_id, LocalRole.name, LocalRole.role_type)
            .where(LocalRole.local_workflow_id == workflow_id)
            .order_by(LocalRole.name)
        ).all()
        interactions = session.execute(
            select(LocalInteraction.interaction_id, LocalInteraction.name)
            .where(LocalInteraction.local_workflow_id == workflow_id)
            .order_by(LocalInteraction.name)
        ).all()
    return _workflow(
        row,
        tuple(RoleRef(r[0], r[1], str(r[2])) for r in roles),
        tuple(InteractionRef(i[0], i[1]) for i in interactions),
    )


def _workflow(
    row: LocalWorkflow,
    roles: tuple[RoleRef, ...] = (),
    interactions: tuple[InteractionRef, ...] = (),
) -> WorkflowView:
    return WorkflowView(
        row.local_workflow_id,
        row.instance_id,
        row.name,
        row.version,
        row.definition_hash,
        row.created_at,
        roles,
        interactions,
    )


# ------------------------------------------------------------------------- actors


def list_actors(
    session: Session, scope: uuid.UUID | None, cursor: str | None, limit: int
) -> Page[ActorView]:
    """Return a page of actors with their roles (of one instance when ``scope`` is given)."""
    table = LocalActor
    query = select(table)
    if scope is not None:
        query = query.where(table.instance_id == scope)
    query = after_cursor(query, table.created_at, table.actor_id, cursor)
    with translated_errors():
        rows = session.scalars(query.limit(check_limit(limit) + 1)).all()
        kept, after = page_of(rows, limit, lambda r: (r.created_at.isoformat(), r.actor_id))
        roles = _roles_of(session, [r.actor_id for r in kept])
    return Page(tuple(_actor(r, roles.get(r.actor_id, ())) for r in kept), after)


def get_actor(session: Session, actor_id: uuid.UUID) -> ActorView:
    """Return one actor with its roles."""
    with translated_errors():
        row = session.get(LocalActor, actor_id)
        if row is None:
            raise NotFoundError(f"no actor with id {actor_id}")
        roles = _roles_of(session, [actor_id])
    return _actor(row, roles.get(actor_id, ()))


def _roles_of(
    session: Session, actor_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[ActorRole, ...]]:
    if not actor_ids:
        return {}
    query = (
        select(ActorRoleAssignment.actor_id, LocalRole.role_id, LocalRole.name)
        .join(LocalRole, LocalRole.role_id == ActorRoleAssignment.role_id)
        .where(ActorRoleAssignment.actor_id.in_(actor_ids))
        .order_by(LocalRole.name, LocalRole.role_id)
    )
    found: dict[uuid.UUID, list[ActorRole]] = {}
    for actor_id, role_id, name in session.execute(query):
        found.setdefault(actor_id, []).append(ActorRole(role_id, name))
    return {actor_id: tuple(roles) for actor_id, roles in found.items()}


def _actor(row: LocalActor, roles: tuple[ActorRole, ...]) -> ActorView:
    return ActorView(
        row.actor_id,
        row.instance_id,
        row.identity_key,
        row.name,
        str(row.actor_type),
        roles,
        row.token_hash is not None,
    )
