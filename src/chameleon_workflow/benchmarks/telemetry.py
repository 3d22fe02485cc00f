"""Telemetry benchmarks: record() in process, the memory of a full buffer, flush() to disk.

``record()`` is measured against a bare ``deque.append``, building an entry plus
``record()`` on its own, the memory of 10,000 buffered guard decisions with tracemalloc,
and ``flush_all()`` against the raw driver inserting the same rows (``executemany`` on
SQLite, binary COPY on PostgreSQL), ours and raw alternating round by round.
"""

from __future__ import annotations

import gc
import sqlite3
import time
import tracemalloc
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import set_json_dumps

from chameleon_workflow.benchmarks.figures import ROUNDS, BenchContext, Figure, figure
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.streams import Stream
from chameleon_workflow.telemetry.writers import PG_COPY, PG_TYPES, SQLITE_INSERT, link_rows

BATCH = 1000


def _best_rate(count: int, run: Callable[[], None], rounds: int = ROUNDS) -> float:
    """Return the best operations per second over ``rounds`` runs of ``count`` operations."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def _ids() -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(5)]


def _entries(count: int) -> list[TelemetryEntry]:
    """Build entries shaped like real guard decisions: shared ids, small details."""
    inst, uow, actor, role, inter = _ids()
    details = {"guardian": "gate", "condition": "amount > 100", "decision": "ROUTE"}
    return [
        TelemetryEntry(inst, uow, actor, role, inter, "GUARDIAN_DECISION", {**details, "step": i})
        for i in range(count)
    ]


def bench_record_built(ctx: BenchContext) -> list[Figure]:
    """Measure record() with an entry already built, against a bare deque.append."""
    count = max(ctx.rows, 1_000_000)
    entry = _entries(1)[0]

    def ours() -> None:
        record = TelemetryBuffer(max_queue_size=count).record
        for _ in range(count):
            record(entry)

    def bare() -> None:
        append = deque[TelemetryEntry]().append
        for _ in range(count):
            append(entry)

    value, baseline = _best_rate(count, ours), _best_rate(count, bare)
    notes = f"{count:,} calls, best of {ROUNDS}; baseline bare deque.append"
    met = value >= 2_000_000
    return [
        figure("record() built entry", ctx, value, "entries/s", baseline, notes, ">= 2 M/s", met)
    ]


def bench_record_building(ctx: BenchContext) -> list[Figure]:
    """Measure building an entry from ids the caller has, plus record()."""
    count = max(ctx.rows, 300_000)
    inst, uow, actor, role, inter = _ids()

    def ours() -> None:
        record = TelemetryBuffer(max_queue_size=count).record
        for i in range(count):
            record(TelemetryEntry(inst, uow, actor, role, inter, "ERROR", {"step": i}))

    value = _best_rate(count, ours)
    notes = f"{count:,} entries with a one-key dict, best of {ROUNDS}"
    met = value >= 300_000
    return [figure("build + record()", ctx, value, "entries/s", None, notes, ">= 300 K/s", met)]


def bench_memory(ctx: BenchContext) -> list[Figure]:
    """Measure memory held by 10,000 buffered guard-decision entries (tracemalloc)."""
    buffer = TelemetryBuffer(max_queue_size=10_000)
    inst, uow, actor, role, inter = _ids()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(10_000):
        details = {"guardian": "gate", "condition": "amount > 100", "step": i}
        buffer.record(TelemetryEntry(inst, uow, actor, role, inter, "GUARDIAN_DECISION", details))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    notes = "entries + timestamps + 3-key details (tracemalloc)"
    mb = used / 1e6
    return [figure("memory per 10K buffered", ctx, mb, "MB", None, notes, "<= 5 MB", mb <= 5)]


def _raw_sqlite(raw: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    for start in range(0, len(rows), BATCH):
        raw.execute("BEGIN")
        raw.executemany(SQLITE_INSERT, rows[start : start + BATCH])
        raw.execute("COMMIT")


def _raw_postgres(raw: psycopg.Connection[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    for start in range(0, len(rows), BATCH):
        with raw.cursor() as cursor:
            set_json_dumps(lambda data: data, context=cursor)
            with cursor.copy(PG_COPY) as copy:
                copy.set_types(PG_TYPES)
                for row in rows[start : start + BATCH]:
                    copy.write_row(row)
        raw.commit()


_UUID_COLUMNS = frozenset(i for i, name in enumerate(PG_TYPES) if name == "uuid")


_JSONB_COLUMNS = frozenset(i for i, name in enumerate(PG_TYPES) if name == "jsonb")


def _natural_value(column: int, value: Any) -> Any:
    if value is None:
        return None
    if column in _UUID_COLUMNS:
        return uuid.UUID(bytes=value)
    return value[1:] if column in _JSONB_COLUMNS else value


def _natural(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Return a COPY row as a program using psycopg directly holds it.

    ``link_rows`` gives UUIDs as their 16 bytes and JSON in jsonb's binary form; the raw
    baseline has ``uuid.UUID`` objects (psycopg's dumpers convert them) and JSON text.
    """
    return tuple(_natural_value(column, value) for column, value in enumerate(row))


def bench_flush(ctx: BenchContext) -> list[Figure]:
    """Measure flush_all() rows/s against the raw driver inserting the same rows."""
    assert ctx.engine is not None
    assert ctx.session_factory is not None
    engine, factory, count = ctx.engine, ctx.session_factory, ctx.rows
    sqlite = engine.dialect.name == "sqlite"
    entries = _entries(count)
    ours_times: list[float] = []
    raw_times: list[float] = []
    for _ in range(ROUNDS):  # alternate, so both see the same table growth
        buffer = TelemetryBuffer(batch_size=BATCH, max_queue_size=count)
        for entry in entries:
            buffer.record(entry)
        with factory() as session:
            started = time.perf_counter()
            buffer.flush_all(session)
            ours_times.append(time.perf_counter() - started)
        # The same rows, linked in a stream of their own (fresh log ids), ready for the driver.
        stream = Stream(uuid.uuid4(), buffer.streams.for_session(session).keys)
        rows = link_rows(entries, stream, 0, None, engine.dialect.name).rows
        if not sqlite:
            rows = [_natural(row) for row in rows]
        connection = engine.raw_connection()
        try:
            started = time.perf_counter()
            if sqlite:
                _raw_sqlite(connection.driver_connection, rows)  # type: ignore[arg-type]
            else:
                _raw_postgres(connection.driver_connection, rows)  # type: ignore[arg-type]
            raw_times.append(time.perf_counter() - started)
        finally:
            connection.close()
    value, baseline = count / min(ours_times), count / min(raw_times)
    raw_name = "sqlite3.executemany" if sqlite else "psycopg binary COPY"
    notes = f"{count:,} rows, batch {BATCH}, best of {ROUNDS}; baseline raw {raw_name}"
    met = value >= 0.7 * baseline
    return [
        figure("flush() vs raw driver", ctx, value, "rows/s", baseline, notes, ">= 0.7x raw", met)
    ]
