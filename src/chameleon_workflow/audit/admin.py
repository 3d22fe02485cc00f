"""Verification of the admin ledger: rows 1..n with no gap, each linked under the ledger key."""

from __future__ import annotations

from sqlalchemy import Connection, Table, select

from chameleon_workflow.admin_ledger import ADMIN_LINK_FIELDS, admin_link
from chameleon_workflow.audit.report import FindingKind, Tally
from chameleon_workflow.audit.rows import canonical, decoded_json, selection
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.models import AdminEvent

EVENTS: Table = AdminEvent.__table__  # type: ignore[assignment]


def check_admin_ledger(conn: Connection, keys: KeyProvider, tally: Tally) -> None:
    """Check every admin-ledger row's place and link; count them."""
    dialect = conn.dialect.name
    columns = selection(EVENTS, ADMIN_LINK_FIELDS, dialect)
    query = select(*columns, EVENTS.c.chain_hash).order_by(EVENTS.c.sequence)
    previous: str | None = None
    expected = 1
    for row in conn.execute(query):
        tally.admin_events += 1
        values = {name: canonical(v) for name, v in zip(ADMIN_LINK_FIELDS, row, strict=False)}
        values["details"] = decoded_json(values["details"], dialect)
        sequence = values["sequence"]
        if sequence != expected:
            missing = "missing" if sequence > expected else "out of order"
            _add(tally, sequence, f"expected row {expected}: rows {missing}")
        try:
            link = admin_link(keys, previous, values)
        except InvalidValueError:
            link = ""  # a value no canonical form holds: it was not written by the ledger
        if link is None:
            key_id = str(values["key_id"])
            tally.unknown_keys[key_id] = tally.unknown_keys.get(key_id, 0) + 1
        elif link != row[-1]:
            _add(
                tally, sequence, "chain_hash does not match the row's content and the previous link"
            )
        previous, expected = row[-1], sequence + 1


def _add(tally: Tally, sequence: int | None, detail: str) -> None:
    tally.add(FindingKind.ADMIN_LEDGER, "", sequence, detail)
