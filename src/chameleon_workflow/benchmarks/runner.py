"""The project's benchmarks: each measures one operation against the raw driver in the same run.

A benchmark is a function ``(BenchContext) -> list[Figure]``. Process benchmarks run once
(no database); database benchmarks run once per URL; the ledger benchmarks live in
``benchmark_ledger`` and the engine's in ``benchmark_engine`` (when installed). Every
figure names its back end, settings, target and whether the target is met.
"""

from __future__ import annotations

import argparse
import gc
import math
import sqlite3
import tempfile
import time
import tracemalloc
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import set_json_dumps
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.db import make_engine, make_session_factory, normalize_url
from chameleon_workflow.schema import upgrade_database
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.writers import postgres_rows, sqlite_rows

ROUNDS = 3
BATCH = 1000
_COLUMNS = (
    "log_id, instance_id, uow_id, actor_id, role_id, interaction_id, "
    '"timestamp", log_type, event_details, error_metadata'
)


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, with the raw-driver baseline it is judged against when there is one."""

    name: str
    backend: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    notes: str = ""
    target: str = ""
    met: bool | None = None
    worst: float | None = None  # the slowest round, so readers see the spread


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each benchmark does (the defaults finish in about three minutes)."""

    rows: int = 20_000
    saves: int = 2_000
    rounds: int = ROUNDS
    workers: int = 4
    verify_uows: int = 2_000
    verify_rows: int = 50
    engine_steps: int = 200
    server_clients: int = 4
    server_seconds: int = 10


@dataclass(frozen=True, slots=True)
class BenchContext:
    """What a benchmark gets: the back end, its engine, session factory, URL and sizes."""

    backend: str
    rows: int
    engine: Engine | None = None
    session_factory: sessionmaker[Session] | None = None
    url: str | None = None
    sizes: Sizes = Sizes()


Benchmark = Callable[[BenchContext], list[Figure]]


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
        _figure("record() built entry", ctx, value, "entries/s", baseline, notes, ">= 2 M/s", met)
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
    return [_figure("build + record()", ctx, value, "entries/s", None, notes, ">= 300 K/s", met)]


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
    return [_figure("memory per 10K buffered", ctx, mb, "MB", None, notes, "<= 5 MB", mb <= 5)]


def _raw_sqlite(raw: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    insert = f"INSERT INTO interaction_logs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    for start in range(0, len(rows), BATCH):
        raw.execute("BEGIN")
        raw.executemany(insert, rows[start : start + BATCH])
        raw.execute("COMMIT")


def _raw_postgres(raw: psycopg.Connection[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    types = ["uuid"] * 6 + ["timestamptz", "text", "jsonb", "jsonb"]
    copy_sql = f"COPY interaction_logs ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
    for start in range(0, len(rows), BATCH):
        with raw.cursor() as cursor:
            set_json_dumps(lambda data: data, context=cursor)
            with cursor.copy(copy_sql) as copy:
                copy.set_types(types)
                for row in rows[start : start + BATCH]:
                    copy.write_row(row)
        raw.commit()


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
        rows = sqlite_rows(entries) if sqlite else postgres_rows(entries)  # fresh log ids
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
        _figure("flush() vs raw driver", ctx, value, "rows/s", baseline, notes, ">= 0.7x raw", met)
    ]


@dataclass(frozen=True, slots=True)
class Rates:
    """Best and worst rate over the rounds of one measurement."""

    best: float
    worst: float

    @classmethod
    def of(cls, count: int, seconds: Sequence[float]) -> Rates:
        """Turn per-round durations of ``count`` operations into rates."""
        return cls(count / min(seconds), count / max(seconds))


def figure(
    name: str,
    ctx: BenchContext,
    value: float | Rates,
    unit: str,
    baseline: float | Rates | None,
    notes: str,
    target: str = "",
    met: bool | None = None,
) -> Figure:
    """Build a figure; rates carry their best (value) and worst round."""
    best, worst = (value, None) if isinstance(value, float | int) else (value.best, value.worst)
    base = baseline if baseline is None or isinstance(baseline, float | int) else baseline.best
    ratio = best / base if base else None
    return Figure(name, ctx.backend, best, unit, base, ratio, notes, target, met, worst)


_figure = figure


#: Benchmarks that need no database; run once per invocation.
PROCESS_BENCHMARKS: list[Benchmark] = [bench_record_built, bench_record_building, bench_memory]
#: Benchmarks run against every database URL given.
DATABASE_BENCHMARKS: list[Benchmark] = [bench_flush]


def ledger_benchmarks() -> list[Benchmark]:
    """Return save_uow, worker-scaling and verification benchmarks (imported on demand)."""
    from chameleon_workflow.benchmarks import ledger  # noqa: PLC0415 - it imports this module

    return [ledger.bench_save, ledger.bench_workers, ledger.bench_verify]


def run_benchmarks(
    urls: list[str],
    *,
    rows: int = 20_000,
    sizes: Sizes | None = None,
    process: Sequence[Benchmark] | None = None,
    database: Sequence[Benchmark] | None = None,
    engine_steps: bool = True,
) -> list[Figure]:
    """Run the process benchmarks once and the database benchmarks on each (migrated) URL."""
    sizes = sizes or Sizes(rows=rows)
    figures: list[Figure] = []
    for bench in PROCESS_BENCHMARKS if process is None else process:
        figures.extend(bench(BenchContext("python", sizes.rows, sizes=sizes)))
    benches = [*DATABASE_BENCHMARKS, *ledger_benchmarks()] if database is None else database
    for url in urls:
        engine = make_engine(url)
        try:
            upgrade_database(engine)
            factory = make_session_factory(engine)
            ctx = BenchContext(engine.dialect.name, sizes.rows, engine, factory, url, sizes)
            for bench in benches:
                figures.extend(bench(ctx))
        finally:
            engine.dispose()
    if engine_steps:
        figures.extend(_engine_figures(urls, sizes))
    if sizes.server_seconds > 0:
        from chameleon_workflow.benchmarks.server import server_figures  # noqa: PLC0415 - it imports this module

        for url in urls:
            figures.extend(
                server_figures(url, clients=sizes.server_clients, seconds=sizes.server_seconds)
            )
    return figures


def _engine_figures(urls: list[str], sizes: Sizes) -> list[Figure]:
    """Add the engine's end-to-end figures (they need a SQLite URL; PostgreSQL is optional)."""
    from chameleon_workflow.benchmarks import engine as benchmark_engine  # noqa: PLC0415 - it imports this module

    sqlite_url = next((u for u in urls if u.startswith("sqlite")), None)
    postgres_url = next((u for u in urls if not u.startswith("sqlite")), None)
    if sqlite_url is None:
        return [Figure("engine steps", "-", math.nan, "", notes="skipped: needs a SQLite URL")]
    return benchmark_engine.engine_figures(
        sqlite_url, postgres_url, steps=sizes.engine_steps, workers=sizes.workers
    )


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _met(f: Figure) -> str:
    return "-" if f.met is None else "yes" if f.met else "NO"


def render(figures: Sequence[Figure]) -> Table:
    """Lay the figures out as a Rich table."""
    table = Table(title="Chameleon benchmarks (best round; worst round in brackets)")
    columns = ("benchmark", "backend", "value", "unit", "raw baseline", "ratio", "target", "met")
    for column in (*columns, "settings / notes"):
        table.add_column(column, justify="right" if column in {"value", "ratio"} else "left")
    for f in figures:
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
        value = _number(f.value) + ("" if f.worst is None else f" ({_number(f.worst)})")
        row = (f.name, f.backend, value, f.unit, _number(f.baseline), ratio, f.target, _met(f))
        table.add_row(*row, f.notes)
    return table


def _scratch_postgres(url: str) -> tuple[str, Callable[[], None]]:
    """Create a scratch database on the server of ``url``; return its URL and a dropper."""
    plain = normalize_url(url).replace("postgresql+psycopg://", "postgresql://", 1)
    server, _, _ = plain.rpartition("/")
    name = f"chameleon_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{server}/{name}", drop


def _at_least(minimum: int) -> Callable[[str], int]:
    """Return an argparse type accepting integers of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum of {minimum}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks on a temporary SQLite file (and PostgreSQL if asked); print a table."""
    parser = argparse.ArgumentParser(prog="python -m chameleon_workflow.benchmarks.runner")
    defaults = Sizes()
    one = _at_least(1)
    rows_help = "rows per flush benchmark"
    parser.add_argument("--rows", type=_at_least(100), default=defaults.rows, help=rows_help)
    parser.add_argument("--saves", type=one, default=defaults.saves, help="saves per round")
    parser.add_argument("--rounds", type=one, default=defaults.rounds, help="rounds per figure")
    parser.add_argument("--workers", type=one, default=defaults.workers, help="PG processes")
    parser.add_argument("--verify-uows", type=one, default=defaults.verify_uows)
    parser.add_argument("--verify-rows", type=one, default=defaults.verify_rows)
    parser.add_argument("--engine-steps", type=one, default=defaults.engine_steps)
    parser.add_argument("--server-clients", type=one, default=defaults.server_clients)
    server_help = "seconds of HTTP load per back end (0 skips the server figures)"
    parser.add_argument(
        "--server-seconds", type=_at_least(0), default=defaults.server_seconds, help=server_help
    )
    parser.add_argument("--postgres", metavar="URL", help="server URL; a scratch DB is used")
    args = parser.parse_args(argv)
    sizes = Sizes(
        args.rows,
        args.saves,
        args.rounds,
        args.workers,
        args.verify_uows,
        args.verify_rows,
        args.engine_steps,
        args.server_clients,
        args.server_seconds,
    )
    with tempfile.TemporaryDirectory() as tmp:
        urls = [f"sqlite:///{Path(tmp) / 'bench.db'}"]
        drop: Callable[[], None] | None = None
        if args.postgres:
            pg_url, drop = _scratch_postgres(args.postgres)
            urls.append(pg_url)
        try:
            figures = run_benchmarks(urls, sizes=sizes)
        finally:
            if drop is not None:
                drop()
    console = Console()
    if not console.is_terminal:  # piped into a file: do not fold the table to 80 columns
        console = Console(width=220)
    console.print(render(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
