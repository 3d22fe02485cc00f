"""The engine's read side: views it returns, lookups it makes, and the queue queries.

Nothing here changes UOW state; the engine hands every transition to the persistence
service. Views are frozen values so no ORM object leaves the engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chameleon_workflow.errors import InvalidValueError, NotAuthorizedError, NotFoundError
from chameleon_workflow.models import (
    ActorRoleAssignment,
    LocalActor,
    LocalRole,
    UnitsOfWork,
    UnitsOfWorkHistory,
    as_uuid,
)
from chameleon_workflow.states import ActorType, UOWStatus
from chameleon_workflow.telemetry.adapter import ShadowLoggerTelemetryAdapter


@dataclass(frozen=True, slots=True)
class UOWView:
    """A unit of work as the engine reports it: status, place, holder and attributes."""

    uow_id: uuid.UUID
    instance_id: uuid.UUID
    workflow_id: uuid.UUID
    status: str
    interaction_id: uuid.UUID | None
    interaction: str | None
    held_by: uuid.UUID | None
    retry_count: int
    version: int
    last_heartbeat_at: datetime | None
    attributes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one zombie sweep did: UOWs re-queued, UOWs declared dead, UOWs skipped."""

    requeued: int
    dead: int
    skipped: int = 0

    @property
    def reclaimed(self) -> int:
        """Return how many stale UOWs the sweep took away from their holders."""
        return self.requeued + self.dead


@dataclass(frozen=True, slots=True)
class Transition:
    """One committed status change, to be logged as a STATE_TRANSITION row."""

    uow_id: uuid.UUID
    role_id: uuid.UUID | None
    interaction_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    previous: str
    new: str
    reasoning: str | None


class PendingSink:
    """Hold guard errors and decisions until the transaction that made them commits."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def capture_shadow_log_error(
        self,
        uow_id: uuid.UUID | None,
        role_id: uuid.UUID | None,
        interaction_id: uuid.UUID | None,
        actor_id: uuid.UUID | None,
        error_message: str,
        condition: str,
        variables: Any,
    ) -> bool:
        """Keep an evaluation error."""
        ids = (uow_id, role_id, interaction_id, actor_id)
        self.events.append(("error", (*ids, error_message, condition, variables)))
        return True

    def capture_guardian_decision(
        self,
        uow_id: uuid.UUID | None,
        role_id: uuid.UUID | None,
        interaction_id: uuid.UUID | None,
        actor_id: uuid.UUID | None,
        guardian_name: str,
        condition: str,
        decision: str,
        matched_branch_index: int | None,
    ) -> bool:
        """Keep a decision."""
        ids = (uow_id, role_id, interaction_id, actor_id)
        self.events.append(
            ("decision", (*ids, guardian_name, condition, decision, matched_branch_index))
        )
        return True

    def replay(self, adapter: ShadowLoggerTelemetryAdapter) -> None:
        """Forward everything kept to the telemetry adapter."""
        for kind, args in self.events:
            if kind == "error":
                adapter.capture_shadow_log_error(*args)
            else:
                adapter.capture_guardian_decision(*args)


@dataclass
class TxnLog:
    """What one engine transaction did, emitted to telemetry once it has committed."""

    instance_id: uuid.UUID | None = None
    transitions: list[Transition] = field(default_factory=list)
    sink: PendingSink = field(default_factory=PendingSink)


@dataclass(frozen=True, slots=True)
class ActorFacts:
    """What the engine needs to know about an actor (immutable once registered)."""

    actor_id: uuid.UUID
    instance_id: uuid.UUID
    identity_key: str
    actor_type: str


@dataclass(frozen=True, slots=True)
class RoleFacts:
    """Where a role lives (immutable once imported)."""

    role_id: uuid.UUID
    instance_id: uuid.UUID
    workflow_id: uuid.UUID
    name: str


def get_actor(session: Session, actor_id: uuid.UUID | str) -> ActorFacts:
    """Return the actor or raise NotFoundError."""
    actor = session.get(LocalActor, as_uuid(actor_id, "actor id"))
    if actor is None:
        raise NotFoundError(f"no actor with id {actor_id}")
    return ActorFacts(actor.actor_id, actor.instance_id, actor.identity_key, actor.actor_type)


def get_uow_row(session: Session, uow_id: uuid.UUID | str) -> UnitsOfWork:
    """Return the UOW row or raise NotFoundError."""
    uow = session.get(UnitsOfWork, as_uuid(uow_id, "UOW id"))
    if uow is None:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    return uow


def find_role(session: Session, instance_id: uuid.UUID, role: uuid.UUID | str) -> RoleFacts:
    """Return the role named or identified by ``role`` in an instance."""
    row = _role_row(session, instance_id, role)
    return RoleFacts(row.role_id, row.instance_id, row.local_workflow_id, row.name)


def _role_row(session: Session, instance_id: uuid.UUID, role: uuid.UUID | str) -> LocalRole:
    """Return the role named or identified by ``role`` in an instance."""
    role_id = _maybe_uuid(role)
    if role_id is not None:
        row = session.get(LocalRole, role_id)
        if row is None or row.instance_id != instance_id:
            raise NotFoundError(f"no role with id {role_id} in instance {instance_id}")
        return row
    query = select(LocalRole).where(LocalRole.instance_id == instance_id, LocalRole.name == role)
    rows = list(session.scalars(query))
    if not rows:
        raise NotFoundError(f"no role named {role!r} in instance {instance_id}")
    if len(rows) > 1:
        raise InvalidValueError(
            f"role name {role!r} is used by {len(rows)} workflows in instance {instance_id}; "
            "pass the role id"
        )
    return rows[0]


def _maybe_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def actor_role_ids(session: Session, actor_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """Return the ids of every role assigned to an actor."""
    query = select(ActorRoleAssignment.role_id).where(ActorRoleAssignment.actor_id == actor_id)
    return frozenset(session.scalars(query))


def require_role(session: Session, actor: ActorFacts, role_id: uuid.UUID, role_name: str) -> None:
    """Raise NotAuthorizedError unless the actor holds the role."""
    query = select(ActorRoleAssignment.assignment_id).where(
        ActorRoleAssignment.actor_id == actor.actor_id, ActorRoleAssignment.role_id == role_id
    )
    if session.execute(query).first() is None:
        raise NotAuthorizedError(
            f"actor {actor.identity_key!r} ({actor.actor_id}) does not hold role {role_name!r}"
        )


def require_holder(uow: UnitsOfWork, actor: ActorFacts) -> None:
    """Raise NotAuthorizedError unless the actor holds the (ACTIVE) UOW."""
    if uow.held_by_actor_id != actor.actor_id or uow.status != UOWStatus.ACTIVE:
        holder = uow.held_by_actor_id or "nobody"
        raise NotAuthorizedError(
            f"actor {actor.identity_key!r} ({actor.actor_id}) does not hold UOW {uow.uow_id} "
            f"(status {uow.status}, held by {holder})"
        )


def claim_next(
    session: Session, interaction_ids: Sequence[uuid.UUID], *, skip_locked: bool
) -> UnitsOfWork | None:
    """Return the oldest PENDING UOW waiting in one of the interactions, row-locked on PostgreSQL.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets concurrent claimers pass each other; on
    SQLite the caller's BEGIN IMMEDIATE transaction already excludes every other writer.
    """
    query = (
        select(UnitsOfWork)
        .where(
            UnitsOfWork.current_interaction_id.in_(interaction_ids),
            UnitsOfWork.status == UOWStatus.PENDING,
        )
        .order_by(UnitsOfWork.created_at, UnitsOfWork.uow_id)
        .limit(1)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()


def stale_uow_ids(
    session: Session, cutoff: datetime, instance_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Return ACTIVE UOWs (of one instance if given) whose heartbeat is older than ``cutoff``."""
    query = (
        select(UnitsOfWork.uow_id)
        .where(
            UnitsOfWork.status == UOWStatus.ACTIVE,
            or_(UnitsOfWork.last_heartbeat_at < cutoff, UnitsOfWork.last_heartbeat_at.is_(None)),
        )
        .order_by(UnitsOfWork.last_heartbeat_at)
    )
    if instance_id is not None:
        query = query.where(UnitsOfWork.instance_id == instance_id)
    return list(session.scalars(query))


def lock_stale(
    session: Session, uow_id: uuid.UUID, cutoff: datetime, *, skip_locked: bool
) -> UnitsOfWork | None:
    """Re-read one sweep candidate under lock; None when it is no longer stale."""
    query = select(UnitsOfWork).where(
        UnitsOfWork.uow_id == uow_id,
        UnitsOfWork.status == UOWStatus.ACTIVE,
        or_(UnitsOfWork.last_heartbeat_at < cutoff, UnitsOfWork.last_heartbeat_at.is_(None)),
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()


def system_actor_for(session: Session, role_id: uuid.UUID) -> uuid.UUID | None:
    """Return a SYSTEM actor holding the role (the TAU sweeper), if there is one."""
    query = (
        select(LocalActor.actor_id)
        .join(ActorRoleAssignment, ActorRoleAssignment.actor_id == LocalActor.actor_id)
        .where(ActorRoleAssignment.role_id == role_id, LocalActor.actor_type == ActorType.SYSTEM)
        .order_by(LocalActor.created_at, LocalActor.actor_id)
        .limit(1)
    )
    return session.scalars(query).first()


def failed_from(session: Session, uow_id: uuid.UUID) -> uuid.UUID | None:
    """Return the interaction a FAILED UOW was in when it failed (from its history)."""
    table = UnitsOfWorkHistory
    query = (
        select(table.previous_interaction_id)
        .where(
            table.uow_id == uow_id,
            table.new_status == UOWStatus.FAILED,
            table.previous_status != UOWStatus.FAILED,
        )
        .order_by(table.sequence.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def make_view(uow: UnitsOfWork, interaction: str | None, attributes: Mapping[str, Any]) -> UOWView:
    """Freeze the current state of a UOW row into a view."""
    return UOWView(
        uow_id=uow.uow_id,
        instance_id=uow.instance_id,
        workflow_id=uow.local_workflow_id,
        status=str(uow.status),
        interaction_id=uow.current_interaction_id,
        interaction=interaction,
        held_by=uow.held_by_actor_id,
        retry_count=uow.retry_count,
        version=uow.version,
        last_heartbeat_at=uow.last_heartbeat_at,
        attributes=MappingProxyType(dict(attributes)),
    )
