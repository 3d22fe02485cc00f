"""What was redacted: the records verification reads to tell an erased value from tampering.

A redaction (``erasure``) rewrites the value columns of some rows and records, in one
admin-ledger row (``VALUE_REDACTED``, linked under the ledger key like every admin
event), for each row it rewrote: its table and id, the checkpoint leaf hash it had
before (``original_leaf``) and the one it has now (``redacted_leaf``); for an attribute
row its key and version; for a log row the digest of its linked form after the rewrite
(``redacted_link_body``), since its stream link (unchanged) covers the erased value. The
value itself is never recorded. Verification accepts a rewritten row only when it is
named here and is exactly the recorded redacted form; the admin ledger's own links make
the records themselves tamper-evident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import BigInteger, Connection, Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from chameleon_workflow.append_only import REDACTED_MARKER
from chameleon_workflow.models import AdminEvent, Base
from chameleon_workflow.states import AdminAction

__all__ = ["REDACTED_MARKER", "RedactedRow", "Redaction", "Redactions", "load_redactions"]


class Redaction(Base):
    """A row whose value columns a redaction rewrote; written with the redaction, append-only.

    The append-only UPDATE trigger of the row's table lets the rewrite through only when
    a record names the row (on PostgreSQL: written in the same transaction, ``txid``).
    What was erased and the digests verification needs live in the admin-ledger row
    (``admin_sequence``), under the ledger key.
    """

    __tablename__ = "redactions"
    __table_args__ = (Index("ix_redactions_row", "table_name", "row_id"),)

    redaction_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    admin_sequence: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    table_name: Mapped[str] = mapped_column(String(40))
    row_id: Mapped[str] = mapped_column(String(64))
    txid: Mapped[int | None] = mapped_column(BigInteger())


@dataclass(frozen=True, slots=True)
class RedactedRow:
    """One row a redaction rewrote, as its admin-ledger record describes it."""

    table: str
    row_id: str
    original_leaf: str
    redacted_leaf: str
    admin_sequence: int
    uow_id: str
    key: str
    version: int | None = None
    redacted_link_body: str | None = None


@dataclass(frozen=True, slots=True)
class Redactions:
    """Every recorded redaction, by the row it rewrote."""

    #: Each rewritten row's records, oldest first (redacting two keys may rewrite it twice).
    rows: Mapping[tuple[str, str], tuple[RedactedRow, ...]] = field(default_factory=dict)

    def row(self, table: str, row_id: str) -> RedactedRow | None:
        """Return the latest record of a rewritten row (None: no redaction touched it)."""
        records = self.rows.get((table, row_id))
        return records[-1] if records else None

    def leads_to(self, table: str, row_id: str, sealed: str, actual: str) -> bool:
        """Tell whether recorded rewrites lead from leaf hash ``sealed`` to ``actual``.

        Some record must start at ``sealed``, each later one where the one before ended,
        and the last end at ``actual``.
        """
        records = self.rows.get((table, row_id), ())
        if not records or records[-1].redacted_leaf != actual:
            return False
        for start, record in enumerate(records):
            if record.original_leaf == sealed:
                later = records[start:]
                return all(b.original_leaf == a.redacted_leaf for a, b in pairwise(later))
        return False

    def attribute(self, uow_id: str, key: str, version: int) -> RedactedRow | None:
        """Return the record of a redacted attribute version (None: not redacted)."""
        return self._attributes().get((uow_id, key, version))

    def _attributes(self) -> dict[tuple[str, str, int], RedactedRow]:
        return {
            (r.uow_id, r.key, r.version): r
            for records in self.rows.values()
            for r in records
            if r.table == "uow_attributes" and r.version is not None
        }


def load_redactions(connection: Connection) -> Redactions:
    """Read every redaction record of the admin ledger."""
    query = (
        select(AdminEvent.sequence, AdminEvent.details)
        .where(AdminEvent.action == str(AdminAction.VALUE_REDACTED))
        .order_by(AdminEvent.sequence)
    )
    rows: dict[tuple[str, str], tuple[RedactedRow, ...]] = {}
    for sequence, details in connection.execute(query):
        for entry in _entries(details):
            record = _record(sequence, details, entry)
            if record is not None:
                where = (record.table, record.row_id)
                rows[where] = (*rows.get(where, ()), record)
    return Redactions(rows)


def _entries(details: Any) -> list[Any]:
    rows = details.get("rows") if isinstance(details, dict) else None
    return rows if isinstance(rows, list) else []


def _record(sequence: int, details: dict[str, Any], entry: Any) -> RedactedRow | None:
    """Return one entry as a record; a malformed entry names nothing (and excuses nothing)."""
    if not isinstance(entry, dict):
        return None
    try:
        return RedactedRow(
            table=str(entry["table"]),
            row_id=str(entry["row_id"]),
            original_leaf=str(entry["original_leaf"]),
            redacted_leaf=str(entry["redacted_leaf"]),
            admin_sequence=int(sequence),
            uow_id=str(details["uow_id"]),
            key=str(details["key"]),
            version=entry.get("version"),
            redacted_link_body=entry.get("redacted_link_body"),
        )
    except (KeyError, TypeError, ValueError):
        return None
