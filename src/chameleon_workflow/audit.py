"""Verification of the ledger: one UOW or a whole database, every finding named.

For each UOW it checks that the attributes hash to the stored ``content_hash``, that
attribute versions run 1..n per key, that history sequences run 1..n without gaps,
that every row's ``chain_hash`` is the link computed from the row before it, that each
row starts where the previous one ended (status, interaction, state hash), and that the
UOW row agrees with its last history row. Rows are streamed page by page straight from
the driver, so memory stays flat and the pace is set by hashing, not by the ORM. Asked
for workers, a whole-database run shares pages of UOWs with worker processes
(``_verify_parallel``); the report is the same, finding for finding.
"""

from __future__ import annotations

import enum
import itertools
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from . import _verify_parallel
from ._verify_reader import VerifyReader
from .db import translated_errors
from .hashing import GENESIS_HASH, content_hash
from .ledger import stored_link_matches


class FindingKind(enum.StrEnum):
    """Kinds of problems verification reports."""

    DRIFT = "DRIFT"
    ATTRIBUTE_VERSION_GAP = "ATTRIBUTE_VERSION_GAP"
    SEQUENCE_GAP = "SEQUENCE_GAP"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    DISCONTINUITY = "DISCONTINUITY"
    HEAD_MISMATCH = "HEAD_MISMATCH"
    NO_HISTORY = "NO_HISTORY"
    ORPHANED = "ORPHANED"


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken item: what, on which UOW, at which history sequence, and how."""

    kind: FindingKind
    uow_id: str
    sequence: int | None
    detail: str

    def __str__(self) -> str:
        """Render as one line for logs and the CLI."""
        at = f" #{self.sequence}" if self.sequence is not None else ""
        return f"{self.kind} uow {self.uow_id}{at}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The result of a verification run."""

    uows_checked: int
    history_rows_checked: int
    attribute_rows_checked: int
    findings: tuple[Finding, ...]
    elapsed_s: float

    @property
    def ok(self) -> bool:
        """Tell whether nothing was found."""
        return not self.findings

    def rows_per_second(self) -> float:
        """Return history rows verified per second."""
        return self.history_rows_checked / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(slots=True)
class _Tally:
    uows: int = 0
    history: int = 0
    attributes: int = 0
    findings: list[Finding] = field(default_factory=list)

    def add(self, kind: FindingKind, uow_id: str, sequence: int | None, detail: str) -> None:
        self.findings.append(Finding(kind, uow_id, sequence, detail))


def new_tally() -> _Tally:
    """Return an empty tally for ``verify_page`` to fill."""
    return _Tally()


def verify(
    session: Session,
    *,
    instance_id: uuid.UUID | None = None,
    uow_id: uuid.UUID | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> VerificationReport:
    """Verify every UOW (of one instance, or just one UOW) and report all findings.

    ``workers`` > 1 shares a whole-database run with ``workers - 1`` spawned processes.
    The default is this process alone: on the shared 2-core machine it was measured on,
    workers did not beat one process (see ``_verify_parallel``).
    """
    started = time.perf_counter()
    tally = _Tally()
    with translated_errors():
        conn = session.connection()
        scope = None if instance_id is None else str(instance_id)
        reader = VerifyReader(conn.connection.driver_connection, conn.dialect.name, scope)
        shared = None if uow_id is not None else _sharing(conn, scope, workers)
        if shared is not None:
            for uows, history, attributes, findings in _verify_parallel.verify_shared(
                reader, shared[0], shared[1], progress
            ):
                tally.uows += uows
                tally.history += history
                tally.attributes += attributes
                tally.findings.extend(findings)
        else:
            for page in reader.pages(uow_id):
                verify_page(reader, page, tally)
                if progress is not None:
                    progress(len(page))
        if uow_id is None:
            _check_orphans(reader, tally)
    return VerificationReport(
        tally.uows,
        tally.history,
        tally.attributes,
        tuple(tally.findings),
        time.perf_counter() - started,
    )


def _check_orphans(reader: VerifyReader, tally: _Tally) -> None:
    """Report ledger and attribute rows whose UOW row is gone (deleted behind the engine)."""
    for table, what in (("uow_history", "history"), ("uow_attributes", "attribute")):
        for uow_id, rows in reader.orphans(table):
            tally.add(
                FindingKind.ORPHANED,
                uow_id,
                None,
                f"{rows} {what} rows belong to no UOW row (the UOW row was deleted)",
            )


def _sharing(
    conn: Connection, scope: str | None, workers: int | None
) -> tuple[_verify_parallel.Target, int] | None:
    """Return where and how many worker processes to use, or None to verify here alone."""
    if workers is None or workers <= 1:
        return None
    target = _verify_parallel.target_of(conn, scope)
    return None if target is None else (target, workers - 1)


def _json(value: Any) -> Any:
    # SQLite may hand back a JSON number as a number (numeric column affinity).
    return orjson.loads(value) if isinstance(value, str) else value


def _grouped(rows: Iterable[tuple[Any, ...]], column: int) -> dict[str, list[tuple[Any, ...]]]:
    return {k: list(g) for k, g in itertools.groupby(rows, key=itemgetter(column))}


def verify_page(reader: VerifyReader, page: list[tuple[Any, ...]], tally: _Tally) -> None:
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


def _check_attributes(uow: tuple[Any, ...], rows: list[tuple[Any, ...]], tally: _Tally) -> None:
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
            current[key] = _json(latest[3])
    actual = content_hash(current)
    if actual != uow[3]:
        tally.add(
            FindingKind.DRIFT,
            uow[0],
            None,
            f"attributes hash to {actual}, stored content_hash is {uow[3]}",
        )


# Positions in a history row (ledger.STORED_ROW_FIELDS: hashed fields sorted, then the link).
_NEW_INTER, _NEW_HASH, _NEW_STATUS = 5, 6, 7
_PREV_INTER, _PREV_HASH, _PREV_STATUS, _SEQ, _UOW, _CHAIN = 8, 9, 10, 12, 15, 16


def _check_chain(
    uow_id: str, rows: Iterable[tuple[Any, ...]], tally: _Tally
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


def _check_head(uow: tuple[Any, ...], last: tuple[Any, ...] | None, tally: _Tally) -> None:
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
