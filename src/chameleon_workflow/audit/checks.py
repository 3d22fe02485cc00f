"""The checks of one UOW: its attribute rows, its chain, and the UOW row against both.

Each takes rows straight from the driver (see ``reader``) and adds what it finds to a
``Tally``; positions in a history row follow ``chain.STORED_KEYED_FIELDS``, in a UOW row
``reader.UOW_COLUMNS``. Rows in link format 1 are checked exactly as before keyed links
(and counted for the seal); rows in format 2 by their MAC, the attribute rows they
commit to, and the holder, retry count and creation facts they record.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from chameleon_workflow.audit.attributes import Written, check_attributes
from chameleon_workflow.audit.links import same_json
from chameleon_workflow.audit.reader import VerifyReader
from chameleon_workflow.audit.report import FindingKind, Tally
from chameleon_workflow.chain import (
    keyed_link_body,
    stored_keyed_link_matches,
    stored_link_matches,
)
from chameleon_workflow.hashing import GENESIS_HASH, canonical_json, stored_json
from chameleon_workflow.keys import KeyProvider


def check_orphans(reader: VerifyReader, tally: Tally) -> None:
    """Report ledger and attribute rows whose UOW row is gone (or, per instance, moved)."""
    scoped = bool(reader.scope)
    for table, what in (("uow_history", "history"), ("uow_attributes", "attribute")):
        for uow_id, rows in reader.orphans(table):
            where = "was deleted or moved to another instance" if scoped else "was deleted"
            tally.add(
                FindingKind.ORPHANED,
                uow_id,
                None,
                f"{rows} {what} rows belong to no UOW row (the UOW row {where})",
            )


def _grouped(rows: Iterable[tuple[Any, ...]], column: int) -> dict[str, list[tuple[Any, ...]]]:
    return {k: list(g) for k, g in itertools.groupby(rows, key=itemgetter(column))}


def verify_page(
    reader: VerifyReader, page: list[tuple[Any, ...]], keys: KeyProvider, tally: Tally
) -> None:
    """Check a page of UOW rows against their attributes and streamed history rows."""
    attributes = _grouped(reader.attributes(page), 0)
    groups = itertools.groupby(reader.history(page), key=itemgetter(_UOW))
    group = next(groups, None)
    for uow in page:
        ident = uow[0]
        tally.uows += 1
        attrs = attributes.get(ident, [])
        tally.attributes += len(attrs)
        written = check_attributes(uow, attrs, tally)
        while group is not None and group[0] < ident:  # rows of no UOW in this page
            group = next(groups, None)
        ends = None
        if group is not None and group[0] == ident:
            ends = _Chain(ident, keys, written, tally).walk(group[1])
            group = next(groups, None)
        _check_head(uow, ends, tally)


# Positions in a history row (chain.STORED_KEYED_FIELDS: format-1 fields sorted, the link,
# then the columns format 2 adds).
_CHANGES, _EVENT, _INSTANCE, _NEW_INTER, _NEW_HASH, _NEW_STATUS = 1, 2, 4, 5, 6, 7
_PREV_INTER, _PREV_HASH, _PREV_STATUS, _SEQ, _TIME, _UOW, _CHAIN = 8, 9, 10, 12, 14, 15, 16
_VERSION, _KEY, _HOLDER, _RETRIES, _DIGEST, _WORKFLOW, _PARENT = 17, 18, 19, 20, 21, 22, 23
_LEGACY_WIDTH = 17
# Where a row starts (previous interaction, state hash, status) and where it ends (new
# ones): each three side by side, in the same order (tests/unit/test_verify_links.py).
STARTS, ENDS = slice(_PREV_INTER, _PREV_STATUS + 1), slice(_NEW_INTER, _NEW_STATUS + 1)
_DIFF_EVENTS = frozenset({"CREATED", "ATTRIBUTES"})


class _Chain:
    """One UOW's history rows, walked in sequence order."""

    def __init__(
        self, uow_id: str, keys: KeyProvider, written: dict[int, Written], tally: Tally
    ) -> None:
        self.uow_id, self.keys, self.written, self.tally = uow_id, keys, written, tally

    def walk(
        self, rows: Iterable[tuple[Any, ...]]
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
        """Check every row; return the first and last rows (None when there is none).

        A keyed row whose sorted-orjson MAC input carries its stored MAC is settled here
        (and, when it wrote no attributes and records no change, so is its attribute
        check); every other row goes through ``link``, the full check.
        """
        previous_link = GENESIS_HASH
        first = previous = None
        expected, count, keyed = 1, 0, False
        mac, written = self.keys.mac, self.written
        for row in rows:
            count += 1
            sequence = row[_SEQ]
            if sequence != expected:
                self.add(FindingKind.SEQUENCE_GAP, sequence, f"expected sequence {expected}")
            if (
                row[_VERSION] == 2
                and (body := keyed_link_body(row)) is not None
                and (made := mac(row[_KEY], previous_link.encode("ascii") + body)) is not None
                and made == row[_CHAIN]
            ):
                keyed = True
                if (
                    row[_DIGEST] is not None
                    or row[_CHANGES] is not None
                    or sequence in written
                    or row[_EVENT] in _DIFF_EVENTS
                ):
                    self.attributes(row)
            else:
                keyed = self.link(previous_link, row, keyed)
            if previous is None:
                first = row
            elif row[STARTS] != previous[ENDS]:
                self.continuity(previous, row)
            previous_link, previous, expected = row[_CHAIN], row, sequence + 1
        self.tally.history += count
        for sequence in sorted(self.written):
            self.add(
                FindingKind.ATTRIBUTE_MISMATCH,
                sequence,
                "attribute rows name this history row, which does not commit to them",
            )
        return None if first is None or previous is None else (first, previous)

    def add(self, kind: FindingKind, sequence: int | None, detail: str) -> None:
        """Report a finding on this UOW."""
        self.tally.add(kind, self.uow_id, sequence, detail)

    def link(self, previous_link: str, row: tuple[Any, ...], keyed: bool) -> bool:
        """Check a row's link in its format; return whether a keyed row has been seen."""
        version = row[_VERSION]
        if version == 1:
            self.tally.legacy.add(row[_CHAIN])
            if keyed:
                self.add(FindingKind.CHAIN_BROKEN, row[_SEQ], "unkeyed row after keyed rows")
            elif not stored_link_matches(previous_link, row[:_LEGACY_WIDTH]):
                self.add(FindingKind.CHAIN_BROKEN, row[_SEQ], _BROKEN)
            return keyed
        if version != 2:
            self.add(FindingKind.CHAIN_BROKEN, row[_SEQ], f"unknown link format {version!r}")
            return True
        matches = stored_keyed_link_matches(self.keys, previous_link, row)
        if matches is None:
            self.tally.unknown_keys[row[_KEY]] = self.tally.unknown_keys.get(row[_KEY], 0) + 1
        elif not matches:
            self.add(FindingKind.CHAIN_BROKEN, row[_SEQ], _BROKEN)
        self.attributes(row)
        return True

    def attributes(self, row: tuple[Any, ...]) -> None:
        """Compare a keyed row's attribute digest and ``changes`` with the attribute rows."""
        sequence = row[_SEQ]
        written = self.written.pop(sequence, None) or Written()
        if not written.digest_is(row[_DIGEST]):
            self.add(
                FindingKind.ATTRIBUTE_MISMATCH,
                sequence,
                "the attribute rows written here do not match the digest this row commits to",
            )
        expected = written.diff() if row[_EVENT] in _DIFF_EVENTS else None
        recorded = stored_json(row[_CHANGES])
        if (expected is None) != (recorded is None) or (
            expected is not None
            and not same_json(expected, recorded)
            and canonical_json(expected) != canonical_json(recorded)
        ):
            self.add(
                FindingKind.ATTRIBUTE_MISMATCH,
                sequence,
                "the changes this row records differ from the attribute rows written with it",
            )

    def continuity(self, previous: tuple[Any, ...], row: tuple[Any, ...]) -> None:
        """Report a row that does not start where the row before it ended."""
        if (row[_PREV_STATUS], row[_PREV_HASH], row[_PREV_INTER]) != (
            previous[_NEW_STATUS],
            previous[_NEW_HASH],
            previous[_NEW_INTER],
        ):
            self.add(
                FindingKind.DISCONTINUITY,
                row[_SEQ],
                f"starts at ({row[_PREV_STATUS]}, {row[_PREV_HASH]}, {row[_PREV_INTER]}) but "
                f"the row before ended at ({previous[_NEW_STATUS]}, {previous[_NEW_HASH]}, "
                f"{previous[_NEW_INTER]})",
            )


_BROKEN = "chain_hash does not match the row's content and the previous link"


def _check_head(
    uow: tuple[Any, ...], ends: tuple[tuple[Any, ...], tuple[Any, ...]] | None, tally: Tally
) -> None:
    uow_id = uow[0]
    if ends is None:
        tally.add(FindingKind.NO_HISTORY, uow_id, None, "UOW has no history rows")
        return
    first, last = ends
    for column, stored, recorded in _head_facts(uow, first, last):
        if stored != recorded:
            tally.add(
                FindingKind.HEAD_MISMATCH,
                uow_id,
                last[_SEQ],
                f"UOW {column} is {stored!r} but its history records {recorded!r}",
            )
    if uow[8] < last[_SEQ]:
        tally.add(
            FindingKind.HEAD_MISMATCH,
            uow_id,
            last[_SEQ],
            f"UOW version is {uow[8]!r}, below its {last[_SEQ]} history rows",
        )


def _head_facts(
    uow: tuple[Any, ...], first: tuple[Any, ...], last: tuple[Any, ...]
) -> list[tuple[str, Any, Any]]:
    """Return (column, stored value, value the history records) for every checked column."""
    facts = [
        ("status", uow[1], last[_NEW_STATUS]),
        ("current_interaction_id", uow[2], last[_NEW_INTER]),
        ("content_hash", uow[3], last[_NEW_HASH]),
        ("chain_head", uow[4], last[_CHAIN]),
        ("history_sequence", uow[5], last[_SEQ]),
        ("instance_id", uow[9], last[_INSTANCE]),
    ]
    if last[_VERSION] == 2:
        facts += [
            ("held_by_actor_id", uow[6], last[_HOLDER]),
            ("retry_count", uow[7], last[_RETRIES]),
        ]
    if first[_VERSION] == 2 and first[_SEQ] == 1:
        facts += [
            ("local_workflow_id", uow[10], first[_WORKFLOW]),
            ("parent_id", uow[11], first[_PARENT]),
            ("created_at", uow[12], first[_TIME]),
        ]
    return facts
