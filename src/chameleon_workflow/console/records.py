"""The console's reads of the interaction log and the admin ledger, and of the recent pace.

Both lists are newest first, filtered by every condition given, a page at a time by
offset (a reviewer pages back a few screens, not through millions of rows).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.models import AdminEvent, InteractionLog, UnitsOfWorkHistory
from chameleon_workflow.states import AdminAction, LogType

RECORDS_PAGE = 50


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which interaction-log rows to show; every given condition must hold."""

    log_type: str | None = None
    instance_id: uuid.UUID | None = None
    uow_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class LogRow:
    """One interaction-log row as the console lists it."""

    log_id: uuid.UUID
    timestamp: datetime
    log_type: str
    instance_id: uuid.UUID | None
    uow_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    event_details: Any
    error_metadata: Any


@dataclass(frozen=True, slots=True)
class AdminRow:
    """One admin-ledger row as the console lists it."""

    sequence: int
    recorded_at: datetime
    principal: str
    actor_id: uuid.UUID | None
    action: str
    instance_id: uuid.UUID | None
    subject_id: str | None
    details: Any


def log_type_of(given: str | None) -> str | None:
    """Return a known log type (any case), None when not given; InvalidValueError else."""
    if not given:
        return None
    try:
        return LogType(given.upper()).value
    except ValueError:
        allowed = ", ".join(kind.value for kind in LogType)
        raise InvalidValueError(f"unknown log type {given!r} (one of: {allowed})") from None


def logs(session: Session, where: LogFilter, offset: int) -> list[LogRow]:
    """Return a page of interaction-log rows, newest first."""
    table = InteractionLog
    query = select(table)
    for column, value in (
        (table.instance_id, where.instance_id),
        (table.uow_id, where.uow_id),
        (table.actor_id, where.actor_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.log_type is not None:
        query = query.where(table.log_type == LogType(where.log_type))
    if where.since is not None:
        query = query.where(table.timestamp >= where.since)
    if where.until is not None:
        query = query.where(table.timestamp < where.until)
    query = query.order_by(table.timestamp.desc(), table.log_id).limit(RECORDS_PAGE).offset(offset)
    with translated_errors():
        rows = session.scalars(query).all()
    return [
        LogRow(
            r.log_id,
            r.timestamp,
            str(r.log_type),
            r.instance_id,
            r.uow_id,
            r.actor_id,
            r.event_details,
            r.error_metadata,
        )
        for r in rows
    ]


def admin_action_of(given: str | None) -> str | None:
    """Return a known admin action (any case), None when not given; InvalidValueError else."""
    if not given:
        return None
    try:
        return AdminAction(given.upper()).value
    except ValueError:
        allowed = ", ".join(kind.value for kind in AdminAction)
        raise InvalidValueError(f"unknown admin action {given!r} (one of: {allowed})") from None


def admin_events(session: Session, where: LogFilter, offset: int) -> list[AdminRow]:
    """Return a page of admin-ledger rows, newest first (``where.log_type`` is the action)."""
    table = AdminEvent
    query = select(table)
    if where.log_type is not None:
        query = query.where(table.action == where.log_type)
    if where.instance_id is not None:
        query = query.where(table.instance_id == where.instance_id)
    if where.actor_id is not None:
        query = query.where(table.actor_id == where.actor_id)
    since, until = where.since, where.until
    if since is not None:
        query = query.where(table.recorded_at >= since)
    if until is not None:
        query = query.where(table.recorded_at < until)
    query = query.order_by(table.sequence.desc()).limit(RECORDS_PAGE).offset(offset)
    with translated_errors():
        rows = session.scalars(query).all()
    return [
        AdminRow(
            r.sequence,
            r.recorded_at,
            r.principal,
            r.actor_id,
            r.action,
            r.instance_id,
            r.subject_id,
            r.details,
        )
        for r in rows
    ]


def transitions_per_minute(session: Session, now: datetime, minutes: int = 5) -> float:
    """Return the ledger rows written per minute over the last ``minutes`` minutes."""
    since = now - timedelta(minutes=minutes)
    query = select(func.count()).where(UnitsOfWorkHistory.transition_timestamp >= since)
    with translated_errors():
        written = int(session.scalar(query) or 0)
    return written / minutes
