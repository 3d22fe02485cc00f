"""The checks of one UOW: attributes against ``content_hash``, the chain, and the UOW row.

Each takes rows straight from the driver (see ``reader``) and adds what it finds to a
``Tally``; positions in a history row follow ``chain.STORED_ROW_FIELDS``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from chameleon_workflow.audit.reader import VerifyReader
from chameleon_workflow.audit.report import FindingKind, Tally
from chameleon_workflow.chain import stored_link_matches
from chameleon_workflow.hashing import GENESIS_HASH, content_hash, stored_json


def check_orphans(reader: VerifyReader, tally: Tally) -> None:
    """Report ledger and attribute rows whose UOW row is gone (deleted behind the engine)."""
    for table, what in (("uow_history", "history"), ("uow_attributes", "attribute")):
        for uow_id, rows in reader.orphans(table):
            tally.add(
                FindingKind.ORPHANED,
                uow_id,
                None,
                f"{rows} {what} rows belong to no UOW row (the UOW row was deleted)",
            )


def _grouped(rows: Iterable[tuple[Any, ...]], column: int) -> dict[str, list[tuple[Any, ...]]]:
    return {k: list(g) for k, g in itertools.groupby(rows, key=itemgetter(column))}


def verify_page(reader: VerifyReader, page: list[tuple[Any, ...]], tally: Tally) -> None:
    """Check a page of UOW rows against their attributes and streamed history rows."""
    first, last = page[0][0], page[-1][0]
    attributes = _grouped(reader.attributes(first, last), 0)
    groups = itertools.groupby(reader.history(first, last), key=itemgetter(_UOW))
    group = next(groups, None)
    for uow in page:
        ident = uow[0]
        tally.uows += 1
        attrs = attributes.get(ident, [])
        tally.attributes += len(attrs)
        _check_attributes(uow, attrs, tally)
        while group is not None and group[0] < ident:  # rows of no UOW in this page
            group = next(groups, None)
        last_row = None
        if group is not None and group[0] == ident:
            last_row = _check_chain(ident, group[1], tally)
            group = next(groups, None)
        _check_head(uow, last_row, tally)


def _check_attributes(uow: tuple[Any, ...], rows: list[tuple[Any, ...]], tally: Tally) -> None:
    current: dict[str, Any] = {}
    for key, versions in itertools.groupby(rows, key=lambda r: r[1]):
        expected = 1
        latest: tuple[Any, ...] | None = None
        for row in versions:
            if row[2] != expected:
                tally.add(
                    FindingKind.ATTRIBUTE_VERSION_GAP,
                    uow[0],
                    None,
                    f"attribute {key!r}: expected version {expected}, found {row[2]}",
                )
            expected = row[2] + 1
            latest = row
        if latest is not None and not latest[4]:
            current[key] = stored_json(latest[3])
    actual = content_hash(current)
    if actual != uow[3]:
        tally.add(
            FindingKind.DRIFT,
            uow[0],
            None,
            f"attributes hash to {actual}, stored content_hash is {uow[3]}",
        )


# Positions in a history row (chain.STORED_ROW_FIELDS: hashed fields sorted, then the link).
_NEW_INTER, _NEW_HASH, _NEW_STATUS = 5, 6, 7
_PREV_INTER, _PREV_HASH, _PREV_STATUS, _SEQ, _UOW, _CHAIN = 8, 9, 10, 12, 15, 16


def _check_chain(
    uow_id: str, rows: Iterable[tuple[Any, ...]], tally: Tally
) -> tuple[Any, ...] | None:
    previous_link = GENESIS_HASH
    previous: tuple[Any, ...] | None = None
    expected = 1
    count = 0
    for row in rows:
        count += 1
        sequence = row[_SEQ]
        if sequence != expected:
            tally.add(FindingKind.SEQUENCE_GAP, uow_id, sequence, f"expected sequence {expected}")
        if not stored_link_matches(previous_link, row):
            tally.add(
                FindingKind.CHAIN_BROKEN,
                uow_id,
                sequence,
                "chain_hash does not match the row's content and the previous link",
            )
        if previous is not None and (row[_PREV_STATUS], row[_PREV_HASH], row[_PREV_INTER]) != (
            previous[_NEW_STATUS],
            previous[_NEW_HASH],
            previous[_NEW_INTER],
        ):
            tally.add(
                FindingKind.DISCONTINUITY,
                uow_id,
                sequence,
                f"starts at ({row[_PREV_STATUS]}, {row[_PREV_HASH]}, {row[_PREV_INTER]}) but "
                f"the row before ended at ({previous[_NEW_STATUS]}, {previous[_NEW_HASH]}, "
                f"{previous[_NEW_INTER]})",
            )
        previous_link, previous, expected = row[_CHAIN], row, sequence + 1
    tally.history += count
    return previous


def _check_head(uow: tuple[Any, ...], last: tuple[Any, ...] | None, tally: Tally) -> None:
    uow_id, status, interaction, state_hash, head, sequence = uow
    if last is None:
        tally.add(FindingKind.NO_HISTORY, uow_id, None, "UOW has no history rows")
        return
    expected = {
        "status": (status, last[_NEW_STATUS]),
        "current_interaction_id": (interaction, last[_NEW_INTER]),
        "content_hash": (state_hash, last[_NEW_HASH]),
        "chain_head": (head, last[_CHAIN]),
        "history_sequence": (sequence, last[_SEQ]),
    }
    for column, (stored, recorded) in expected.items():
        if stored != recorded:
            tally.add(
                FindingKind.HEAD_MISMATCH,
                uow_id,
                last[_SEQ],
                f"UOW {column} is {stored!r} but its last history row records {recorded!r}",
            )
