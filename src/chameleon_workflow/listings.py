"""What the CLI and the HTTP API list: UOWs (filtered, cursor-paged), instances, workflows, actors.

Plain functions over a Session returning frozen values; ids are resolved by the caller
(``read_models.instance_id_of``), so every filter here is an id.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from chameleon_workflow.columns import JSONDoc
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import InvalidValueError, NotFoundError
from chameleon_workflow.hashing import format_timestamp, parse_timestamp
from chameleon_workflow.models import (
    ActorRoleAssignment,
    InstanceContext,
    LocalActor,
    LocalInteraction,
    LocalRole,
    LocalWorkflow,
    UnitsOfWork,
    UOWAttribute,
)
from chameleon_workflow.states import UOWStatus

#: The largest page a listing returns.
MAX_LIMIT = 1_000


@dataclass(frozen=True, slots=True)
class UOWSummary:
    """One UOW as a listing shows it: where it is, who holds it, when it last changed."""

    uow_id: uuid.UUID
    instance_id: uuid.UUID
    instance: str
    workflow_id: uuid.UUID
    workflow: str
    status: str
    interaction_id: uuid.UUID | None
    interaction: str | None
    held_by_actor_id: uuid.UUID | None
    retry_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UOWPage:
    """A page of UOWs, newest change first, and the cursor of the next page (None: the last)."""

    uows: tuple[UOWSummary, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class UOWFilter:
    """What ``list_uows`` keeps: every given criterion must hold (statuses: any of them)."""

    instance_id: uuid.UUID | None = None
    workflow_ids: tuple[uuid.UUID, ...] = ()
    statuses: tuple[str, ...] = ()
    attributes: Mapping[str, Any] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    """One instance with how much it holds."""

    instance_id: uuid.UUID
    name: str
    description: str | None
    status: str
    deployment_date: datetime
    workflows: int
    actors: int
    uows: int


@dataclass(frozen=True, slots=True)
class RoleSummary:
    """One role of a workflow version, with the id that names it unambiguously."""

    role_id: uuid.UUID
    name: str
    role_type: str


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One imported workflow version and its roles."""

    workflow_id: uuid.UUID
    instance_id: uuid.UUID
    instance: str
    name: str
    version: str
    definition_hash: str | None
    created_at: datetime
    roles: tuple[RoleSummary, ...]


@dataclass(frozen=True, slots=True)
class ActorRole:
    """A role an actor holds, with its workflow."""

    role_id: uuid.UUID
    role: str
    workflow_id: uuid.UUID
    workflow: str
    workflow_version: str


@dataclass(frozen=True, slots=True)
class ActorSummary:
    """One actor and the roles it holds."""

    actor_id: uuid.UUID
    instance_id: uuid.UUID
    instance: str
    identity_key: str
    name: str
    actor_type: str
    created_at: datetime
    roles: tuple[ActorRole, ...]


def list_uows(
    session: Session, where: UOWFilter, *, limit: int = 50, cursor: str | None = None
) -> UOWPage:
    """Return a page of UOWs matching ``where``, newest change first (keyset paging)."""
    _check_limit(limit)
    statuses = tuple(_status(s) for s in where.statuses)
    interaction = aliased(LocalInteraction)
    query = (
        select(UnitsOfWork, InstanceContext.name, LocalWorkflow.name, interaction.name)
        .join(InstanceContext, InstanceContext.instance_id == UnitsOfWork.instance_id)
        .join(LocalWorkflow, LocalWorkflow.local_workflow_id == UnitsOfWork.local_workflow_id)
        .outerjoin(interaction, interaction.interaction_id == UnitsOfWork.current_interaction_id)
    )
    query = query.where(*_conditions(where, statuses))
    if cursor is not None:
        moment, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                UnitsOfWork.updated_at < moment,
                and_(UnitsOfWork.updated_at == moment, UnitsOfWork.uow_id < last_id),
            )
        )
    query = query.order_by(UnitsOfWork.updated_at.desc(), UnitsOfWork.uow_id.desc())
    with translated_errors():
        rows = session.execute(query.limit(limit + 1)).all()
    summaries = tuple(_uow_summary(*row) for row in rows[:limit])
    more = len(rows) > limit
    following = encode_cursor(summaries[-1].updated_at, summaries[-1].uow_id) if more else None
    return UOWPage(summaries, following)


def _conditions(where: UOWFilter, statuses: Sequence[str]) -> list[ColumnElement[bool]]:
    table = UnitsOfWork
    found: list[ColumnElement[bool]] = []
    if where.instance_id is not None:
        found.append(table.instance_id == where.instance_id)
    if where.workflow_ids:
        found.append(table.local_workflow_id.in_(where.workflow_ids))
    if statuses:
        found.append(table.status.in_(statuses))
    if where.since is not None:
        found.append(table.updated_at >= where.since)
    if where.until is not None:
        found.append(table.updated_at < where.until)
    found += [_has_attribute(k, v) for k, v in (where.attributes or {}).items()]
    return found


def _has_attribute(key: str, value: Any) -> ColumnElement[bool]:
    """A UOW whose current version of ``key`` exists and equals ``value`` (as JSON)."""
    newer = aliased(UOWAttribute)
    latest = (
        select(func.max(newer.version))
        .where(newer.uow_id == UOWAttribute.uow_id, newer.key == key)
        .scalar_subquery()
    )
    current = select(UOWAttribute.attribute_id).where(
        UOWAttribute.uow_id == UnitsOfWork.uow_id,
        UOWAttribute.key == key,
        UOWAttribute.version == latest,
        UOWAttribute.is_deleted.is_(False),
        # Bound as a JSON document: jsonb equality on PostgreSQL, the stored text on SQLite.
        UOWAttribute.value == bindparam(None, value, type_=JSONDoc),
    )
    return current.exists()


def _uow_summary(
    uow: UnitsOfWork, instance: str, workflow: str, interaction: str | None
) -> UOWSummary:
    return UOWSummary(
        uow_id=uow.uow_id,
        instance_id=uow.instance_id,
        instance=instance,
        workflow_id=uow.local_workflow_id,
        workflow=workflow,
        status=str(uow.status),
        interaction_id=uow.current_interaction_id,
        interaction=interaction,
        held_by_actor_id=uow.held_by_actor_id,
        retry_count=uow.retry_count,
        created_at=uow.created_at,
        updated_at=uow.updated_at,
    )


def encode_cursor(moment: datetime, uow_id: uuid.UUID) -> str:
    """Return the opaque cursor of the page after the UOW changed at ``moment``."""
    raw = orjson.dumps([format_timestamp(moment), str(uow_id)])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Read a cursor ``encode_cursor`` made; InvalidValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, uow_id = orjson.loads(raw)
        return parse_timestamp(moment), uuid.UUID(uow_id)
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
        raise InvalidValueError(
            f"cursor {cursor!r} is not one a listing returned; start without --cursor"
        ) from None


def _status(name: str) -> str:
    try:
        return str(UOWStatus(name.upper()))
    except ValueError:
        allowed = ", ".join(s.value for s in UOWStatus)
        raise InvalidValueError(f"unknown status {name!r} (one of: {allowed})") from None


def _check_limit(limit: int) -> None:
    if not 0 < limit <= MAX_LIMIT:
        raise InvalidValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")


def _count(model: Any) -> Any:
    return (
        select(func.count())
        .where(model.instance_id == InstanceContext.instance_id)
        .correlate(InstanceContext)
        .scalar_subquery()
    )


def instance_name(session: Session, instance_id: uuid.UUID) -> str:
    """Return the name of the instance with this id (NotFoundError when there is none)."""
    with translated_errors():
        name = session.scalar(
            select(InstanceContext.name).where(InstanceContext.instance_id == instance_id)
        )
    if name is None:
        raise NotFoundError(f"no instance with id {instance_id}")
    return name


def list_instances(session: Session) -> list[InstanceSummary]:
    """Return every instance, by name, with its numbers of workflows, actors and UOWs."""
    query = select(
        InstanceContext, _count(LocalWorkflow), _count(LocalActor), _count(UnitsOfWork)
    ).order_by(InstanceContext.name)
    with translated_errors():
        rows = session.execute(query).all()
    return [
        InstanceSummary(
            instance_id=i.instance_id,
            name=i.name,
            description=i.description,
            status=str(i.status),
            deployment_date=i.deployment_date,
            workflows=int(workflows),
            actors=int(actors),
            uows=int(uows),
        )
        for i, workflows, actors, uows in rows
    ]


def list_workflows(session: Session, instance_id: uuid.UUID | None = None) -> list[WorkflowSummary]:
    """Return every workflow version (of one instance if given) with its roles' ids."""
    query = select(LocalWorkflow, InstanceContext.name).join(
        InstanceContext, InstanceContext.instance_id == LocalWorkflow.instance_id
    )
    roles = select(LocalRole)
    if instance_id is not None:
        query = query.where(LocalWorkflow.instance_id == instance_id)
        roles = roles.where(LocalRole.instance_id == instance_id)
    query = query.order_by(InstanceContext.name, LocalWorkflow.name, LocalWorkflow.created_at)
    with translated_errors():
        rows = session.execute(query).all()
        by_workflow: dict[uuid.UUID, list[RoleSummary]] = {}
        for role in session.scalars(roles.order_by(LocalRole.name)):
            by_workflow.setdefault(role.local_workflow_id, []).append(
                RoleSummary(role.role_id, role.name, str(role.role_type))
            )
    return [
        WorkflowSummary(
            workflow_id=w.local_workflow_id,
            instance_id=w.instance_id,
            instance=instance,
            name=w.name,
            version=w.version,
            definition_hash=w.definition_hash,
            created_at=w.created_at,
            roles=tuple(by_workflow.get(w.local_workflow_id, ())),
        )
        for w, instance in rows
    ]


def list_actors(session: Session, instance_id: uuid.UUID | None = None) -> list[ActorSummary]:
    """Return every actor (of one instance if given) with the roles it holds."""
    query = select(LocalActor, InstanceContext.name).join(
        InstanceContext, InstanceContext.instance_id == LocalActor.instance_id
    )
    held = (
        select(ActorRoleAssignment.actor_id, LocalRole, LocalWorkflow.name, LocalWorkflow.version)
        .join(LocalRole, LocalRole.role_id == ActorRoleAssignment.role_id)
        .join(LocalWorkflow, LocalWorkflow.local_workflow_id == LocalRole.local_workflow_id)
    )
    if instance_id is not None:
        query = query.where(LocalActor.instance_id == instance_id)
        held = held.where(ActorRoleAssignment.instance_id == instance_id)
    query = query.order_by(InstanceContext.name, LocalActor.identity_key)
    with translated_errors():
        rows = session.execute(query).all()
        roles: dict[uuid.UUID, list[ActorRole]] = {}
        for actor_id, role, workflow, version in session.execute(
            held.order_by(LocalWorkflow.name, LocalRole.name)
        ):
            roles.setdefault(actor_id, []).append(
                ActorRole(role.role_id, role.name, role.local_workflow_id, workflow, version)
            )
    return [
        ActorSummary(
            actor_id=a.actor_id,
            instance_id=a.instance_id,
            instance=instance,
            identity_key=a.identity_key,
            name=a.name,
            actor_type=str(a.actor_type),
            created_at=a.created_at,
            roles=tuple(roles.get(a.actor_id, ())),
        )
        for a, instance in rows
    ]
