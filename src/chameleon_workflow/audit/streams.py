"""Verification of the interaction log: every writer's stream, and the seal of older rows.

Each stream must run 0..n with no gap, open with STREAM_OPENED, link every row to the one
before it under the ledger key, and end with at most one STREAM_CLOSED, after which
nothing follows. A stream that ends without its close row is not tampering: its writer
was killed, or is still running. When a later stream of the same writer recorded the gap
(a TELEMETRY_LOSS row naming it), the loss is reported as a notice, and a stream that is
now shorter than that row says was cut; otherwise the stream is reported as open. Rows
written before streams existed must still count and digest to the seal migration 0006
made of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select

from chameleon_workflow.archive.cuts import Cuts, load_cuts
from chameleon_workflow.audit.report import FindingKind, Tally
from chameleon_workflow.audit.rows import canonical, decoded_json, selection
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.log_links import (
    LEGACY_LOG_FIELDS,
    LEGACY_STREAM_ID,
    LOG_LINK_FIELDS,
    legacy_digest,
    legacy_link,
    log_digest,
    log_link,
)
from chameleon_workflow.models import InteractionLog
from chameleon_workflow.states import LogType

LOGS: Table = InteractionLog.__table__  # type: ignore[assignment]
_PAGE = 5000
_LEGACY = str(LEGACY_STREAM_ID)


@dataclass(slots=True)
class _End:
    """How a stream ended: its last row, whether it closed, and who opened it."""

    last_seq: int
    closed: bool
    opened_by: Mapping[str, Any]


def check_streams(conn: Connection, keys: KeyProvider, tally: Tally) -> None:
    """Check every stream and the legacy seal; count rows and streams, note gaps."""
    ends: dict[str, _End] = {}
    losses: dict[str, tuple[int | None, str]] = {}
    seal: dict[str, Any] | None = None
    cuts = load_cuts(conn)
    walk = _Walk(keys, tally, cuts)
    for values, link in _stream_rows(conn, conn.dialect.name):
        tally.log_rows += 1
        stream = values["stream_id"]
        if stream == _LEGACY:
            seal = _check_seal_row(values, link, tally)
            continue
        walk.row(values, link)
        if values["log_type"] == LogType.TELEMETRY_LOSS:
            details = values["event_details"] or {}
            lost = details.get("lost_stream") if isinstance(details, dict) else None
            if isinstance(lost, str):
                recorded = details.get("last_stream_seq")
                losses[lost] = (
                    recorded if isinstance(recorded, int) else None,
                    values["timestamp"],
                )
    ends.update(walk.finish())
    tally.streams = len(ends)
    _conclude(ends, losses, tally)
    _check_legacy(conn, seal, tally)


class _Walk:
    """Checks rows in (stream, sequence) order, one stream at a time."""

    def __init__(self, keys: KeyProvider, tally: Tally, cuts: Cuts | None = None) -> None:
        self.keys, self.tally = keys, tally
        self.cuts = cuts or Cuts()
        self.ends: dict[str, _End] = {}
        self.stream: str | None = None
        self.expected = 0
        self.previous: str | None = None
        self.closed = False
        self.opened_by: Mapping[str, Any] = {}

    def row(self, values: dict[str, Any], link: str | None) -> None:
        stream, seq, kind = values["stream_id"], values["stream_seq"], values["log_type"]
        if stream != self.stream:
            self._end()
            self.stream, self.expected, self.previous, self.closed = stream, 0, None, False
            self.opened_by = {}
        self._bridge(stream, seq)
        if seq != self.expected:
            missing = "missing" if seq > self.expected else "repeated or out of order"
            self._add(stream, seq, f"expected row {self.expected}: rows {missing}")
        if seq == 0:
            if kind != LogType.STREAM_OPENED:
                self._add(stream, seq, f"the stream starts with {kind}, not STREAM_OPENED")
            details = values["event_details"]
            self.opened_by = details if isinstance(details, dict) else {}
        if self.closed:
            self._add(stream, seq, "a row after the stream's close row")
        self._check_link(values, link)
        if kind == LogType.STREAM_CLOSED:
            self.closed = True
            details = values["event_details"]
            rows = details.get("rows") if isinstance(details, dict) else None
            if rows != seq:
                self._add(stream, seq, f"the close row counts {rows} rows before it, not {seq}")
        self.expected = seq + 1 if isinstance(seq, int) else self.expected + 1
        self.previous = link

    def _bridge(self, stream: str, seq: int | None) -> None:
        """Step over rows an archive took from the stream, from the links its manifest recorded."""
        while isinstance(seq, int) and seq > self.expected:
            run = self.cuts.run_from(stream, self.expected)
            if run is None:
                return
            last, before, after, segment = run
            if before != self.previous:
                self._add(
                    stream,
                    self.expected,
                    f"the link before the rows archived in segment {segment} is not the live "
                    "row's before them",
                )
            self.expected, self.previous = last + 1, after

    def _check_link(self, values: dict[str, Any], link: str | None) -> None:
        key_id = values["key_id"]
        if key_id is None:
            self._add(values["stream_id"], values["stream_seq"], "a stream row without a key")
            return
        try:
            expected = log_link(self.keys, self.previous, values)
        except InvalidValueError:
            expected = ""  # a value no canonical form holds: the ledger never wrote it
        if expected is None:
            self.tally.unknown_keys[key_id] = self.tally.unknown_keys.get(key_id, 0) + 1
        elif expected != link and not self._redacted(values):
            self._add(
                values["stream_id"],
                values["stream_seq"],
                "chain_hash does not match the row's content and the previous link",
            )

    def _redacted(self, values: dict[str, Any]) -> bool:
        """Tell whether a redaction recorded this row exactly as it now is (noted if so)."""
        record = self.tally.redactions.row("interaction_logs", str(values["log_id"]))
        if record is None or record.redacted_link_body != log_digest(values):
            return False
        self.tally.notices.append(
            f"stream {values['stream_id']} row {values['stream_seq']}: a value was redacted "
            f"(admin event #{record.admin_sequence}); its link covers the original row"
        )
        return True

    def _end(self) -> None:
        if self.stream is not None:
            self._bridge(self.stream, 1 << 62)
            self.ends[self.stream] = _End(self.expected - 1, self.closed, self.opened_by)

    def finish(self) -> dict[str, _End]:
        self._end()
        return self.ends

    def _add(self, stream: str, seq: int | None, detail: str) -> None:
        self.tally.add(FindingKind.LOG_STREAM, "", seq, f"stream {stream}: {detail}")


def _conclude(
    ends: dict[str, _End], losses: dict[str, tuple[int | None, str]], tally: Tally
) -> None:
    """Report streams that ended without closing: lost telemetry, or still open."""
    for stream, end in sorted(ends.items()):
        if end.closed:
            continue
        who = _writer(end.opened_by)
        loss = losses.get(stream)
        if loss is None:
            tally.notices.append(
                f"stream {stream} ({who}) has no close row after row {end.last_seq}: its "
                "writer is still running, or stopped and has not started again on that host"
            )
            continue
        recorded, when = loss
        if recorded is not None and end.last_seq < recorded:
            tally.add(
                FindingKind.LOG_STREAM,
                "",
                end.last_seq,
                f"stream {stream}: ends at row {end.last_seq}, but the loss recorded at "
                f"{when} saw it end at row {recorded}: rows were removed since",
            )
        tally.notices.append(
            f"telemetry lost: stream {stream} ({who}) stopped after row {end.last_seq} "
            f"without closing (recorded at {when}); entries it had not written are gone"
        )


def _writer(opened_by: Mapping[str, Any]) -> str:
    return (
        f"writer {opened_by.get('writer')!s}, host {opened_by.get('host')!s}, "
        f"pid {opened_by.get('pid')!s}"
    )


def _check_seal_row(
    values: dict[str, Any], link: str | None, tally: Tally
) -> dict[str, Any] | None:
    details = values["event_details"]
    try:
        linked = legacy_link(values) == link
    except InvalidValueError:
        linked = False
    if (
        values["stream_seq"] != 0
        or values["log_type"] != LogType.STREAM_CLOSED
        or not isinstance(details, dict)
        or not linked
    ):
        tally.add(FindingKind.LOG_STREAM, "", values["stream_seq"], "the legacy seal was altered")
        return None
    return details


def _check_legacy(conn: Connection, seal: Mapping[str, Any] | None, tally: Tally) -> None:
    """Compare the rows without a stream with the seal migration 0006 made of them."""
    dialect = conn.dialect.name
    query = (
        select(*selection(LOGS, LEGACY_LOG_FIELDS, dialect))
        .where(LOGS.c.stream_id.is_(None))
        .order_by(LOGS.c.log_id)
    )
    rows = (_legacy_values(row, dialect) for row in conn.execute(query))
    try:
        count, digest = legacy_digest(rows)
    except InvalidValueError:
        count, digest = -1, ""  # a row no canonical form holds: reported below
    tally.log_rows += count
    if seal is None:
        if count:
            tally.add(
                FindingKind.LOG_STREAM, "", None, f"{count} log rows have no stream and no seal"
            )
        return
    if (count, digest) != (seal.get("legacy_rows"), seal.get("legacy_digest")):
        tally.add(
            FindingKind.LOG_STREAM,
            "",
            None,
            f"{count} log rows have no stream; the seal holds {seal.get('legacy_rows')} with "
            "another digest: rows without a stream were added, changed or removed since",
        )


def _legacy_values(row: Any, dialect: str) -> tuple[Any, ...]:
    values = [canonical(v) for v in row]
    values[-2:] = [decoded_json(v, dialect) for v in values[-2:]]  # the two JSON columns
    return tuple(values)


def _stream_rows(conn: Connection, dialect: str) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Yield each stream row's linked values (canonical text) and its stored link, in order."""
    query = (
        select(*selection(LOGS, LOG_LINK_FIELDS, dialect), LOGS.c.chain_hash)
        .where(LOGS.c.stream_id.is_not(None))
        .order_by(LOGS.c.stream_id, LOGS.c.stream_seq)
    )
    result = conn.execute(query, execution_options={"yield_per": _PAGE})
    for row in result:
        values = {name: canonical(v) for name, v in zip(LOG_LINK_FIELDS, row, strict=False)}
        for name in ("event_details", "error_metadata"):
            values[name] = decoded_json(values[name], dialect)
        yield values, row[-1]
