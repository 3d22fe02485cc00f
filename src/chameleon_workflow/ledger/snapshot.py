"""What the ledger reads before a write: a UOW's stored state, and the memos that spare work.

A ``Snapshot`` is the UOW's stored version and content_hash with its latest attribute
rows, undecoded (on PostgreSQL also the server's fingerprint of those rows). Two
process-wide memos sit beside it: the drift hash of raw attribute rows, and the guard of
each UOW whose attributes last passed a drift check (``verified_guards``), which lets a
PostgreSQL save skip the read.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import NotFoundError
from chameleon_workflow.hashing import content_hash, stored_json
from chameleon_workflow.ledger.backend import AttributeRow, Guard
from chameleon_workflow.ledger.dialects import statements_for
from chameleon_workflow.models import UnitsOfWork


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the database holds for a UOW right now (attribute values still undecoded)."""

    version: int
    content_hash: str
    rows: tuple[AttributeRow, ...]
    #: What the database computes over these rows (PostgreSQL), for guarded writes.
    fingerprint: bytes | None = None

    @property
    def guard(self) -> Guard | None:
        """Return what a guarded write must find stored, if the back end guards writes."""
        return None if self.fingerprint is None else (self.content_hash, self.fingerprint)

    @property
    def attributes(self) -> dict[str, Any]:
        """Return the current attributes, decoded."""
        return {key: stored_json(value) for key, _v, value, deleted in self.rows if not deleted}

    @property
    def key_versions(self) -> dict[str, int]:
        """Return the latest version of every key, deleted ones included."""
        return {key: version for key, version, _value, _deleted in self.rows}

    def attributes_hash(self) -> str:
        """Return the content hash of the stored attributes (memoized on their raw form)."""
        return _hash_memo.get(self)


def read_snapshot(session: Session | Connection, uow_id: uuid.UUID) -> Snapshot:
    """Read the UOW's stored version, content_hash and latest attribute rows."""
    with translated_errors():
        conn = session.connection() if isinstance(session, Session) else session
        rows = statements_for(conn).snapshot(conn, uow_id)
    if not rows:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    first = rows[0]
    fingerprint = first[6] if len(first) > 6 else None
    if first[2] is None:  # the LEFT JOIN found no attribute
        return Snapshot(first[0], first[1], (), fingerprint)
    # Sorted by key so that the memo digest does not depend on the database's row order.
    attributes = sorted((r[2], r[3], r[4], bool(r[5])) for r in rows)
    return Snapshot(first[0], first[1], tuple(attributes), fingerprint)


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


class VerifiedGuards:
    """The guard of each UOW whose attributes this process last found matching its hash.

    A hint, never a proof: a guarded write re-checks content_hash and fingerprint in the
    database in the statement that writes, so a stale entry costs only the slower path
    (read, check in Python, then write). Bounded like the hash memo.
    """

    MAX_ENTRIES = 8192  # about 400 bytes each

    def __init__(self) -> None:
        self._known: dict[uuid.UUID, Guard] = {}

    def remember(self, uow_id: uuid.UUID, guard: Guard | None) -> None:
        """Keep the guard a drift check just accepted."""
        if guard is None:
            return
        if len(self._known) >= self.MAX_ENTRIES:
            self._known.clear()
        self._known[uow_id] = guard

    def get(self, uow: UnitsOfWork) -> Guard | None:
        """Return the remembered guard if it is for the content_hash this copy holds."""
        guard = self._known.get(uow.uow_id)
        return guard if guard is not None and guard[0] == uow.content_hash else None

    def forget(self, uow_id: uuid.UUID) -> None:
        """Drop a UOW's guard (its attributes are about to change)."""
        self._known.pop(uow_id, None)


verified_guards = VerifiedGuards()
