"""Log streams on both back ends: each writer's rows chained, closed, gaps recorded, edits found."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.audit.report import FindingKind, VerificationReport
from chameleon_workflow.audit.verify import verify
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import DatabaseError
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.log_links import LEGACY_STREAM_ID
from chameleon_workflow.models import InteractionLog
from chameleon_workflow.states import LogType
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.writers import write_entries
from chameleon_workflow.testing import append_only_disabled


def _entries(count: int, kind: str = "ERROR") -> Iterator[TelemetryEntry]:
    for n in range(count):
        yield TelemetryEntry(None, uuid.uuid4(), None, None, None, kind, {"n": n})


def _written(factory: sessionmaker[Session], count: int, *, close: bool) -> TelemetryBuffer:
    buffer = TelemetryBuffer(batch_size=4)
    for entry in _entries(count):
        buffer.record(entry)
    with factory() as session:
        if close:
            buffer.close(session)
        else:
            buffer.flush_all(session)
    return buffer


def _report(factory: sessionmaker[Session]) -> VerificationReport:
    with factory() as session:
        return verify(session)


def _kinds(report: VerificationReport) -> list[tuple[str, int | None]]:
    return [(f.kind.value, f.sequence) for f in report.findings]


def _rows(factory: sessionmaker[Session]) -> list[Any]:
    query = select(
        InteractionLog.stream_id, InteractionLog.stream_seq, InteractionLog.log_type
    ).order_by(InteractionLog.stream_id, InteractionLog.stream_seq)
    with factory() as session:
        return [tuple(row) for row in session.execute(query)]


def _raw(engine: Engine, sql: str, **params: Any) -> None:
    with translated_errors(), engine.begin() as conn:
        conn.execute(text(sql), params)


def _id(engine: Engine, value: uuid.UUID) -> Any:
    return str(value) if engine.dialect.name == "sqlite" else value


def _moment(engine: Engine) -> Any:
    now = datetime.now(UTC)
    return format_timestamp(now) if engine.dialect.name == "sqlite" else now


def _stream_of(factory: sessionmaker[Session], buffer: TelemetryBuffer) -> str:
    with factory() as session:
        return str(buffer.streams.for_session(session).stream_id)


def test_a_closed_stream_verifies_clean(session_factory: sessionmaker[Session]) -> None:
    """Open row, ten entries in batches of four, close row: one stream, clean, nothing noted."""
    buffer = _written(session_factory, 10, close=True)
    rows = [row for row in _rows(session_factory) if row[0] != LEGACY_STREAM_ID]
    assert [row[2] for row in rows] == ["STREAM_OPENED", *["ERROR"] * 10, "STREAM_CLOSED"]
    assert [row[1] for row in rows] == list(range(12))
    report = _report(session_factory)
    assert (report.ok, report.streams_checked, report.notices) == (True, 1, ())
    assert report.log_rows_checked == 13  # twelve, and the seal of rows older than streams
    assert buffer.streams.owns(str(rows[0][0])) is False  # forgotten once closed


def test_an_open_stream_is_noted_not_reported(session_factory: sessionmaker[Session]) -> None:
    """A stream without its close row is still writing, or was stopped: a notice, no finding."""
    buffer = _written(session_factory, 3, close=False)
    report = _report(session_factory)
    stream = _stream_of(session_factory, buffer)
    assert report.ok
    (notice,) = report.notices
    assert notice.startswith(f"stream {stream} (writer ")
    assert "no close row after row 3" in notice


def test_the_next_stream_records_a_killed_writers_gap(
    session_factory: sessionmaker[Session],
) -> None:
    """A writer that stopped without closing is named in the next stream's TELEMETRY_LOSS row."""
    first = _written(session_factory, 3, close=False)
    lost = _stream_of(session_factory, first)
    # A new buffer in this process is the writer restarted: the old stream is not its own,
    # and the process that opened it (this one's id, never this buffer) counts as gone.
    _written(session_factory, 2, close=True)
    with session_factory() as session:
        details = session.scalars(
            select(InteractionLog.event_details).where(
                InteractionLog.log_type == LogType.TELEMETRY_LOSS
            )
        ).one()
    assert (details["lost_stream"], details["last_stream_seq"]) == (lost, 3)
    report = _report(session_factory)
    assert (report.ok, report.streams_checked) == (True, 2)
    (notice,) = report.notices
    assert notice.startswith(f"telemetry lost: stream {lost} (writer ")
    # A third start does not record the same gap again.
    _written(session_factory, 1, close=True)
    assert [row[2] for row in _rows(session_factory)].count("TELEMETRY_LOSS") == 1


def test_a_stream_of_another_live_process_is_left_alone(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process of the same writer that still runs is not declared lost."""
    # The open row names pid 1, which always runs.
    monkeypatch.setattr("chameleon_workflow.telemetry.streams.process_id", lambda: 1)
    _written(session_factory, 2, close=False)
    monkeypatch.undo()
    _written(session_factory, 1, close=True)
    assert "TELEMETRY_LOSS" not in [row[2] for row in _rows(session_factory)]


@pytest.mark.parametrize(
    ("attack", "finding_at"),
    [
        ("UPDATE interaction_logs SET event_details = '{\"n\": 99}' WHERE stream_seq = 3", 3),
        ("DELETE FROM interaction_logs WHERE stream_seq = 3", 4),
        (
            "UPDATE interaction_logs SET stream_seq = 5 - stream_seq "
            "WHERE stream_seq IN (2, 3) AND log_type = 'ERROR'",
            2,
        ),
        ("UPDATE interaction_logs SET log_type = 'TELEMETRY' WHERE stream_seq = 5", 5),
    ],
    ids=["edit", "delete", "reorder", "retype"],
)
def test_owner_edits_of_a_stream_are_found(
    session_factory: sessionmaker[Session], engine: Engine, attack: str, finding_at: int
) -> None:
    """An edit, a deletion, a reorder or a retyped row breaks the stream at that row."""
    _written(session_factory, 6, close=True)
    with append_only_disabled(engine):
        _raw(engine, attack)
    report = _report(session_factory)
    assert (FindingKind.LOG_STREAM.value, finding_at) in _kinds(report)


def test_deleting_a_closed_streams_tail_after_the_gap_was_recorded_is_found(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    """Rows removed from a lost stream after its loss was recorded are found (loss said 4)."""
    first = _written(session_factory, 4, close=False)
    lost = _stream_of(session_factory, first)
    _written(session_factory, 1, close=True)
    with append_only_disabled(engine):
        _raw(
            engine,
            "DELETE FROM interaction_logs WHERE stream_seq >= 3 "
            "AND CAST(stream_id AS VARCHAR(36)) = :stream",
            stream=lost,
        )
    findings = [f.detail for f in _report(session_factory).findings]
    assert any(f"stream {lost}: ends at row 2" in detail for detail in findings)


def test_rows_added_without_a_stream_break_the_seal(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    """A row inserted with SQL outside every stream (no bypass needed) is found."""
    _written(session_factory, 2, close=True)
    params = {"id": _id(engine, uuid.uuid4()), "ts": _moment(engine)}
    _raw(
        engine,
        "INSERT INTO interaction_logs (log_id, timestamp, log_type) VALUES (:id, :ts, 'ERROR')",
        **params,
    )
    details = [f.detail for f in _report(session_factory).findings]
    assert details == [
        "1 log rows have no stream; the seal holds 0 with another digest: rows without a "
        "stream were added, changed or removed since"
    ]


def test_a_row_forged_into_a_stream_without_the_key_is_found(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    """Appending to a stream with a made-up link (no key) breaks it at the new row."""
    buffer = _written(session_factory, 2, close=False)
    stream = _stream_of(session_factory, buffer)
    with session_factory() as session:
        key_id = session.scalars(select(InteractionLog.key_id).limit(1)).first()
    params = {
        "id": _id(engine, uuid.uuid4()),
        "ts": _moment(engine),
        "stream": _id(engine, uuid.UUID(stream)),
        "key": key_id,
        "link": "0" * 64,
    }
    _raw(
        engine,
        "INSERT INTO interaction_logs (log_id, timestamp, log_type, stream_id, stream_seq, "
        "key_id, chain_hash) VALUES (:id, :ts, 'ERROR', :stream, 3, :key, :link)",
        **params,
    )
    assert _kinds(_report(session_factory)) == [(FindingKind.LOG_STREAM.value, 3)]


def test_a_flush_that_fails_after_writing_leaves_no_gap_in_its_stream(
    session_factory: sessionmaker[Session],
) -> None:
    """A flush rolled back after its rows were written does not move the stream on."""
    calls: list[int] = []

    def fails_once(session: Session, entries: Any, streams: Any) -> None:
        write_entries(session, entries, streams)
        calls.append(len(entries))
        if len(calls) == 1:
            raise DatabaseError("injected failure after writing")

    buffer = TelemetryBuffer(batch_size=4, writer=fails_once)
    for entry in _entries(3):
        buffer.record(entry)
    with session_factory() as session:
        with pytest.raises(DatabaseError):
            buffer.flush(session)
        buffer.close(session)
    rows = [row for row in _rows(session_factory) if row[0] != LEGACY_STREAM_ID]
    assert [row[1] for row in rows] == list(range(5))  # open, three entries, close
    report = _report(session_factory)
    assert (report.ok, report.notices) == (True, ())


def test_rows_of_every_shape_verify_clean(session_factory: sessionmaker[Session]) -> None:
    """Fast-path and reference-path rows alike verify as written, read back from the table."""
    shared = [uuid.uuid4() for _ in range(5)]
    details: list[Any] = [
        {"guardian": "gate", "step": 1, "ok": True, "none": None},
        {"café": "☕", "\ue000": 1, "\U0001f600": [1.5, {"x": -0.0}]},
        {"amount": 1250.5, "big": 2**60},
        {"nul": "a\x00b"},
        None,
        [1, "two"],
    ]
    buffer = TelemetryBuffer(batch_size=4)
    for n, doc in enumerate(details):
        ids = (*shared[:4], "junk") if n == 3 else shared
        buffer.record(TelemetryEntry(*ids, "ERROR", doc, {"code": n} if n % 2 else None))
    with session_factory() as session:
        buffer.close(session)
    report = _report(session_factory)
    assert (_kinds(report), report.ok, report.streams_checked) == ([], True, 1)
    rows = [row for row in _rows(session_factory) if row[0] != LEGACY_STREAM_ID]
    assert len(rows) == len(details) + 2  # with the open and close rows
