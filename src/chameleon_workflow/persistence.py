"""UOWPersistenceService: the only writer of UOW state.

Every change is a compare-and-set on the UOW row's ``version`` plus one appended,
hash-chained history row, inside the caller's transaction. A call that fails leaves
nothing behind that could be committed: checks run before any write; on PostgreSQL the
UPDATE and the history INSERT are one statement (and any failed statement aborts the
transaction); on SQLite the writes of one call run inside a SAVEPOINT.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from . import _statements as stmts
from . import audit
from .audit import VerificationReport
from .db import translated_errors
from .errors import (
    ChameleonError,
    ConcurrencyError,
    InvalidValueError,
    NotFoundError,
    StateDriftError,
)
from .hashing import GENESIS_HASH, content_hash, format_timestamp, validate_json, validate_text
from .ledger import LedgerRecord, attribute_diff, is_empty_diff
from .models import HistoryEvent, UnitsOfWork, UnitsOfWorkHistory, utcnow
from .states import UOWStatus, check_transition

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_KEY_LENGTH = 200


class _Unset:
    """Marker for 'leave this column as it is'."""


UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class UOWStateTransition:
    """Describe one transition of a UOW (the seed's value object)."""

    uow_id: uuid.UUID
    previous_status: str | None
    new_status: str
    previous_state_hash: str | None
    new_state_hash: str
    previous_interaction_id: uuid.UUID | None
    new_interaction_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    reasoning: str | None = None
    transition_metadata: Any = None
    timestamp: datetime = field(default_factory=utcnow)

    @classmethod
    def from_history(cls, row: UnitsOfWorkHistory) -> UOWStateTransition:
        """Build the value object from a stored history row."""
        return cls(
            uow_id=row.uow_id,
            previous_status=row.previous_status,
            new_status=row.new_status,
            previous_state_hash=row.previous_state_hash,
            new_state_hash=row.new_state_hash,
            previous_interaction_id=row.previous_interaction_id,
            new_interaction_id=row.new_interaction_id,
            actor_id=row.actor_id,
            reasoning=row.reasoning,
            transition_metadata=row.transition_metadata,
            timestamp=row.transition_timestamp,
        )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What the database holds for a UOW right now (attribute values still undecoded)."""

    version: int
    content_hash: str
    rows: tuple[stmts.AttributeRow, ...]
    sql: stmts.LedgerSQL

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
class _Change:
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


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


class _HashMemo:
    """Memo of content_hash over raw attribute rows, keyed by a digest of those rows.

    content_hash is a pure function of the rows as read, so a hit is exactly what a fresh
    computation would return; the rows are still read from the database on every check,
    so drift is still seen. Keying on a digest keeps memory flat whatever the payloads.
    """

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._known: dict[bytes, str] = {}

    def get(self, snap: _Snapshot) -> str:
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


class UOWPersistenceService:
    """Write UOW state atomically with its hash-chained history; read and check it back."""

    def __init__(self, clock: Clock = utcnow) -> None:
        """Use ``clock`` for every timestamp this service writes."""
        self.clock = clock

    # ------------------------------------------------------------------ reads

    def get_uow(self, session: Session, uow_id: uuid.UUID | str) -> UnitsOfWork:
        """Return the UOW with this id or raise NotFoundError."""
        with translated_errors():
            uow = session.get(UnitsOfWork, _as_uuid(uow_id))
        if uow is None:
            raise NotFoundError(f"no unit of work with id {uow_id}")
        return uow

    def get_attributes(self, session: Session, uow_id: uuid.UUID | str) -> dict[str, Any]:
        """Return the current attributes (latest non-deleted version of each key)."""
        return self._snapshot(session, _as_uuid(uow_id)).attributes

    def verify_state_hash(self, session: Session, uow: UnitsOfWork) -> bool:
        """Tell whether the stored content_hash still matches the stored attributes."""
        snap = self._snapshot(session, uow.uow_id)
        return snap.attributes_hash() == snap.content_hash

    def verify_uow(self, session: Session, uow_id: uuid.UUID | str) -> VerificationReport:
        """Verify one UOW: attributes vs hash, its chain, sequences and head row."""
        target = _as_uuid(uow_id)
        report = audit.verify(session, uow_id=target)
        if report.uows_checked == 0:
            raise NotFoundError(f"no unit of work with id {uow_id}")
        return report

    def verify_database(
        self,
        session: Session,
        instance_id: uuid.UUID | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> VerificationReport:
        """Verify every UOW (of one instance if given) and report every finding."""
        return audit.verify(session, instance_id=instance_id, progress=progress)

    def get_uow_history(
        self,
        session: Session,
        uow_id: uuid.UUID | str,
        limit: int | None = None,
        *,
        after_sequence: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UnitsOfWorkHistory]:
        """Return history rows in the order of record (``sequence``), optionally paged.

        ``after_sequence`` pages by keyset (pass the last sequence you saw); ``since`` and
        ``until`` bound ``transition_timestamp`` (inclusive, exclusive).
        """
        if limit is not None and limit < 0:
            raise InvalidValueError(f"limit must be >= 0, got {limit}")
        table = UnitsOfWorkHistory
        query = select(table).where(
            table.uow_id == _as_uuid(uow_id), table.sequence > after_sequence
        )
        if since is not None:
            query = query.where(table.transition_timestamp >= since)
        if until is not None:
            query = query.where(table.transition_timestamp < until)
        query = query.order_by(table.sequence).limit(limit)
        with translated_errors():
            return list(session.scalars(query))

    # ----------------------------------------------------------------- writes

    def create_uow(
        self,
        session: Session,
        *,
        instance_id: uuid.UUID,
        local_workflow_id: uuid.UUID,
        attributes: Mapping[str, Any] | None = None,
        interaction_id: uuid.UUID | None = None,
        status: str = UOWStatus.PENDING,
        parent_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        reasoning: str | None = None,
        metadata: Any = None,
    ) -> UnitsOfWork:
        """Create a UOW with its initial attributes and its first (CREATED) history row."""
        attrs = _checked_attributes(attributes or {})
        _check_note(reasoning, metadata)
        new_status = UOWStatus(status)
        state_hash = content_hash(attrs)
        now = self.clock()
        uow = UnitsOfWork(
            uow_id=uuid.uuid4(),
            instance_id=instance_id,
            local_workflow_id=local_workflow_id,
            parent_id=parent_id,
            current_interaction_id=interaction_id,
            status=new_status,
            content_hash=state_hash,
            last_heartbeat_at=None,
            version=1,
            history_sequence=1,
            retry_count=0,
            created_at=now,
            updated_at=now,
        )
        record = LedgerRecord(
            history_id=str(uuid.uuid4()),
            instance_id=str(instance_id),
            uow_id=str(uow.uow_id),
            sequence=1,
            event_type=HistoryEvent.CREATED.value,
            previous_status=None,
            new_status=new_status.value,
            previous_state_hash=None,
            new_state_hash=state_hash,
            previous_interaction_id=None,
            new_interaction_id=_text(interaction_id),
            actor_id=_text(actor_id),
            transition_timestamp=format_timestamp(now),
            reasoning=reasoning,
            transition_metadata=metadata,
            changes=attribute_diff({}, attrs),
        )
        uow.chain_head = record.link(GENESIS_HASH)
        with translated_errors(), session.begin_nested(), session.no_autoflush:
            session.add(uow)
            session.flush()
            conn = session.connection()
            sql = stmts.for_connection(conn)
            sql.insert_history(conn, record, uow.chain_head, now)
            rows = [
                _attribute_row(uow, key, 1, value, actor_id, reasoning, now)
                for key, value in attrs.items()
            ]
            if rows:
                sql.insert_attributes(conn, rows)
        return uow

    def save_uow(
        self,
        session: Session,
        uow: UnitsOfWork,
        new_status: str | None = None,
        new_interaction_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        reasoning: str | None = None,
        metadata: Any = None,
        *,
        holder: Any = UNSET,
        retry_count: int | None = None,
        touch_heartbeat: bool = True,
    ) -> UnitsOfWork:
        """Save a status and/or interaction change with its history row, all or nothing.

        The stored content_hash is checked against the stored attributes first; a
        mismatch raises StateDriftError and marks the UOW FAILED_SECURITY_BREACH in a
        transaction of its own. ``holder`` sets (or with None clears) the actor holding
        the UOW; ``retry_count`` replaces the retry counter.
        """
        self._refuse_direct_edits(uow)
        _check_note(reasoning, metadata)
        status = str(new_status) if new_status is not None else str(uow.status)
        interaction = (
            new_interaction_id if new_interaction_id is not None else (uow.current_interaction_id)
        )
        with translated_errors(), session.no_autoflush:
            snap = self._checked_snapshot(session, uow)
            check_transition(str(uow.status), status)
            now = self.clock()
            moved = status != uow.status or interaction != uow.current_interaction_id
            change = _Change(
                event=HistoryEvent.TRANSITION,
                status=status,
                interaction_id=interaction,
                state_hash=snap.content_hash,
                holder=uow.held_by_actor_id if holder is UNSET else holder,
                retry_count=uow.retry_count if retry_count is None else retry_count,
                heartbeat=now if touch_heartbeat else uow.last_heartbeat_at,
                actor_id=actor_id,
                reasoning=reasoning,
                metadata=metadata,
                changes=None,
            )
            if not moved:
                self._touch(session, uow, change, now)
                return uow
            self._append(session, uow, change, now)
        return uow

    def set_attributes(
        self,
        session: Session,
        uow: UnitsOfWork,
        changes: Mapping[str, Any],
        actor_id: uuid.UUID | None,
        reasoning: str | None = None,
        *,
        remove: Iterable[str] = (),
        metadata: Any = None,
    ) -> UnitsOfWork:
        """Write new attribute versions and a history row carrying the attribute-level diff.

        Values equal (as JSON) to the current ones are not rewritten; a call that changes
        nothing writes nothing.
        """
        self._refuse_direct_edits(uow)
        updates = _checked_attributes(changes)
        _check_note(reasoning, metadata)
        removals = list(remove)
        with translated_errors(), session.no_autoflush:
            snap = self._checked_snapshot(session, uow)
            check_transition(str(uow.status), str(uow.status))
            unknown = [k for k in removals if k not in snap.attributes]
            if unknown:
                raise InvalidValueError(f"cannot remove attributes that do not exist: {unknown}")
            after = {k: v for k, v in snap.attributes.items() if k not in removals}
            after.update(updates)
            diff = attribute_diff(snap.attributes, after)
            if is_empty_diff(diff):
                return uow
            now = self.clock()
            change = _Change(
                event=HistoryEvent.ATTRIBUTES,
                status=str(uow.status),
                interaction_id=uow.current_interaction_id,
                state_hash=content_hash(after),
                holder=uow.held_by_actor_id,
                retry_count=uow.retry_count,
                heartbeat=uow.last_heartbeat_at,
                actor_id=actor_id,
                reasoning=reasoning,
                metadata=metadata,
                changes=diff,
            )
            written = {**diff["added"], **{k: c["new"] for k, c in diff["changed"].items()}}
            rows = [
                _attribute_row(uow, k, snap.key_versions.get(k, 0) + 1, v, actor_id, reasoning, now)
                for k, v in written.items()
            ] + [
                _attribute_row(
                    uow, k, snap.key_versions[k] + 1, None, actor_id, reasoning, now, deleted=True
                )
                for k in diff["removed"]
            ]
            self._append(session, uow, change, now, rows)
        return uow

    def record_breach(
        self, bind: Engine | Connection | Session, uow_id: uuid.UUID, observed_hash: str
    ) -> bool:
        """Mark a drifted UOW FAILED_SECURITY_BREACH in a transaction of its own.

        The stored content_hash is kept (the drift is recorded, never laundered); the
        observed hash goes into the history row's metadata. Returns False when the
        breach could not be written (the caller may retry after ending its transaction).
        """
        engine = _engine_of(bind)
        try:
            # Opening the session and its BEGIN can fail too (SQLite: the write lock is
            # held, possibly by the caller): translate everything, from BEGIN to COMMIT.
            with translated_errors(), Session(engine) as own, own.begin():
                stmts.short_lock_wait(own.connection())
                uow = own.get(UnitsOfWork, uow_id, populate_existing=True)
                if uow is None:
                    return False
                if uow.status == UOWStatus.FAILED_SECURITY_BREACH:
                    return True
                change = _Change(
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
                self._append(own, uow, change, self.clock())
        except ChameleonError:
            log.exception("could not record the security breach of UOW %s", uow_id)
            return False
        return True

    # -------------------------------------------------------------- internals

    @staticmethod
    def _refuse_direct_edits(uow: UnitsOfWork) -> None:
        state = sa_inspect(uow)
        if state.modified:
            dirty = sorted(a.key for a in state.attrs if a.history.has_changes())
            if dirty:
                raise InvalidValueError(
                    f"UOW {uow.uow_id} has unsaved direct edits to {dirty}; change UOW state "
                    "only through UOWPersistenceService"
                )

    def _snapshot(self, session: Session, uow_id: uuid.UUID) -> _Snapshot:
        with translated_errors():
            conn = session.connection()
            sql = stmts.for_connection(conn)
            rows = sql.snapshot(conn, uow_id)
        return _snapshot_from(rows, uow_id, sql)

    def _checked_snapshot(self, session: Session, uow: UnitsOfWork) -> _Snapshot:
        snap = self._snapshot(session, uow.uow_id)
        if snap.version != uow.version:
            raise ConcurrencyError(
                f"UOW {uow.uow_id} was changed by another writer (stored version "
                f"{snap.version}, this copy has {uow.version}); reload it and retry"
            )
        actual = snap.attributes_hash()
        if actual != snap.content_hash:
            recorded = self.record_breach(session, uow.uow_id, actual)
            raise StateDriftError(uow.uow_id, snap.content_hash, actual, recorded=recorded)
        return snap

    def _touch(self, session: Session, uow: UnitsOfWork, change: _Change, now: datetime) -> None:
        """Refresh heartbeat/holder without a history row (nothing recorded changed)."""
        values = {
            "held_by_actor_id": change.holder,
            "retry_count": change.retry_count,
            "last_heartbeat_at": change.heartbeat,
            "updated_at": now,
            "version": uow.version + 1,
        }
        conn = session.connection()
        stmts.for_connection(conn).touch(conn, (uow.uow_id, uow.version, values))
        _sync(uow, values)

    def _append(
        self,
        session: Session,
        uow: UnitsOfWork,
        change: _Change,
        now: datetime,
        attribute_rows: list[dict[str, Any]] | None = None,
    ) -> None:
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
            previous_interaction_id=_text(uow.current_interaction_id),
            new_interaction_id=_text(change.interaction_id),
            actor_id=_text(change.actor_id),
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
        conn = session.connection()
        stmts.for_connection(conn).append(
            conn, (uow.uow_id, uow.version, values), record, chain, attribute_rows or []
        )
        _sync(uow, values)


def _snapshot_from(
    rows: list[tuple[Any, ...]], uow_id: uuid.UUID, sql: stmts.LedgerSQL
) -> _Snapshot:
    if not rows:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    first = rows[0]
    if first[2] is None:  # the LEFT JOIN found no attribute
        return _Snapshot(first[0], first[1], (), sql)
    # Sorted by key so that the memo digest does not depend on the database's row order.
    attributes = sorted((key, kv, value, bool(d)) for _v, _h, key, kv, value, d in rows)
    return _Snapshot(first[0], first[1], tuple(attributes), sql)


def _sync(uow: UnitsOfWork, values: Mapping[str, Any]) -> None:
    """Mirror written columns on the ORM object without marking it dirty."""
    # What set_committed_value does per attribute, done once for all of them: the
    # per-attribute route costs more than the rest of the save's Python work.
    state = sa_inspect(uow)
    state.dict.update(values)
    state._commit(state.dict, values.keys())


def _attribute_row(
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


def _checked_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
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


def _check_note(reasoning: str | None, metadata: Any) -> None:
    """Refuse what the history row could not store the same way on every back end."""
    validate_text(reasoning, "reasoning")
    if metadata is not None:
        validate_json(metadata, "transition_metadata")


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError(f"{value!r} is not a valid id") from None


def _engine_of(bind: Engine | Connection | Session) -> Engine:
    if isinstance(bind, Session):
        bind = bind.get_bind()
    if isinstance(bind, Connection):
        return bind.engine
    return bind
