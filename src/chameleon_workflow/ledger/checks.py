"""What the ledger checks before it writes: the caller's input, and the stored state's drift.

Input checks refuse what could not be stored, or not stored the same way on every back
end (keys, JSON values, NUL characters), and edits made to the ORM object around the
service. The drift check reads the UOW's snapshot and compares its attributes with the
stored content_hash; a mismatch is recorded as a breach and raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from chameleon_workflow.errors import (
    ConcurrencyError,
    InvalidTransitionError,
    InvalidValueError,
    StateDriftError,
)
from chameleon_workflow.hashing import validate_json, validate_text
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.ledger.snapshot import Snapshot, read_snapshot, verified_guards
from chameleon_workflow.ledger.writes import record_breach
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.states import check_transition

MAX_KEY_LENGTH = 200


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


def check_removals(removals: list[str], current: Mapping[str, Any]) -> None:
    """Refuse to remove attributes the UOW does not have."""
    unknown = [k for k in removals if k not in current]
    if unknown:
        raise InvalidValueError(f"cannot remove attributes that do not exist: {unknown}")


def check_note(reasoning: str | None, metadata: Any) -> None:
    """Refuse what the history row could not store the same way on every back end."""
    validate_text(reasoning, "reasoning")
    if metadata is not None:
        validate_json(metadata, "transition_metadata")


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


def is_legal(previous: str, new: str) -> bool:
    """Tell whether the state machine allows moving from ``previous`` to ``new``."""
    try:
        check_transition(previous, new)
    except InvalidTransitionError:
        return False
    return True


def checked_snapshot(
    session: Session | Connection,
    uow: UnitsOfWork,
    clock: Callable[[], datetime],
    keys: KeyProvider,
) -> Snapshot:
    """Read the UOW's snapshot and refuse a stale copy or drifted attributes.

    Drift (stored attributes that do not hash to the stored content_hash) is recorded
    as FAILED_SECURITY_BREACH, then raised as StateDriftError. A snapshot that passes
    leaves its guard in ``verified_guards`` for the next save of this UOW.
    """
    snap = read_snapshot(session, uow.uow_id)
    if snap.version != uow.version:
        raise ConcurrencyError(
            f"UOW {uow.uow_id} was changed by another writer (stored version "
            f"{snap.version}, this copy has {uow.version}); reload it and retry"
        )
    actual = snap.attributes_hash()
    if actual != snap.content_hash:
        # The caller's transaction may hold what the breach writer needs (the row lock,
        # SQLite's write lock): try without waiting; the engine retries after it ends.
        recorded = record_breach(session, uow.uow_id, actual, clock, wait=False, keys=keys)
        raise StateDriftError(uow.uow_id, snap.content_hash, actual, recorded=recorded)
    verified_guards.remember(uow.uow_id, snap.guard)
    return snap


#: Session.info key of the one-shot pass a checked read leaves on SQLite.
_CHECKED_READ = "chameleon_checked_read"


def checked_read(
    session: Session, uow: UnitsOfWork, clock: Callable[[], datetime], keys: KeyProvider
) -> Snapshot:
    """Drift-check the UOW's attributes for a save of it that follows in this transaction.

    On PostgreSQL the check leaves its guard (``verified_guards``): the save is guarded
    and needs no read. SQLite writes cannot be guarded, so the check leaves a one-shot
    pass in the Session instead, for this transaction and this copy of the UOW (version
    and content_hash): no other writer can change the rows between the read and the save
    (one writer at a time, and a transaction that read stale rows cannot write), so the
    next save of that copy in the same transaction skips its read.
    """
    snap = checked_snapshot(session, uow, clock, keys)
    if snap.guard is None:
        txn = session.get_transaction()
        session.info[_CHECKED_READ] = (txn, uow.uow_id, snap.version, snap.content_hash)
    return snap


def take_pass(session: Session | Connection, uow: UnitsOfWork) -> bool:
    """Use up the pass a checked read left for this copy of the UOW in this transaction."""
    if not isinstance(session, Session):
        return False
    entry = session.info.get(_CHECKED_READ)
    if entry is None or entry[1] != uow.uow_id:
        return False
    del session.info[_CHECKED_READ]
    txn = session.get_transaction()
    return txn is not None and entry == (txn, uow.uow_id, uow.version, uow.content_hash)
