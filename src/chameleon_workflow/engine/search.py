"""Finding UOWs: by instance, workflow, status, attribute values and time of last change.

Pages are in creation order with the cursors of ``paging``. An attribute filter is
checked in Python on each batch read, so both back ends compare values the same way (as
canonical JSON: ``1`` matches ``1.0`` but neither ``true`` nor ``"1"``); for a string,
boolean or exact integer the query first narrows to UOWs that ever held the value, so a
rare value is found without reading every UOW into Python.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select
from sqlalchemy.orm import Session

from chameleon_workflow.columns import JSONDoc
from chameleon_workflow.db import translated_errors
from chameleon_workflow.engine.paging import Page, after_cursor, check_limit, encode_cursor
from chameleon_workflow.engine.views import UOWView, make_view
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.hashing import canonical_json
from chameleon_workflow.models import LocalInteraction, UnitsOfWork, UOWAttribute
from chameleon_workflow.states import UOWStatus

#: UOWs read per round while an attribute filter is applied.
SCAN_BATCH = 200
#: The largest integer a double (and so canonical JSON) holds exactly.
MAX_EXACT_INT = 2**53 - 1


@dataclass(frozen=True, slots=True)
class UOWFilter:
    """Which UOWs a list shows; every given condition must hold."""

    instance_id: uuid.UUID | None = None
    workflow_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()
    attributes: tuple[tuple[str, Any], ...] = ()
    since: datetime | None = None
    until: datetime | None = None


def uow_statuses(given: Iterable[str]) -> tuple[str, ...]:
    """Return the statuses asked for, or raise InvalidValueError naming an unknown one."""
    known = {status.value for status in UOWStatus}
    wanted = tuple(str(status).upper() for status in given)
    for status in wanted:
        if status not in known:
            raise InvalidValueError(
                f"unknown status {status!r} (one of: {', '.join(sorted(known))})"
            )
    return wanted


def list_uows(session: Session, where: UOWFilter, cursor: str | None, limit: int) -> Page[UOWView]:
    """Return a page of UOWs matching every condition of ``where``, in creation order."""
    check_limit(limit)
    query = _uow_query(where)
    dialect = session.get_bind().dialect.name
    for key, value in where.attributes:
        narrowed = _attribute_prefilter(dialect, key, value)
        if narrowed is not None:
            query = query.where(narrowed)
    batch = SCAN_BATCH if where.attributes else limit + 1
    found: list[UOWView] = []
    position = cursor
    while True:
        paged = after_cursor(query, UnitsOfWork.created_at, UnitsOfWork.uow_id, position)
        with translated_errors():
            rows = session.scalars(paged.limit(batch)).all()
            attributes = current_attributes(session, [uow.uow_id for uow in rows])
            names = interaction_names(session, {uow.current_interaction_id for uow in rows})
        for uow in rows:
            interaction = names.get(uow.current_interaction_id)
            attrs = attributes.get(uow.uow_id, {})
            if not _matches(attrs, where.attributes):
                continue
            if len(found) == limit:
                last = found[-1]
                return Page(tuple(found), _uow_position(session, last))
            found.append(make_view(uow, interaction, attrs))
        if len(rows) < batch:
            return Page(tuple(found), None)
        last_uow = rows[-1]
        position = encode_cursor(last_uow.created_at.isoformat(), last_uow.uow_id)


def _uow_position(session: Session, view: UOWView) -> str:
    with translated_errors():
        created = session.scalar(
            select(UnitsOfWork.created_at).where(UnitsOfWork.uow_id == view.uow_id)
        )
    return encode_cursor(created.isoformat() if created else "", view.uow_id)


def _uow_query(where: UOWFilter) -> Select[UnitsOfWork]:
    # No join to the interaction names here: the database would join every matching UOW
    # before sorting; the page's few names are read after it (``interaction_names``).
    table = UnitsOfWork
    query = select(table)
    if where.instance_id is not None:
        query = query.where(table.instance_id == where.instance_id)
    if where.workflow_id is not None:
        query = query.where(table.local_workflow_id == where.workflow_id)
    if where.statuses:
        query = query.where(table.status.in_([UOWStatus(s) for s in where.statuses]))
    if where.since is not None:
        query = query.where(table.updated_at >= where.since)
    if where.until is not None:
        query = query.where(table.updated_at < where.until)
    return query


def _attribute_prefilter(dialect: str, key: str, value: Any) -> ColumnElement[bool] | None:
    """Narrow in SQL to UOWs that ever held ``key`` = ``value``, or None when unsafe.

    Only a superset of the matches: the canonical check in Python still decides. Strings,
    booleans and integers that a double holds exactly compare in SQL as they do
    canonically (``json_extract`` on SQLite, jsonb equality on PostgreSQL); other values
    (floats, null, arrays, objects) are left to the Python check alone.
    """
    exact_int = isinstance(value, int) and abs(value) <= MAX_EXACT_INT
    if not isinstance(value, str | bool) and not exact_int:
        return None
    table = UOWAttribute
    stored: ColumnElement[bool] = (
        func.json_extract(table.value, "$") == value
        if dialect == "sqlite"
        else table.value == bindparam(None, value, type_=JSONDoc)
    )
    # IN, not a correlated EXISTS: one pass over the attribute rows instead of one index
    # probe per UOW (about 7x faster on SQLite at 100K UOWs; the same plan on PostgreSQL).
    return UnitsOfWork.uow_id.in_(select(table.uow_id).where(table.key == key, stored))


def interaction_names(
    session: Session, interaction_ids: set[uuid.UUID | None]
) -> dict[uuid.UUID | None, str]:
    """Return the names of the given interactions (None, no interaction, is skipped)."""
    wanted = [i for i in interaction_ids if i is not None]
    if not wanted:
        return {}
    query = select(LocalInteraction.interaction_id, LocalInteraction.name).where(
        LocalInteraction.interaction_id.in_(wanted)
    )
    return {row.interaction_id: row.name for row in session.execute(query)}


def current_attributes(
    session: Session, uow_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Return the current attributes (latest non-deleted version of each key) of many UOWs."""
    if not uow_ids:
        return {}
    table = UOWAttribute
    latest = (
        select(table.uow_id, table.key, func.max(table.version).label("version"))
        .where(table.uow_id.in_(uow_ids))
        .group_by(table.uow_id, table.key)
        .subquery()
    )
    query = (
        select(table.uow_id, table.key, table.value)
        .join(
            latest,
            and_(
                table.uow_id == latest.c.uow_id,
                table.key == latest.c.key,
                table.version == latest.c.version,
            ),
        )
        .where(table.is_deleted.is_(False))
        .order_by(table.uow_id, table.key)
    )
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for uow_id, key, value in session.execute(query):
        found.setdefault(uow_id, {})[key] = value
    return found


def parse_attribute_filter(text: str) -> tuple[str, Any]:
    """Read ``key=value``: the value as JSON when it parses, else as the text itself."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InvalidValueError(f"attribute filter {text!r}: write key=value")
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    return key, value


def _matches(attributes: dict[str, Any], wanted: tuple[tuple[str, Any], ...]) -> bool:
    # Canonical JSON tells 1 from true and from "1", which Python's == does not.
    return all(
        key in attributes and canonical_json(attributes[key]) == canonical_json(value)
        for key, value in wanted
    )
