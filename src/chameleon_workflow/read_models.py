"""Read models for the CLI and the HTTP API: a UOW's timeline and interaction-log queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import InvalidValueError, NotFoundError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import (
    InstanceContext,
    InteractionLog,
    LocalActor,
    LocalInteraction,
    UnitsOfWork,
    UnitsOfWorkHistory,
)
from chameleon_workflow.states import LogType

MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One history row with names resolved, for display."""

    sequence: int
    timestamp: datetime
    event_type: str
    previous_status: str | None
    new_status: str
    previous_interaction: str | None
    new_interaction: str | None
    actor: str | None
    reasoning: str | None
    changes: Any
    metadata: Any
    new_state_hash: str
    chain_hash: str


@dataclass(frozen=True, slots=True)
class LogView:
    """One interaction-log row."""

    log_id: uuid.UUID
    timestamp: datetime
    log_type: str
    instance_id: uuid.UUID | None
    uow_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    interaction_id: uuid.UUID | None
    event_details: Any
    error_metadata: Any


def _names(session: Session, model: Any, key: Any, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(select(key, model.name).where(key.in_(ids))).all()
    return {row[0]: row[1] for row in rows}


def uow_timeline(
    session: Session, uow_id: uuid.UUID | str, service: UOWPersistenceService | None = None
) -> list[TimelineEntry]:
    """Return a UOW's history in the order of record, with interaction and actor names."""
    service = service or UOWPersistenceService()
    service.get_uow(session, uow_id)  # NotFoundError for an unknown id
    rows: list[UnitsOfWorkHistory] = service.get_uow_history(session, uow_id)
    with translated_errors():
        interactions = _names(
            session,
            LocalInteraction,
            LocalInteraction.interaction_id,
            {i for r in rows for i in (r.previous_interaction_id, r.new_interaction_id) if i},
        )
        actors = _names(
            session, LocalActor, LocalActor.actor_id, {r.actor_id for r in rows if r.actor_id}
        )

    def name(table: dict[uuid.UUID, str], key: uuid.UUID | None) -> str | None:
        return None if key is None else table.get(key, str(key))

    return [
        TimelineEntry(
            sequence=r.sequence,
            timestamp=r.transition_timestamp,
            event_type=str(r.event_type),
            previous_status=None if r.previous_status is None else str(r.previous_status),
            new_status=str(r.new_status),
            previous_interaction=name(interactions, r.previous_interaction_id),
            new_interaction=name(interactions, r.new_interaction_id),
            actor=name(actors, r.actor_id),
            reasoning=r.reasoning,
            changes=r.changes,
            metadata=r.transition_metadata,
            new_state_hash=r.new_state_hash,
            chain_hash=r.chain_hash,
        )
        for r in rows
    ]


def instance_id_of(session: Session, name_or_id: str) -> uuid.UUID:
    """Return the id of the instance with this name or id; NotFoundError when there is none."""
    try:
        wanted = InstanceContext.instance_id == uuid.UUID(name_or_id)
    except ValueError:
        wanted = InstanceContext.name == name_or_id
    with translated_errors():
        found = session.scalar(select(InstanceContext.instance_id).where(wanted))
    if found is None:
        raise NotFoundError(f"no instance named or with id {name_or_id!r}")
    return found


def count_uows(session: Session, instance_id: uuid.UUID | None = None) -> int:
    """Count UOWs (of one instance if given)."""
    query = select(func.count()).select_from(UnitsOfWork)
    if instance_id is not None:
        query = query.where(UnitsOfWork.instance_id == instance_id)
    with translated_errors():
        return int(session.scalar(query) or 0)


def query_logs(
    session: Session,
    *,
    instance_id: uuid.UUID | None = None,
    uow_id: uuid.UUID | None = None,
    log_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[LogView]:
    """Return interaction-log rows, newest first, filtered by instance, UOW, type and time."""
    if not 0 < limit <= MAX_PAGE:
        raise InvalidValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if offset < 0:
        raise InvalidValueError(f"offset must be >= 0, got {offset}")
    query = select(InteractionLog)
    if instance_id is not None:
        query = query.where(InteractionLog.instance_id == instance_id)
    if uow_id is not None:
        query = query.where(InteractionLog.uow_id == uow_id)
    if log_type is not None:
        try:
            kind = LogType(log_type.upper())
        except ValueError:
            allowed = ", ".join(t.value for t in LogType)
            raise InvalidValueError(f"unknown log type {log_type!r} (one of: {allowed})") from None
        query = query.where(InteractionLog.log_type == kind)
    if since is not None:
        query = query.where(InteractionLog.timestamp >= since)
    if until is not None:
        query = query.where(InteractionLog.timestamp < until)
    query = query.order_by(InteractionLog.timestamp.desc(), InteractionLog.log_id)
    with translated_errors():
        rows = session.scalars(query.limit(limit).offset(offset)).all()
    return [
        LogView(
            log_id=r.log_id,
            timestamp=r.timestamp,
            log_type=str(r.log_type),
            instance_id=r.instance_id,
            uow_id=r.uow_id,
            actor_id=r.actor_id,
            role_id=r.role_id,
            interaction_id=r.interaction_id,
            event_details=r.event_details,
            error_metadata=r.error_metadata,
        )
        for r in rows
    ]
