"""Run every benchmark in order and print the figures; the command line of the benchmark.

The process benchmarks run once (no database), the database benchmarks once per URL
(telemetry flush, then the ledger's saves, worker scaling and verification), then the
engine's step rate and the server's HTTP figures. ``main`` parses the sizes, runs on a
temporary SQLite file (and a scratch PostgreSQL database when asked) and prints the
figures as a Rich table.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table
from rich.text import Text

from chameleon_workflow.benchmarks.archiving import bench_archive
from chameleon_workflow.benchmarks.checkpoints import bench_checkpoint
from chameleon_workflow.benchmarks.console_pages import bench_console_pages
from chameleon_workflow.benchmarks.engine import engine_figures
from chameleon_workflow.benchmarks.figures import BenchContext, Benchmark, Figure, Sizes
from chameleon_workflow.benchmarks.ledger import bench_save, bench_verify, bench_workers
from chameleon_workflow.benchmarks.server import server_figures
from chameleon_workflow.benchmarks.telemetry import (
    bench_flush,
    bench_memory,
    bench_record_building,
    bench_record_built,
)
from chameleon_workflow.config import scratch_database_name
from chameleon_workflow.db import make_engine, make_session_factory, normalize_url
from chameleon_workflow.schema import upgrade_database

#: Benchmarks that need no database; run once per invocation.
PROCESS_BENCHMARKS: list[Benchmark] = [bench_record_built, bench_record_building, bench_memory]
#: Benchmarks run against every database URL given.
DATABASE_BENCHMARKS: list[Benchmark] = [
    bench_flush,
    bench_save,
    bench_workers,
    bench_verify,
    bench_checkpoint,
    bench_archive,
    bench_console_pages,
]


#: Told the name of each step before it runs, then each figure it measured.
Started = Callable[[str], None]
Measured = Callable[[Figure], None]


def run_benchmarks(
    urls: list[str],
    *,
    rows: int = 20_000,
    sizes: Sizes | None = None,
    process: Sequence[Benchmark] | None = None,
    database: Sequence[Benchmark] | None = None,
    engine_steps: bool = True,
    peers: bool = False,
    started: Started | None = None,
    measured: Measured | None = None,
) -> list[Figure]:
    """Run the process benchmarks once and the database benchmarks on each (migrated) URL.

    ``started`` hears of each step before it runs and ``measured`` of each figure as soon as
    its step ends, so a long run shows its progress. ``peers`` adds the side-by-side
    figures against the peer libraries (the ``peers`` extra, see benchmarks.peers).
    """
    sizes = sizes or Sizes(rows=rows)
    figures: list[Figure] = []

    def step(label: str, measure: Callable[..., list[Figure]], *args: Any, **kw: Any) -> None:
        if started is not None:
            started(label)
        found = measure(*args, **kw)
        figures.extend(found)
        if measured is not None:
            for figure in found:
                measured(figure)

    for bench in PROCESS_BENCHMARKS if process is None else process:
        step(_label(bench, "python"), bench, BenchContext("python", sizes.rows, sizes=sizes))
    benches = DATABASE_BENCHMARKS if database is None else database
    for url in urls:
        engine = make_engine(url)
        try:
            upgrade_database(engine)
            factory = make_session_factory(engine)
            ctx = BenchContext(engine.dialect.name, sizes.rows, engine, factory, url, sizes)
            for bench in benches:
                step(_label(bench, ctx.backend), bench, ctx)
        finally:
            engine.dispose()
    if engine_steps:
        step("engine steps", _engine_figures, urls, sizes)
    if peers:
        from chameleon_workflow.benchmarks.peers import peer_figures  # noqa: PLC0415 - extra

        step("peers side by side", peer_figures, urls, sizes)
    steps = {f.backend: f.value for f in figures if f.name == "engine step, 1 worker"}
    for url in urls if sizes.server_seconds > 0 else ():
        load = sizes.server_clients, sizes.server_seconds
        rate = steps.get("sqlite" if url.startswith("sqlite") else "postgresql")
        label = f"server load ({load[1]} s)"
        step(label, server_figures, url, clients=load[0], seconds=load[1], step_rate=rate)
    return figures


def _label(bench: Benchmark, backend: str) -> str:
    name = getattr(bench, "__name__", "benchmark").removeprefix("bench_").replace("_", " ")
    return f"{name} on {backend}"


def figure_line(f: Figure) -> str:
    """Render one figure as a line of text (printed unwrapped: never cut at the width)."""
    if f.peer:
        return _peer_line(f)
    value = _number(f.value) + ("" if f.worst is None else f" (worst {_number(f.worst)})")
    parts = [f"{f.name} [{f.backend}]: {value} {f.unit}".rstrip()]
    if f.baseline is not None:
        ratio = "" if f.ratio is None else f", {f.ratio:.2f}x"
        parts.append(f"raw {_number(f.baseline)}{ratio}")
    if f.target:
        parts.append(f"target {f.target}: {_met(f)}")
    if f.notes:
        parts.append(f.notes)
    return "; ".join(parts)


def _peer_line(f: Figure) -> str:
    """A side-by-side figure as a line: ours, the peer, ours/peer, notes."""
    ours = _number(f.value) + ("" if f.worst is None else f" (worst {_number(f.worst)})")
    ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
    head = f"{f.name} [{f.backend}]: ours {ours} {f.unit}; peer {f.peer} {_number(f.baseline)}"
    return f"{head}; ours/peer {ratio}" + (f"; {f.notes}" if f.notes else "")


def _engine_figures(urls: list[str], sizes: Sizes) -> list[Figure]:
    """Add the engine's end-to-end figures (they need a SQLite URL; PostgreSQL is optional)."""
    sqlite_url = next((u for u in urls if u.startswith("sqlite")), None)
    postgres_url = next((u for u in urls if not u.startswith("sqlite")), None)
    if sqlite_url is None:
        return [Figure("engine steps", "-", math.nan, "", notes="skipped: needs a SQLite URL")]
    return engine_figures(sqlite_url, postgres_url, steps=sizes.engine_steps, workers=sizes.workers)


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _met(f: Figure) -> str:
    return "-" if f.met is None else "yes" if f.met else "NO"


def render(figures: Sequence[Figure]) -> Table:
    """Lay the figures out as a Rich table (side-by-side figures: see ``render_peers``)."""
    table = Table(title="Chameleon benchmarks (best round; worst round in brackets)")
    columns = ("benchmark", "backend", "value", "unit", "raw baseline", "ratio", "target", "met")
    cells = [_cells(f) for f in figures if not f.peer]
    _fill(table, columns, cells)
    return table


def render_peers(figures: Sequence[Figure]) -> Table:
    """Lay the side-by-side figures out as a Rich table: ours, the peer, ours/peer."""
    table = Table(title="Chameleon and its peers (best round; ours' worst round in brackets)")
    columns = ("comparison", "backend", "ours", "unit", "peer", "peer value", "ours/peer")
    cells = [_peer_cells(f) for f in figures if f.peer]
    _fill(table, columns, cells)
    return table


def _peer_cells(f: Figure) -> tuple[str, ...]:
    ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
    ours = _number(f.value) + ("" if f.worst is None else f" ({_number(f.worst)})")
    return (f.name, f.backend, ours, f.unit, f.peer, _number(f.baseline), ratio, f.notes)


def _fill(table: Table, columns: tuple[str, ...], cells: list[tuple[str, ...]]) -> None:
    """Add the columns (and a last one of notes) and the rows to ``table``."""
    for index, column in enumerate((*columns, "settings / notes")):
        # Figures keep their width; names, targets and notes fold when the table is narrow.
        widest = max((len(row[index]) for row in cells), default=0)
        keep = column in {*RIGHT, "unit", "raw baseline", "met", "peer", "peer value"}
        table.add_column(
            column,
            justify="right" if column in RIGHT else "left",
            min_width=widest if keep else None,
            no_wrap=keep,
            overflow="fold",
            # The notes take what width is left: they fold first, names only when narrow.
            ratio=1 if column == "settings / notes" else None,
        )
    for row in cells:
        table.add_row(*row)


#: Columns aligned to the right (they, and the other numbers, are never folded).
RIGHT = frozenset({"value", "ratio", "ours", "ours/peer"})


def _cells(f: Figure) -> tuple[str, ...]:
    ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
    value = _number(f.value) + ("" if f.worst is None else f" ({_number(f.worst)})")
    row = (f.name, f.backend, value, f.unit, _number(f.baseline), ratio, f.target, _met(f))
    return (*row, f.notes)


def _scratch_postgres(url: str) -> tuple[str, Callable[[], None]]:
    """Create a scratch database on the server of ``url``; return its URL and a dropper."""
    plain = normalize_url(url).replace("postgresql+psycopg://", "postgresql://", 1)
    server, _, _ = plain.rpartition("/")
    name = scratch_database_name("bench")
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


def _parser() -> argparse.ArgumentParser:
    """Return the benchmark's command line: the sizes (``Sizes``), PostgreSQL, the peers."""
    parser = argparse.ArgumentParser(prog="python -m chameleon_workflow.benchmarks")
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
    checkpoint_help = "new rows sealed by the checkpoint figure"
    parser.add_argument(
        "--checkpoint-rows", type=one, default=defaults.checkpoint_rows, help=checkpoint_help
    )
    archive_help = "demo invoices driven, then archived, by the archive figures"
    parser.add_argument(
        "--archive-uows", type=one, default=defaults.archive_uows, help=archive_help
    )
    console_help = "UOWs the console page figures are measured on"
    parser.add_argument(
        "--console-uows", type=one, default=defaults.console_uows, help=console_help
    )
    parser.add_argument("--postgres", metavar="URL", help="server URL; a scratch DB is used")
    peers_help = "also measure the peer libraries side by side (the peers extra)"
    parser.add_argument("--peers", action="store_true", help=peers_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks on a temporary SQLite file (and PostgreSQL if asked); print a table."""
    args = _parser().parse_args(argv)
    if args.peers and (missing := missing_peers()):
        print(f"error: --peers needs {', '.join(missing)}: {PEERS_INSTALL}", file=sys.stderr)
        return 2
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
        args.checkpoint_rows,
        args.archive_uows,
        args.console_uows,
    )
    if "CHAMELEON_LEDGER_KEY" not in os.environ and "CHAMELEON_LEDGER_KEY_FILE" not in os.environ:
        # Scratch databases, a scratch ledger key: found by every process the run starts.
        os.environ["CHAMELEON_LEDGER_KEY"] = secrets.token_hex(32)
    with tempfile.TemporaryDirectory() as tmp:
        urls = [f"sqlite:///{Path(tmp) / 'bench.db'}"]
        drop: Callable[[], None] | None = None
        if args.postgres:
            pg_url, drop = _scratch_postgres(args.postgres)
            urls.append(pg_url)
        console = Console()
        if not console.is_terminal:  # piped into a file: do not fold the table to 80 columns
            console = Console(width=220)

        def started(label: str) -> None:
            console.print(Text(f"measuring {label} ..."), soft_wrap=True, style="dim")

        def measured(figure: Figure) -> None:
            console.print(Text(f"  {figure_line(figure)}"), soft_wrap=True)

        try:
            figures = run_benchmarks(
                urls, sizes=sizes, peers=args.peers, started=started, measured=measured
            )
        finally:
            if drop is not None:
                drop()
    console.print(render(figures))
    if args.peers:
        console.print(render_peers(figures))
    return 0


#: How to install what ``--peers`` needs.
PEERS_INSTALL = "pip install 'chameleon-workflow[peers]'"
#: The peers' import names, each a requirement of the ``peers`` extra (see benchmarks.peers).
PEER_MODULES = ("eventsourcing", "dbos", "procrastinate")


def missing_peers() -> list[str]:
    """The peers' packages that are not installed (looked up without importing them)."""
    return [name for name in PEER_MODULES if importlib.util.find_spec(name) is None]
