"""UOWPersistenceService, the only writer of UOW state, and the transition value object.

Every change is a compare-and-set on the UOW row's ``version`` plus one appended history
row linked by a MAC under the ledger key (``keys``), inside the caller's transaction; a
call that fails leaves nothing behind that could be committed. Each method reads top to
bottom: ``checks`` refuses bad input and drifted state (reading the ``snapshot``),
``writes`` plans the write and runs it through the back end's SQL (``sqlite`` or
``postgres``, picked once in ``dialects``). On PostgreSQL a UOW whose attributes already
passed the drift check saves without the read: the guarded write re-checks them in the
statement that writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from chameleon_workflow.audit.report import VerificationReport
from chameleon_workflow.audit.verify import verify
from chameleon_workflow.chain import attribute_diff, is_empty_diff
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import ConcurrencyError, InvalidValueError, NotFoundError
from chameleon_workflow.hashing import content_hash
from chameleon_workflow.keys import KeyProvider, find_keys
from chameleon_workflow.ledger.checks import (
    check_note,
    check_removals,
    checked_attributes,
    checked_read,
    checked_snapshot,
    is_legal,
    refuse_direct_edits,
    take_pass,
)
from chameleon_workflow.ledger.shared import SharedMethod
from chameleon_workflow.ledger.snapshot import read_snapshot, verified_guards
from chameleon_workflow.ledger.writes import (
    Change,
    attribute_versions,
    attributes_change,
    insert_created,
    record_breach,
    write,
)
from chameleon_workflow.models import UnitsOfWork, UnitsOfWorkHistory, as_uuid, utcnow
from chameleon_workflow.states import HistoryEvent, UOWStatus, check_transition

Clock = Callable[[], datetime]


class _Unset:
    """Marker for 'leave this column as it is'."""


UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class UOWStateTransition:
    """Describe one transition of a UOW (the seed's value object, stamped when made)."""

    uow_id: uuid.UUID
    instance_id: uuid.UUID
    previous_status: str | None
    new_status: str
    previous_state_hash: str | None
    new_state_hash: str
    previous_interaction_id: uuid.UUID | None
    new_interaction_id: uuid.UUID | None
    actor_id: uuid.UUID | None = None
    reasoning: str | None = None
    metadata: Any = None
    timestamp: datetime = field(default_factory=utcnow)

    @property
    def transition_metadata(self) -> Any:
        """Return ``metadata`` under the history column's name."""
        return self.metadata

    @classmethod
    def from_history(cls, row: UnitsOfWorkHistory) -> UOWStateTransition:
        """Build the value object from a stored history row."""
        return cls(
            uow_id=row.uow_id,
            instance_id=row.instance_id,
            previous_status=row.previous_status,
            new_status=row.new_status,
            previous_state_hash=row.previous_state_hash,
            new_state_hash=row.new_state_hash,
            previous_interaction_id=row.previous_interaction_id,
            new_interaction_id=row.new_interaction_id,
            actor_id=row.actor_id,
            reasoning=row.reasoning,
            metadata=row.transition_metadata,
            timestamp=row.transition_timestamp,
        )


class UOWPersistenceService:
    """Write UOW state atomically with its keyed, chained history; read and check it back."""

    def __init__(self, clock: Clock = utcnow, keys: KeyProvider | None = None) -> None:
        """Use ``clock`` for every timestamp this service writes.

        Links are made and checked under ``keys``; without them, under the keys each
        database's settings name (``keys.find_keys``), found once per engine.
        """
        self.clock = clock
        self._keys = keys
        self._found: dict[int, tuple[Engine, KeyProvider]] = {}

    def ledger_keys(self, engine: Engine) -> KeyProvider:
        """Return the keys this service links under on ``engine``'s database."""
        if self._keys is not None:
            return self._keys
        found = self._found.get(id(engine))
        if found is None or found[0] is not engine:
            url = engine.url.render_as_string(hide_password=False)
            found = (engine, find_keys(url))
            self._found[id(engine)] = found
        return found[1]

    # ------------------------------------------------------------------ reads

    def get_uow(self, session: Session, uow_id: uuid.UUID | str) -> UnitsOfWork:
        """Return the UOW with this id or raise NotFoundError."""
        with translated_errors():
            uow = session.get(UnitsOfWork, as_uuid(uow_id, "UOW id"))
        if uow is None:
            raise NotFoundError(f"no unit of work with id {uow_id}")
        return uow

    def get_attributes(self, session: Session, uow_id: uuid.UUID | str) -> dict[str, Any]:
        """Return the current attributes (latest non-deleted version of each key)."""
        return read_snapshot(session, as_uuid(uow_id, "UOW id")).attributes

    def attributes_for_save(self, session: Session, uow: UnitsOfWork) -> dict[str, Any]:
        """Return the attributes, drift-checked, readying a save of ``uow`` in this txn."""
        with translated_errors():
            return checked_read(session, uow, self.clock, self._keys_of(session)).attributes

    @SharedMethod
    def verify_state_hash(self, session: Session, uow: UnitsOfWork) -> bool:
        """Tell whether the stored content_hash still matches the stored attributes."""
        snap = read_snapshot(session, uow.uow_id)
        return snap.attributes_hash() == snap.content_hash

    def verify_uow(self, session: Session, uow_id: uuid.UUID | str) -> VerificationReport:
        """Verify one UOW: attributes vs hash, its chain, sequences and head row."""
        target = as_uuid(uow_id, "UOW id")
        report = verify(session, keys=self._keys_of(session), uow_id=target)
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
        keys = self._keys_of(session)
        return verify(session, keys=keys, instance_id=instance_id, progress=progress)

    def _keys_of(self, session: Session) -> KeyProvider:
        with translated_errors():
            return self.ledger_keys(session.connection().engine)

    @SharedMethod
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
            table.uow_id == as_uuid(uow_id, "UOW id"), table.sequence > after_sequence
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
        attrs = checked_attributes(attributes or {})
        check_note(reasoning, metadata)
        now = self.clock()
        uow = UnitsOfWork(
            uow_id=uuid.uuid4(),
            instance_id=instance_id,
            local_workflow_id=local_workflow_id,
            parent_id=parent_id,
            current_interaction_id=interaction_id,
            status=UOWStatus(status),
            content_hash=content_hash(attrs),
            last_heartbeat_at=None,
            held_by_actor_id=None,
            version=1,
            history_sequence=1,
            retry_count=0,
            created_at=now,
            updated_at=now,
        )
        with translated_errors(), session.begin_nested(), session.no_autoflush:
            keys = self.ledger_keys(session.connection().engine)
            insert_created(session, uow, attrs, (actor_id, reasoning, metadata), keys)
        return uow

    @SharedMethod
    def save_uow(
        self,
        session: Session | Connection,
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
        event: HistoryEvent = HistoryEvent.TRANSITION,
    ) -> UnitsOfWork:
        """Save a status and/or interaction change with its history row, all or nothing.

        The stored content_hash is checked against the stored attributes first; a
        mismatch raises StateDriftError and marks the UOW FAILED_SECURITY_BREACH in a
        transaction of its own. ``holder`` sets (or with None clears) the actor holding
        the UOW; ``retry_count`` replaces the retry counter. A change of status,
        interaction, holder or retry count is recorded with a history row (of type
        ``event``: a TRANSITION unless the engine names a decomposition, join or pilot
        action); a save that changes none of them (a heartbeat) only moves
        ``last_heartbeat_at``.

        ``session`` may also be a Core ``Connection`` inside a transaction the caller
        began: the same writes, without the Session's bookkeeping around them (``uow``
        is then a detached object the caller keeps).
        """
        refuse_direct_edits(uow)
        check_note(reasoning, metadata)
        status = str(new_status) if new_status is not None else str(uow.status)
        interaction = (
            new_interaction_id if new_interaction_id is not None else (uow.current_interaction_id)
        )
        new_holder = uow.held_by_actor_id if holder is UNSET else holder
        retries = uow.retry_count if retry_count is None else retry_count
        moved = (
            status != uow.status
            or interaction != uow.current_interaction_id
            or new_holder != uow.held_by_actor_id
            or retries != uow.retry_count
        )

        def change(now: datetime, state_hash: str) -> Change:
            return Change(
                event=event,
                status=status,
                interaction_id=interaction,
                state_hash=state_hash,
                holder=new_holder,
                retry_count=retries,
                heartbeat=now if touch_heartbeat else uow.last_heartbeat_at,
                actor_id=actor_id,
                reasoning=reasoning,
                metadata=metadata,
                changes=None,
            )

        with translated_errors(), _no_autoflush(session):
            conn = session.connection() if isinstance(session, Session) else session
            keys = self.ledger_keys(conn.engine)
            if take_pass(session, uow) and is_legal(str(uow.status), status):
                # Read and checked in this very transaction (SQLite: no other writer since).
                now = self.clock()
                write(conn, uow, change(now, uow.content_hash), now, moved=moved, keys=keys)
                return uow
            guard = verified_guards.get(uow)
            if guard is not None and is_legal(str(uow.status), status):
                # The attributes were checked before and the write re-checks, in the same
                # statement, that neither they nor the stored hash changed since: no read.
                now = self.clock()
                state = change(now, uow.content_hash)
                if write(conn, uow, state, now, moved=moved, keys=keys, guard=guard):
                    return uow
            snap = checked_snapshot(conn, uow, self.clock, keys)
            check_transition(str(uow.status), status)
            now = self.clock()
            state = change(now, snap.content_hash)
            if not write(conn, uow, state, now, moved=moved, keys=keys, guard=snap.guard):
                raise ConcurrencyError(
                    f"UOW {uow.uow_id} was changed by another writer; reload it and retry"
                )
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
        refuse_direct_edits(uow)
        updates = checked_attributes(changes)
        check_note(reasoning, metadata)
        removals = list(remove)
        with translated_errors(), session.no_autoflush:
            conn = session.connection()
            keys = self.ledger_keys(conn.engine)
            snap = checked_snapshot(session, uow, self.clock, keys)
            check_transition(str(uow.status), str(uow.status))
            before = snap.attributes
            check_removals(removals, before)
            after = {k: v for k, v in before.items() if k not in removals}
            after.update(updates)
            diff = attribute_diff(before, after)
            if is_empty_diff(diff):
                return uow
            now = self.clock()
            rows = attribute_versions(uow, diff, snap.key_versions, actor_id, reasoning, now)
            note = (actor_id, reasoning, metadata)
            change = attributes_change(uow, content_hash(after), diff, rows, note)
            verified_guards.forget(uow.uow_id)
            write(conn, uow, change, now, moved=True, keys=keys, attribute_rows=rows)
        return uow

    def record_breach(
        self,
        bind: Engine | Connection | Session,
        uow_id: uuid.UUID,
        observed_hash: str,
        *,
        wait: bool = True,
    ) -> bool:
        """Mark a drifted UOW FAILED_SECURITY_BREACH in a transaction of its own.

        The stored content_hash is kept (the drift is recorded, never laundered); the
        observed hash goes into the history row's metadata. Returns False when the
        breach could not be written (the caller may retry after ending its transaction).
        With ``wait=False`` it gives up at once when the UOW row (PostgreSQL) or the
        write lock (SQLite) is taken, as it is when the caller's own open transaction
        holds it; otherwise it waits up to the lock timeout.
        """
        engine = bind.get_bind() if isinstance(bind, Session) else bind
        keys = self.ledger_keys(engine.engine if isinstance(engine, Connection) else engine)
        return record_breach(bind, uow_id, observed_hash, self.clock, wait=wait, keys=keys)


def _no_autoflush(bind: Session | Connection) -> AbstractContextManager[Any]:
    """Return the Session's no-autoflush block; a Core connection has nothing to flush."""
    return bind.no_autoflush if isinstance(bind, Session) else nullcontext()
