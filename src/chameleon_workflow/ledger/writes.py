"""Planning and performing one ledger write: the history row, attribute rows, the UOW row.

A ``Change`` is the new column values of one write. ``write`` turns it into the history
record and its keyed link (``planned_append``: one MAC under the current ledger key),
hands both to the back end's SQL as one compare-and-set, and mirrors the stored columns
on the ORM object. Attribute rows carry a random salt and the salted digest of their
value; the history row written with them commits to those digests. ``insert_created`` is
a UOW's first write, ``record_breach`` the write that marks drift, in a transaction of
its own.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from chameleon_workflow.chain import KeyedRecord, attribute_diff, attributes_digest, value_digest
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import ChameleonError
from chameleon_workflow.hashing import GENESIS_HASH, format_timestamp
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.ledger.backend import Guard, uow_values, uuid_text
from chameleon_workflow.ledger.dialects import statements_for
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.states import HistoryEvent, UOWStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """One append: the new UOW column values and the history row that records them."""

    event: HistoryEvent
    status: str
    interaction_id: uuid.UUID | None
    state_hash: str
    holder: uuid.UUID | None
    retry_count: int
    heartbeat: datetime | None
    actor_id: uuid.UUID | None
    reasoning: str | None
    metadata: Any
    changes: Any
    #: The digest of the attribute rows written with this change (None: none are).
    attributes_digest: str | None = None


def write(
    conn: Connection,
    uow: UnitsOfWork,
    change: Change,
    now: datetime,
    *,
    moved: bool,
    keys: KeyProvider,
    guard: Guard | None = None,
    attribute_rows: list[dict[str, Any]] | None = None,
) -> bool:
    """Write ``change`` (with history if ``moved``) by compare-and-set; mirror it on ``uow``.

    With a ``guard`` the write also requires that stored content_hash and attribute
    fingerprint and returns False, having written nothing, when they or the version
    differ; without one a lost compare-and-set raises ConcurrencyError. Attribute rows
    are only written unguarded (their writer has just read and checked the attributes).
    """
    if guard is not None and attribute_rows:
        raise ValueError("attribute rows are written without a guard")
    sql = statements_for(conn)
    if not moved:
        values = touch_values(uow, change, now)
        cas = (uow.uow_id, uow.version, values)
        if guard is None:
            sql.touch(conn, cas)
        elif not sql.guarded_touch(conn, cas, guard):
            return False
    else:
        record, chain, values = planned_append(uow, change, now, keys)
        cas = (uow.uow_id, uow.version, values)
        if guard is None:
            sql.append(conn, cas, record, chain, attribute_rows or [])
        elif not sql.guarded_append(conn, cas, guard, record, chain):
            return False
    sync(uow, values)
    return True


def planned_append(
    uow: UnitsOfWork, change: Change, now: datetime, keys: KeyProvider
) -> tuple[KeyedRecord, str, dict[str, Any]]:
    """Return the history record of ``change``, its keyed link and the new UOW columns."""
    record = KeyedRecord(
        history_id=str(uuid.uuid4()),
        instance_id=str(uow.instance_id),
        uow_id=str(uow.uow_id),
        sequence=uow.history_sequence + 1,
        event_type=change.event.value,
        previous_status=str(uow.status),
        new_status=change.status,
        previous_state_hash=uow.content_hash,
        new_state_hash=change.state_hash,
        previous_interaction_id=uuid_text(uow.current_interaction_id),
        new_interaction_id=uuid_text(change.interaction_id),
        actor_id=uuid_text(change.actor_id),
        transition_timestamp=format_timestamp(now),
        reasoning=change.reasoning,
        transition_metadata=change.metadata,
        holder_id=uuid_text(change.holder),
        retry_count=change.retry_count,
        attributes_digest=change.attributes_digest,
        local_workflow_id=None,
        parent_id=None,
        key_id=keys.current_id,
        changes=change.changes,
    )
    chain = record.link(uow.chain_head, keys)
    values = {
        "status": UOWStatus(change.status),
        "current_interaction_id": change.interaction_id,
        "content_hash": change.state_hash,
        "last_heartbeat_at": change.heartbeat,
        "held_by_actor_id": change.holder,
        "retry_count": change.retry_count,
        "updated_at": now,
        "version": uow.version + 1,
        "history_sequence": record.sequence,
        "chain_head": chain,
    }
    return record, chain, values


def touch_values(uow: UnitsOfWork, change: Change, now: datetime) -> dict[str, Any]:
    """Return what a heartbeat stores: the holder and retry count only change with history."""
    return {
        "last_heartbeat_at": change.heartbeat,
        "updated_at": now,
        "version": uow.version + 1,
    }


def sync(uow: UnitsOfWork, values: Mapping[str, Any]) -> None:
    """Mirror written columns on the ORM object without marking it dirty."""
    # What set_committed_value does per attribute, done once for all of them: the
    # per-attribute route costs more than the rest of the save's Python work.
    state = sa_inspect(uow)
    state.dict.update(values)
    state._commit(state.dict, values.keys())


def attributes_change(
    uow: UnitsOfWork,
    state_hash: str,
    diff: dict[str, Any],
    rows: list[dict[str, Any]],
    note: tuple[uuid.UUID | None, str | None, Any],
) -> Change:
    """Return the ATTRIBUTES change that records ``diff`` (written as ``rows``).

    ``note`` is the actor, reasoning and metadata of the change; the rest of the row stays.
    """
    actor_id, reasoning, metadata = note
    return Change(
        event=HistoryEvent.ATTRIBUTES,
        status=str(uow.status),
        interaction_id=uow.current_interaction_id,
        state_hash=state_hash,
        holder=uow.held_by_actor_id,
        retry_count=uow.retry_count,
        heartbeat=uow.last_heartbeat_at,
        actor_id=actor_id,
        reasoning=reasoning,
        metadata=metadata,
        changes=diff,
        attributes_digest=rows_digest(rows),
    )


def attribute_versions(
    uow: UnitsOfWork,
    diff: dict[str, Any],
    key_versions: Mapping[str, int],
    actor_id: uuid.UUID | None,
    reasoning: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Return the rows that store ``diff``: the next version of every key it touches."""
    written = {**diff["added"], **{k: c["new"] for k, c in diff["changed"].items()}}
    at = uow.history_sequence + 1  # the history row that will commit to them
    rows = [
        attribute_row(uow, (k, key_versions.get(k, 0) + 1, at), v, actor_id, reasoning, now)
        for k, v in written.items()
    ]
    rows += [
        attribute_row(
            uow, (k, key_versions[k] + 1, at), None, actor_id, reasoning, now, deleted=True
        )
        for k in diff["removed"]
    ]
    return rows


def attribute_row(
    uow: UnitsOfWork,
    place: tuple[str, int, int],
    value: Any,
    actor_id: uuid.UUID | None,
    reasoning: str | None,
    now: datetime,
    *,
    deleted: bool = False,
) -> dict[str, Any]:
    """Return one uow_attributes row to insert, salted and digested.

    ``place`` is its key, its version and the sequence of the history row committing to it.
    """
    key, version, at = place
    salt = os.urandom(16).hex()
    return {
        "uow_id": uow.uow_id,
        "instance_id": uow.instance_id,
        "key": key,
        "version": version,
        "value": value,
        "is_deleted": deleted,
        "actor_id": actor_id,
        "reasoning": reasoning,
        "created_at": now,
        "salt": salt,
        "value_digest": value_digest(salt, value),
        "history_sequence": at,
    }


def rows_digest(rows: list[dict[str, Any]]) -> str | None:
    """Return the digest a history row commits to for the attribute rows written with it."""
    stamp = format_timestamp(rows[0]["created_at"]) if rows else ""
    return attributes_digest(
        [
            (
                r["key"],
                r["version"],
                r["value_digest"],
                r["is_deleted"],
                uuid_text(r["actor_id"]),
                r["reasoning"],
                stamp,
                str(r["instance_id"]),
            )
            for r in rows
        ]
    )


def insert_created(
    session: Session,
    uow: UnitsOfWork,
    attributes: dict[str, Any],
    note: tuple[uuid.UUID | None, str | None, Any],
    keys: KeyProvider,
) -> None:
    """Insert a new UOW with its first (CREATED) history row and first attribute versions.

    ``note`` is the actor, reasoning and metadata of the creation.
    """
    actor_id, reasoning, _ = note
    now = uow.created_at
    rows = [
        attribute_row(uow, (key, 1, 1), value, actor_id, reasoning, now)
        for key, value in attributes.items()
    ]
    record = creation_record(uow, note, attribute_diff({}, attributes), rows_digest(rows), keys)
    uow.chain_head = record.link(GENESIS_HASH, keys)
    conn = session.connection()
    sql = statements_for(conn)
    # The row goes in by one statement on the driver, then the object joins the Session
    # as the persistent, unmodified copy of it: an ORM flush of one new row costs more.
    sql.insert_uow(conn, uow_values(uow))
    make_transient_to_detached(uow)
    session.add(uow)
    sql.insert_history(conn, record, uow.chain_head, now)
    if rows:
        sql.insert_attributes(conn, rows)


def creation_record(
    uow: UnitsOfWork,
    note: tuple[uuid.UUID | None, str | None, Any],
    changes: Any,
    digest: str | None,
    keys: KeyProvider,
) -> KeyedRecord:
    """Return the first (CREATED) history record of a new UOW."""
    actor_id, reasoning, metadata = note
    return KeyedRecord(
        history_id=str(uuid.uuid4()),
        instance_id=str(uow.instance_id),
        uow_id=str(uow.uow_id),
        sequence=1,
        event_type=HistoryEvent.CREATED.value,
        previous_status=None,
        new_status=str(uow.status),
        previous_state_hash=None,
        new_state_hash=uow.content_hash,
        previous_interaction_id=None,
        new_interaction_id=uuid_text(uow.current_interaction_id),
        actor_id=uuid_text(actor_id),
        transition_timestamp=format_timestamp(uow.created_at),
        reasoning=reasoning,
        transition_metadata=metadata,
        holder_id=uuid_text(uow.held_by_actor_id),
        retry_count=uow.retry_count,
        attributes_digest=digest,
        local_workflow_id=str(uow.local_workflow_id),
        parent_id=uuid_text(uow.parent_id),
        key_id=keys.current_id,
        changes=changes,
    )


def record_breach(
    bind: Engine | Connection | Session,
    uow_id: uuid.UUID,
    observed_hash: str,
    clock: Callable[[], datetime],
    *,
    wait: bool,
    keys: KeyProvider,
) -> bool:
    """Mark a drifted UOW FAILED_SECURITY_BREACH in a transaction of its own.

    Returns False, having logged why, when the breach could not be written. Without
    ``wait`` it gives up at once on a lock the caller's own transaction may hold.
    """
    engine = _engine_of(bind)
    sql = statements_for(engine)
    try:
        # Opening the session and its BEGIN can fail too (SQLite: the write lock is
        # held, possibly by the caller): translate everything, from BEGIN to COMMIT.
        with translated_errors(), Session(sql.side_engine(engine, wait=wait)) as own, own.begin():
            conn = own.connection()
            if wait:
                sql.limit_lock_wait(conn)
            uow = own.get(
                UnitsOfWork,
                uow_id,
                populate_existing=True,
                with_for_update={"nowait": not wait},  # FOR UPDATE: PostgreSQL only
            )
            if uow is None:
                return False
            if uow.status != UOWStatus.FAILED_SECURITY_BREACH:
                change = breach_change(uow, observed_hash)
                write(conn, uow, change, clock(), moved=True, keys=keys)
    except ChameleonError:
        log.exception("could not record the security breach of UOW %s", uow_id)
        return False
    return True


def breach_change(uow: UnitsOfWork, observed_hash: str) -> Change:
    """Return the SECURITY_BREACH change of a drifted UOW; it keeps the stored hash."""
    return Change(
        event=HistoryEvent.SECURITY_BREACH,
        status=UOWStatus.FAILED_SECURITY_BREACH.value,
        interaction_id=uow.current_interaction_id,
        state_hash=uow.content_hash,
        holder=None,
        retry_count=uow.retry_count,
        heartbeat=uow.last_heartbeat_at,
        actor_id=None,
        reasoning="stored content_hash does not match the stored attributes",
        metadata={"stored_content_hash": uow.content_hash, "observed": observed_hash},
        changes=None,
    )


def _engine_of(bind: Engine | Connection | Session) -> Engine:
    if isinstance(bind, Session):
        bind = bind.get_bind()
    if isinstance(bind, Connection):
        return bind.engine
    return bind
