"""What the persistence service reads before a write, and what one write carries.

A ``Snapshot`` is the UOW's stored version and content_hash with its latest attribute
rows, undecoded; its drift hash is memoized over those raw rows. A ``Change`` is the
new column values of one write; ``planned_append`` turns it into the history record,
its chain link and the UOW columns to store. The rest are the checks every write
makes on its input.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from chameleon_workflow.chain import LedgerRecord
from chameleon_workflow.errors import InvalidValueError, NotFoundError
from chameleon_workflow.hashing import content_hash, format_timestamp, validate_json, validate_text
from chameleon_workflow.ledger import statements as stmts
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.states import HistoryEvent, UOWStatus

MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the database holds for a UOW right now (attribute values still undecoded)."""

    version: int
    content_hash: str
    rows: tuple[stmts.AttributeRow, ...]
    sql: stmts.LedgerSQL
    #: What the database computes over these rows (PostgreSQL), for guarded writes.
    fingerprint: bytes | None = None

    @property
    def guard(self) -> stmts.Guard | None:
        """Return what a guarded write must find stored, if the back end guards writes."""
        return None if self.fingerprint is None else (self.content_hash, self.fingerprint)

    @property
    def attributes(self) -> dict[str, Any]:
        """Return the current attributes, decoded."""
        decode = self.sql.decode
        return {key: decode(value) for key, _v, value, deleted in self.rows if not deleted}

    @property
    def key_versions(self) -> dict[str, int]:
        """Return the latest version of every key, deleted ones included."""
        return {key: version for key, version, _value, _deleted in self.rows}

    def attributes_hash(self) -> str:
        """Return the content hash of the stored attributes (memoized on their raw form)."""
        return _hash_memo.get(self)


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


class _HashMemo:
    """Memo of content_hash over raw attribute rows, keyed by a digest of those rows.

    content_hash is a pure function of the rows as read, so a hit is exactly what a fresh
    computation would return; the rows are still read from the database on every check,
    so drift is still seen. Keying on a digest keeps memory flat whatever the payloads.
    """

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._known: dict[bytes, str] = {}

    def get(self, snap: Snapshot) -> str:
        """Return content_hash of the snapshot's attributes."""
        # repr tells 1 from 1.0, "1" from 1 and inf from None: equal digests, equal rows.
        key = hashlib.sha256(repr(snap.rows).encode()).digest()
        known = self._known.get(key)
        if known is None:
            known = content_hash(snap.attributes)
            if len(self._known) >= self.MAX_ENTRIES:
                self._known.clear()  # rare; a wholesale reset beats LRU bookkeeping per hit
            self._known[key] = known
        return known


_hash_memo = _HashMemo()


def snapshot_from(rows: list[tuple[Any, ...]], uow_id: uuid.UUID, sql: stmts.LedgerSQL) -> Snapshot:
    """Build a snapshot from the rows of ``LedgerSQL.snapshot``."""
    if not rows:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    first = rows[0]
    fingerprint = first[6] if len(first) > 6 else None
    if first[2] is None:  # the LEFT JOIN found no attribute
        return Snapshot(first[0], first[1], (), sql, fingerprint)
    # Sorted by key so that the memo digest does not depend on the database's row order.
    attributes = sorted((r[2], r[3], r[4], bool(r[5])) for r in rows)
    return Snapshot(first[0], first[1], tuple(attributes), sql, fingerprint)


class VerifiedGuards:
    """The guard of each UOW whose attributes this process last found matching its hash.

    A hint, never a proof: a guarded write re-checks content_hash and fingerprint in the
    database in the statement that writes, so a stale entry costs only the slower path
    (read, check in Python, then write). Bounded like the hash memo.
    """

    MAX_ENTRIES = 8192  # about 400 bytes each

    def __init__(self) -> None:
        self._known: dict[uuid.UUID, stmts.Guard] = {}

    def remember(self, uow_id: uuid.UUID, guard: stmts.Guard | None) -> None:
        """Keep the guard a drift check just accepted."""
        if guard is None:
            return
        if len(self._known) >= self.MAX_ENTRIES:
            self._known.clear()
        self._known[uow_id] = guard

    def get(self, uow: UnitsOfWork) -> stmts.Guard | None:
        """Return the remembered guard if it is for the content_hash this copy holds."""
        guard = self._known.get(uow.uow_id)
        return guard if guard is not None and guard[0] == uow.content_hash else None

    def forget(self, uow_id: uuid.UUID) -> None:
        """Drop a UOW's guard (its attributes are about to change)."""
        self._known.pop(uow_id, None)


verified_guards = VerifiedGuards()


def planned_append(
    uow: UnitsOfWork, change: Change, now: datetime
) -> tuple[LedgerRecord, str, dict[str, Any]]:
    """Return the history record of ``change``, its chain link and the new UOW columns."""
    record = LedgerRecord(
        history_id=str(uuid.uuid4()),
        instance_id=str(uow.instance_id),
        uow_id=str(uow.uow_id),
        sequence=uow.history_sequence + 1,
        event_type=change.event.value,
        previous_status=str(uow.status),
        new_status=change.status,
        previous_state_hash=uow.content_hash,
        new_state_hash=change.state_hash,
        previous_interaction_id=text(uow.current_interaction_id),
        new_interaction_id=text(change.interaction_id),
        actor_id=text(change.actor_id),
        transition_timestamp=format_timestamp(now),
        reasoning=change.reasoning,
        transition_metadata=change.metadata,
        changes=change.changes,
    )
    chain = record.link(uow.chain_head)
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


def creation_record(
    uow: UnitsOfWork, actor_id: uuid.UUID | None, reasoning: str | None, metadata: Any, changes: Any
) -> LedgerRecord:
    """Return the first (CREATED) history record of a new UOW."""
    return LedgerRecord(
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
        new_interaction_id=text(uow.current_interaction_id),
        actor_id=text(actor_id),
        transition_timestamp=format_timestamp(uow.created_at),
        reasoning=reasoning,
        transition_metadata=metadata,
        changes=changes,
    )


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


def write(
    conn: Connection,
    uow: UnitsOfWork,
    change: Change,
    now: datetime,
    *,
    moved: bool,
    guard: stmts.Guard | None = None,
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
    sql = stmts.for_connection(conn)
    if not moved:
        values = touch_values(uow, change, now)
        cas = (uow.uow_id, uow.version, values)
        if guard is None:
            sql.touch(conn, cas)
        elif not sql.guarded_touch(conn, cas, guard):
            return False
    else:
        record, chain, values = planned_append(uow, change, now)
        cas = (uow.uow_id, uow.version, values)
        if guard is None:
            sql.append(conn, cas, record, chain, attribute_rows or [])
        elif not sql.guarded_append(conn, cas, guard, record, chain):
            return False
    sync(uow, values)
    return True


def touch_values(uow: UnitsOfWork, change: Change, now: datetime) -> dict[str, Any]:
    """Return the liveness columns a save without a recorded change stores."""
    return {
        "held_by_actor_id": change.holder,
        "retry_count": change.retry_count,
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


def refuse_direct_edits(uow: UnitsOfWork) -> None:
    """Raise if the ORM object carries edits made around the service."""
    state = sa_inspect(uow)
    if state.modified:
        dirty = sorted(a.key for a in state.attrs if a.history.has_changes())
        if dirty:
            raise InvalidValueError(
                f"UOW {uow.uow_id} has unsaved direct edits to {dirty}; change UOW state "
                "only through UOWPersistenceService"
            )


def attribute_row(
    uow: UnitsOfWork,
    key: str,
    version: int,
    value: Any,
    actor_id: uuid.UUID | None,
    reasoning: str | None,
    now: datetime,
    *,
    deleted: bool = False,
) -> dict[str, Any]:
    """Return one uow_attributes row to insert."""
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
    }


def checked_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the attributes as a dict, refusing keys and values that cannot be stored."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidValueError(
                f"attribute key {key!r} must be a non-empty string of at most "
                f"{MAX_KEY_LENGTH} characters"
            )
        validate_text(key, f"attribute key {key!r}")
        validate_json(value, f"attributes.{key}")
        out[key] = value
    return out


def check_note(reasoning: str | None, metadata: Any) -> None:
    """Refuse what the history row could not store the same way on every back end."""
    validate_text(reasoning, "reasoning")
    if metadata is not None:
        validate_json(metadata, "transition_metadata")


def engine_of(bind: Engine | Connection | Session) -> Engine:
    """Return the engine behind a session, connection or engine."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    if isinstance(bind, Connection):
        return bind.engine
    return bind


def text(value: uuid.UUID | None) -> str | None:
    """Return a UUID as canonical text (None stays None)."""
    return None if value is None else str(value)
