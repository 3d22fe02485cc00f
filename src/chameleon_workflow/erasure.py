"""Redaction: erase one attribute value wherever the database holds it; the ledger still verifies.

``redact_value`` (of a finished UOW only) replaces the value of one key of one UOW with
``REDACTED_MARKER`` in every version row of that key, in the ``changes`` of every history
row that quotes it, and wherever a log row of that UOW quotes it (a JSON value equal to
it, or, for a text of four characters or more, inside a longer text). In the same
transaction it records who, why and which rows - never the value - in the admin ledger
(``VALUE_REDACTED``, see ``redactions``) and names each rewritten row in ``redactions``,
the one thing the append-only UPDATE triggers let through. History links (format 2) commit to salted
value digests, not values, so they still verify; the leaf hashes and log-stream digests
recorded let the checkpoint and stream verifiers accept exactly the rewritten rows.

Rows in link format 1 (written before keyed links) hash the value itself: a value they
hold is refused, not erased. A UOW whose rows an archive run took (a live manifest lists
it) is refused here; ``redact_archived`` redacts it given the archive store and signing
key: it restores the segment, redacts, and archives the segment's UOWs again (the new
segment carries the redacted rows, see ``archive.redacted``; the run removes the old
segment's files). Segments are never edited in place: the ``archive`` argument
(``ArchiveRewriter``) is a hook for such a rewriter, and nothing implements it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.admin_ledger import ADMIN, record_admin_event
from chameleon_workflow.append_only import REDACTABLE
from chameleon_workflow.archive.cuts import load_cuts
from chameleon_workflow.archive.restore import restore
from chameleon_workflow.archive.run import ArchiveResult, archive
from chameleon_workflow.archive.selection import Scope
from chameleon_workflow.archive.storage import SegmentStore
from chameleon_workflow.checkpoints.keys import Signer
from chameleon_workflow.checkpoints.leaves import BY_KIND, leaf_data, plain, selection
from chameleon_workflow.checkpoints.merkle import leaf_hash
from chameleon_workflow.db import SQLITE_IMMEDIATE, is_sqlite
from chameleon_workflow.errors import ChameleonError, InvalidValueError, NotFoundError
from chameleon_workflow.hashing import canonical_json
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.log_links import LEGACY_STREAM_ID, LOG_LINK_FIELDS, log_digest
from chameleon_workflow.models import UnitsOfWork, utcnow
from chameleon_workflow.redactions import REDACTED_MARKER, Redaction, load_redactions
from chameleon_workflow.states import AdminAction, UOWStatus

REASON_MAX = 1000
#: A UOW still at work would find its redacted attributes drifted from its content hash.
DONE = frozenset({UOWStatus.COMPLETED, UOWStatus.ARCHIVED, UOWStatus.FAILED_SECURITY_BREACH})
#: A text shorter than this is erased only where it is a whole value, never inside a text.
SUBSTRING_MIN = 4


#: Rewrites and re-signs the archive segments holding ``(uow_id, key)``; returns their records.
ArchiveRewriter = Callable[[uuid.UUID, str, str], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """What one redaction rewrote, and the admin-ledger row that records it."""

    admin_sequence: int
    uow_id: uuid.UUID
    key: str
    attribute_rows: int
    history_rows: int
    log_rows: int


@dataclass(frozen=True, slots=True)
class _Rewrite:
    table: str
    row: RowMapping
    new: dict[str, Any]  # the value columns' new values


def redact_value(
    session: Session,
    uow_id: uuid.UUID,
    key: str,
    reason: str,
    *,
    principal: str = ADMIN,
    actor_id: uuid.UUID | None = None,
    keys: KeyProvider | None = None,
    archive: ArchiveRewriter | None = None,
) -> RedactionResult:
    """Erase the value of ``key`` of a UOW everywhere, in the session's transaction."""
    reason = reason.strip()
    if not reason:
        raise InvalidValueError("a redaction needs a reason")
    if len(reason) > REASON_MAX:
        raise InvalidValueError(f"the reason is longer than {REASON_MAX} characters")
    uow = session.get(UnitsOfWork, uow_id)
    if uow is None:
        _refuse_archived(session, uow_id)
        raise NotFoundError(f"no UOW with id {uow_id}")
    if uow.status not in DONE:
        raise InvalidValueError(
            f"UOW {uow_id} is {uow.status}: only a finished UOW (COMPLETED, ARCHIVED or "
            "FAILED_SECURITY_BREACH) can be redacted"
        )
    attributes = _rows(session, "uow_attributes", uow_id, key)
    if not attributes:
        raise NotFoundError(f"UOW {uow_id} has no attribute {key!r}")
    done = load_redactions(session.connection())
    targets = [
        r
        for r in attributes
        if r["value"] is not None and done.row("uow_attributes", str(r["attribute_id"])) is None
    ]
    if not targets:
        held = any(r["value"] is not None for r in attributes)
        state = "is already redacted" if held else "holds no value to redact"
        raise InvalidValueError(f"attribute {key!r} of UOW {uow_id} {state}")
    if any(r["salt"] is None for r in targets):
        raise InvalidValueError(_LEGACY.format(what=f"attribute {key!r}"))
    erased = [r["value"] for r in targets]
    rewrites = [_Rewrite("uow_attributes", r, {"value": REDACTED_MARKER}) for r in targets]
    rewrites += _history_rewrites(_rows(session, "uow_history", uow_id), key)
    rewrites += _log_rewrites(_rows(session, "interaction_logs", uow_id), erased)
    details = {
        "uow_id": str(uow_id),
        "key": key,
        "reason": reason,
        "marker": REDACTED_MARKER,
        "rows": [_entry(w) for w in rewrites],
    }
    if archive is not None:
        details["archive_segments"] = archive(uow_id, key, REDACTED_MARKER)
    sequence = record_admin_event(
        session,
        AdminAction.VALUE_REDACTED,
        principal=principal,
        actor_id=actor_id,
        instance_id=uow.instance_id,
        subject_id=uow_id,
        details=details,
        keys=keys,
    )
    _perform(session, sequence, rewrites)
    counts = {t: sum(w.table == t for w in rewrites) for t in REDACTABLE}
    return RedactionResult(
        sequence,
        uow_id,
        key,
        counts["uow_attributes"],
        counts["uow_history"],
        counts["interaction_logs"],
    )


def _refuse_archived(session: Session, uow_id: uuid.UUID) -> None:
    """Refuse a UOW whose rows are in an archive segment (``redact_archived`` handles it)."""
    segments = archived_in(session.connection(), uow_id)
    if segments:
        raise InvalidValueError(
            f"UOW {uow_id} is archived (segment {segments[0]}): give the archive directory to "
            "redact it there, or restore the segment, redact, then archive again"
        )


def archived_in(connection: Connection, uow_id: uuid.UUID) -> list[str]:
    """Return the live segments holding a UOW's rows (one, as runs take whole UOWs)."""
    manifests = load_cuts(connection).manifests
    return [s for s, m in sorted(manifests.items()) if str(uow_id) in (m.body.get("uows") or ())]


@dataclass(frozen=True, slots=True)
class ArchivedRedaction:
    """A redaction of an archived UOW: the segments restored, and the run that took them back."""

    redaction: RedactionResult
    restored: list[str]
    archived: ArchiveResult


def redact_archived(
    factory: sessionmaker[Session],
    store: SegmentStore,
    signer: Signer,
    uow_id: uuid.UUID,
    key: str,
    reason: str,
    *,
    principal: str = ADMIN,
) -> ArchivedRedaction:
    """Redact a value of an archived UOW: restore its segment, redact, archive its UOWs again.

    Each step is the audited one (``LEDGER_RESTORED``, ``VALUE_REDACTED``,
    ``LEDGER_ARCHIVED``); the new segment holds the redacted rows under a newly signed
    manifest, and the archive run removes the restored segment's files (they hold the
    value). A redaction refused (unknown key, empty reason, ...) still archives the UOWs
    again before the error is raised. A UOW not archived: an InvalidValueError.
    """
    engine = factory.kw["bind"]
    with engine.connect() as connection:
        segments = archived_in(connection, uow_id)
        uows = {u for s in segments for u in load_cuts(connection).manifests[s].body["uows"]}
    if not segments:
        raise InvalidValueError(f"UOW {uow_id} is not archived: redact it without the archive")
    for segment_id in segments:
        restore(engine, store, segment_id, signer.public_key, principal=principal)
    scope = Scope(utcnow(), uows=frozenset(uuid.UUID(u) for u in uows))
    try:
        with writing(factory).begin() as session:
            done = redact_value(session, uow_id, key, reason, principal=principal)
    except ChameleonError:
        archive(engine, store, signer, scope, principal=principal)  # refused: archived as before
        raise
    again = archive(engine, store, signer, scope, principal=principal)
    return ArchivedRedaction(done, segments, again)


def writing(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Return sessions for a redaction: on SQLite they take the write lock at BEGIN.

    A redaction reads the rows, then rewrites them; a deferred SQLite transaction would
    fail at its first write whenever another writer (the flusher, the sealer) committed
    since its read.
    """
    engine = factory.kw["bind"]
    if not is_sqlite(engine):
        return factory
    return sessionmaker(
        bind=engine.execution_options(**{SQLITE_IMMEDIATE: True}),
        **{k: v for k, v in factory.kw.items() if k != "bind"},
    )


_LEGACY = (
    "{what} was written before keyed links (format 1): its links cover the value itself, "
    "so it cannot be erased without breaking the chain"
)


def _rows(session: Session, table: str, uow_id: uuid.UUID, key: str | None = None) -> list[Any]:
    ledger = BY_KIND[table]
    columns = ledger.table.c
    query = select(*selection(ledger, session.get_bind().dialect.name)).where(
        columns.uow_id == uow_id
    )
    if key is not None:
        query = query.where(columns.key == key)
    query = query.order_by(*(columns[name] for name in ledger.order))
    return [row._mapping for row in session.execute(query)]


def _history_rewrites(rows: list[RowMapping], key: str) -> list[_Rewrite]:
    rewrites = []
    for row in rows:
        changes = row["changes"]
        scrubbed = _scrub_changes(changes, key)
        if scrubbed == changes:
            continue
        if row["link_version"] == 1:
            raise InvalidValueError(_LEGACY.format(what=f"history row {row['sequence']}"))
        rewrites.append(_Rewrite("uow_history", row, {"changes": scrubbed}))
    return rewrites


def _scrub_changes(changes: Any, key: str) -> Any:
    """Return ``changes`` with every value recorded for ``key`` replaced by the marker."""
    if not isinstance(changes, dict):
        return changes
    scrubbed = dict(changes)
    for section in ("added", "removed"):
        part = changes.get(section)
        if isinstance(part, dict) and part.get(key) is not None:
            scrubbed[section] = {**part, key: REDACTED_MARKER}
    changed = changes.get("changed")
    if isinstance(changed, dict) and isinstance(changed.get(key), dict):
        entry = changed[key]
        marked = {k: REDACTED_MARKER if v is not None else None for k, v in entry.items()}
        scrubbed["changed"] = {**changed, key: marked}
    return scrubbed


def _log_rewrites(rows: list[RowMapping], erased: list[Any]) -> list[_Rewrite]:
    quoted = {canonical_json(value) for value in erased}
    texts = [v for v in erased if isinstance(v, str) and len(v) >= SUBSTRING_MIN]

    def scrub(value: Any) -> Any:
        if value is None:
            return None
        if canonical_json(value) in quoted:
            return REDACTED_MARKER
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, str):
            for erased_text in texts:
                value = value.replace(erased_text, REDACTED_MARKER)
        return value

    rewrites = []
    for row in rows:
        new = {c: scrub(row[c]) for c in REDACTABLE["interaction_logs"][1]}
        if all(new[c] == row[c] for c in new):
            continue
        if row["stream_id"] is None or str(row["stream_id"]) == str(LEGACY_STREAM_ID):
            raise InvalidValueError(_LEGACY.format(what=f"log row {row['log_id']}"))
        rewrites.append(_Rewrite("interaction_logs", row, new))
    return rewrites


def _entry(rewrite: _Rewrite) -> dict[str, Any]:
    """Return what the admin ledger records of one rewritten row (never the value)."""
    table, row = rewrite.table, rewrite.row
    after = {**row, **rewrite.new}
    entry: dict[str, Any] = {
        "table": table,
        "row_id": str(row[BY_KIND[table].key.name]),
        "original_leaf": leaf_hash(leaf_data(table, row)).hex(),
        "redacted_leaf": leaf_hash(leaf_data(table, after)).hex(),
    }
    if table == "uow_attributes":
        entry["version"] = row["version"]
    if table == "interaction_logs":
        values = {name: plain(after[name], name) for name in LOG_LINK_FIELDS}
        entry["redacted_link_body"] = log_digest(values)
    return entry


_TXID: Mapping[str, Callable[[Session], int | None]] = {
    "postgresql": lambda s: s.execute(text("SELECT txid_current()")).scalar_one(),
}
#: SQLite overwrites the freed content of rewritten pages instead of leaving it in the file.
_SQLITE_SCRUB = "PRAGMA secure_delete = ON"


def _perform(session: Session, sequence: int, rewrites: list[_Rewrite]) -> None:
    """Name every row in ``redactions``, then rewrite it (the trigger checks the name)."""
    dialect = session.get_bind().dialect.name
    txid = _TXID[dialect](session) if dialect in _TXID else None
    if dialect == "sqlite":
        session.execute(text(_SQLITE_SCRUB))
    for rewrite in rewrites:
        ledger = BY_KIND[rewrite.table]
        row_id = str(rewrite.row[ledger.key.name])
        session.execute(
            insert(Redaction).values(
                admin_sequence=sequence, table_name=rewrite.table, row_id=row_id, txid=txid
            )
        )
        table: Table = ledger.table
        session.execute(
            update(table).where(ledger.key == rewrite.row[ledger.key.name]).values(**rewrite.new)
        )
