"""Verification of the ledger: one UOW or a whole database, every finding named.

For each UOW it checks that the attributes hash to the stored ``content_hash``, that
attribute versions run 1..n per key, that history sequences run 1..n without gaps,
that every row's ``chain_hash`` is the link computed from the row before it, that each
row starts where the previous one ended (status, interaction, state hash), and that the
UOW row agrees with its last history row. Rows are streamed page by page straight from
the driver, so memory stays flat and the pace is set by hashing, not by the ORM.
"""

from __future__ import annotations

import enum
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from .db import translated_errors
from .hashing import GENESIS_HASH, content_hash
from .ledger import chain_link

PAGE_SIZE = 2000


class FindingKind(enum.StrEnum):
    """Kinds of problems verification reports."""

    DRIFT = "DRIFT"
    ATTRIBUTE_VERSION_GAP = "ATTRIBUTE_VERSION_GAP"
    SEQUENCE_GAP = "SEQUENCE_GAP"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    DISCONTINUITY = "DISCONTINUITY"
    HEAD_MISMATCH = "HEAD_MISMATCH"
    NO_HISTORY = "NO_HISTORY"


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


# ---------------------------------------------------------------- SQL per back end

_SQLITE = {
    "uows": (
        "SELECT uow_id, status, current_interaction_id, content_hash, chain_head, "
        "history_sequence FROM units_of_work WHERE uow_id > ? {scope} ORDER BY uow_id LIMIT ?"
    ),
    "history": (
        "SELECT history_id, instance_id, uow_id, sequence, event_type, previous_status, "
        "new_status, previous_state_hash, new_state_hash, previous_interaction_id, "
        "new_interaction_id, actor_id, transition_timestamp, reasoning, transition_metadata, "
        "changes, chain_hash FROM uow_history WHERE uow_id >= ? AND uow_id <= ? {scope} "
        "ORDER BY uow_id, sequence"
    ),
    "attributes": (
        "SELECT uow_id, key, version, value, is_deleted FROM uow_attributes "
        "WHERE uow_id >= ? AND uow_id <= ? {scope} ORDER BY uow_id, key, version"
    ),
    "scope": "AND instance_id = ?",
    "start": "",
}
_PG_TS = "to_char(transition_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_POSTGRES = {
    "uows": (
        "SELECT uow_id::text, status, current_interaction_id::text, content_hash, chain_head, "
        "history_sequence FROM units_of_work WHERE uow_id > %s::uuid {scope} "
        "ORDER BY uow_id LIMIT %s"
    ),
    "history": (
        "SELECT history_id::text, instance_id::text, uow_id::text, sequence, event_type, "
        "previous_status, new_status, previous_state_hash, new_state_hash, "
        "previous_interaction_id::text, new_interaction_id::text, actor_id::text, "
        f"{_PG_TS}, reasoning, transition_metadata::text, changes::text, chain_hash "
        "FROM uow_history WHERE uow_id >= %s::uuid AND uow_id <= %s::uuid {scope} "
        "ORDER BY uow_id, sequence"
    ),
    "attributes": (
        "SELECT uow_id::text, key, version, value::text, is_deleted FROM uow_attributes "
        "WHERE uow_id >= %s::uuid AND uow_id <= %s::uuid {scope} ORDER BY uow_id, key, version"
    ),
    "scope": "AND instance_id = %s::uuid",
    "start": "00000000-0000-0000-0000-000000000000",
}


def _json(value: Any) -> Any:
    # SQLite may hand back a JSON number as a number (numeric column affinity).
    return orjson.loads(value) if isinstance(value, str) else value


class _Reader:
    """Pages of UOWs with their history and attribute rows, read from the raw driver."""

    def __init__(self, conn: Connection, instance_id: uuid.UUID | None) -> None:
        sql = _SQLITE if conn.dialect.name == "sqlite" else _POSTGRES
        scope = sql["scope"] if instance_id is not None else ""
        self.raw = conn.connection.driver_connection
        self.start = sql["start"]
        self.uows_sql = sql["uows"].format(scope=scope)
        self.history_sql = sql["history"].format(scope=scope)
        self.attributes_sql = sql["attributes"].format(scope=scope)
        self.scope: tuple[str, ...] = () if instance_id is None else (str(instance_id),)

    def _all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return list(self.raw.execute(sql, params).fetchall())  # type: ignore[union-attr]

    def pages(self, only: uuid.UUID | None) -> Iterator[list[tuple[Any, ...]]]:
        """Yield UOW rows a page at a time (or just the one asked for)."""
        after = self.start
        while True:
            uows = self._all(self.uows_sql, (after, *self.scope, PAGE_SIZE))
            if only is not None:
                uows = [u for u in uows if u[0] == str(only)]
            if uows:
                yield uows
            if only is not None or len(uows) < PAGE_SIZE:
                return
            after = uows[-1][0]

    def rows(self, kind: str, first: str, last: str) -> list[tuple[Any, ...]]:
        """Return history or attribute rows of the UOWs between two ids, ordered."""
        sql = self.history_sql if kind == "history" else self.attributes_sql
        return self._all(sql, (first, last, *self.scope))


def verify(
    session: Session,
    *,
    instance_id: uuid.UUID | None = None,
    uow_id: uuid.UUID | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Verify every UOW (of one instance, or just one UOW) and report all findings."""
    started = time.perf_counter()
    tally = _Tally()
    with translated_errors():
        reader = _Reader(session.connection(), instance_id)
        if uow_id is not None:
            reader.uows_sql = reader.uows_sql.replace("uow_id >", "uow_id >=")
            reader.start = str(uow_id)
        for page in reader.pages(uow_id):
            _verify_page(reader, page, tally)
            if progress is not None:
                progress(len(page))
    return VerificationReport(
        tally.uows,
        tally.history,
        tally.attributes,
        tuple(tally.findings),
        time.perf_counter() - started,
    )


def _grouped(rows: Iterable[tuple[Any, ...]], column: int) -> dict[str, list[tuple[Any, ...]]]:
    return {k: list(g) for k, g in itertools.groupby(rows, key=itemgetter(column))}


def _verify_page(reader: _Reader, page: list[tuple[Any, ...]], tally: _Tally) -> None:
    first, last = page[0][0], page[-1][0]
    history = _grouped(reader.rows("history", first, last), _UOW)
    attributes = _grouped(reader.rows("attributes", first, last), 0)
    for uow in page:
        tally.uows += 1
        rows = history.get(uow[0], [])
        tally.history += len(rows)
        attrs = attributes.get(uow[0], [])
        tally.attributes += len(attrs)
        _check_attributes(uow, attrs, tally)
        last_row = _check_chain(uow[0], rows, tally)
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


# Positions in a history row: LedgerRecord's fields in order, then the stored chain hash.
_UOW, _SEQ, _PREV_STATUS, _NEW_STATUS, _PREV_HASH, _NEW_HASH = 2, 3, 5, 6, 7, 8
_PREV_INTER, _NEW_INTER, _META, _CHANGES, _CHAIN = 9, 10, 14, 15, 16


def _link(previous: str, row: tuple[Any, ...]) -> str:
    """Recompute a stored row's chain hash (JSON columns decoded first)."""
    meta, changes = row[_META], row[_CHANGES]
    values = (
        *row[:_META],
        None if meta is None else _json(meta),
        None if changes is None else _json(changes),
    )
    return chain_link(previous, values)


def _check_chain(uow_id: str, rows: list[tuple[Any, ...]], tally: _Tally) -> tuple[Any, ...] | None:
    previous_link = GENESIS_HASH
    previous: tuple[Any, ...] | None = None
    expected = 1
    for row in rows:
        sequence = row[_SEQ]
        if sequence != expected:
            tally.add(FindingKind.SEQUENCE_GAP, uow_id, sequence, f"expected sequence {expected}")
        if _link(previous_link, row) != row[_CHAIN]:
            tally.add(
                FindingKind.CHAIN_BROKEN,
                uow_id,
                sequence,
                "chain_hash does not match the row's content and the previous link",
            )
        if previous is not None and (row[5], row[7], row[9]) != (
            previous[6],
            previous[8],
            previous[10],
        ):
            tally.add(
                FindingKind.DISCONTINUITY,
                uow_id,
                sequence,
                f"starts at ({row[5]}, {row[7]}, {row[9]}) but the row before ended at "
                f"({previous[6]}, {previous[8]}, {previous[10]})",
            )
        previous_link, previous, expected = row[16], row, sequence + 1
    return previous


def _check_head(uow: tuple[Any, ...], last: tuple[Any, ...] | None, tally: _Tally) -> None:
    uow_id, status, interaction, state_hash, head, sequence = uow
    if last is None:
        tally.add(FindingKind.NO_HISTORY, uow_id, None, "UOW has no history rows")
        return
    expected = {
        "status": (status, last[6]),
        "current_interaction_id": (interaction, last[10]),
        "content_hash": (state_hash, last[8]),
        "chain_head": (head, last[16]),
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
