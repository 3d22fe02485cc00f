"""The ``chameleon`` command: thin transport over the services (Typer + Rich).

Exit status: 0 success, 1 verification found something, 2 bad input or a failure.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow import read_models as queries
from chameleon_workflow.audit.report import VerificationReport
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.demo import run_demo
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import ChameleonError, InvalidValueError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.schema import current_revision, upgrade_database
from chameleon_workflow.workflow.definition import load_workflow

app = typer.Typer(
    help="Chameleon: a workflow engine with an append-only, hash-chained, verifiable history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

EXIT_FINDINGS = 1
EXIT_ERROR = 2

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CHAMELEON_DATABASE_URL",
        help="Database URL (default sqlite:///chameleon.db).",
        show_default=False,
    ),
]


@contextmanager
def _handled() -> Iterator[None]:
    """Turn Chameleon errors into a one-line message and exit status 2, never a traceback."""
    try:
        yield
    except ChameleonError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_ERROR) from None


def _engine(url: str | None) -> Engine:
    engine = make_engine(url)
    upgrade_database(engine)
    return engine


def _factory(url: str | None) -> sessionmaker[Session]:
    return make_session_factory(_engine(url))


def _parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidValueError(f"{what} {value!r} is not a UUID") from None


def _parse_time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidValueError(f"{what} {value!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def init(database_url: UrlOption = None) -> None:
    """Create or upgrade the database schema (idempotent)."""
    with _handled():
        engine = _engine(database_url)
        console.print(
            f"database ready at revision [bold]{current_revision(engine)}[/] "
            f"({engine.url.render_as_string(hide_password=True)})"
        )


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Workflow definition (YAML).")],
    instance: Annotated[str, typer.Option(help="Instance name; created if missing.")] = "default",
    database_url: UrlOption = None,
) -> None:
    """Validate a workflow definition and import it into an instance."""
    with _handled():
        if not file.is_file():
            raise InvalidValueError(f"no such file: {file}")
        definition = load_workflow(file)  # the one place a workflow is read from a file
        engine = WorkflowEngine(_factory(database_url))
        instance_id = engine.ensure_instance(instance)
        workflow_id = engine.import_workflow(instance_id, definition)
        console.print(f"imported {file.name} into instance {instance!r} as workflow {workflow_id}")


@app.command()
def demo(
    uows: Annotated[int, typer.Option(min=1, max=100_000, help="Invoices to drive.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (runs are repeatable).")] = 7,
    database_url: UrlOption = None,
) -> None:
    """Run the invoice-approval demo with simulated actors, then audit and verify it."""
    with _handled():
        factory = _factory(database_url)
        with _progress() as bar:
            task = bar.add_task("driving invoices", total=uows)
            summary = run_demo(
                factory,
                uows=uows,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        console.print(_summary_table(summary))
        _print_report(summary.verification)
        if not summary.verification.ok:
            raise typer.Exit(EXIT_FINDINGS)


@app.command()
def history(
    uow_id: Annotated[str, typer.Argument(help="The UOW's id.")],
    database_url: UrlOption = None,
) -> None:
    """Show a UOW's timeline: statuses, interactions, actor, reasoning, diffs, hashes."""
    with _handled():
        target = _parse_uuid(uow_id, "UOW id")
        with _factory(database_url)() as session:
            entries = queries.uow_timeline(session, target)
        _print_timeline(target, entries)


@app.command()
def verify(
    instance: Annotated[str | None, typer.Option(help="Only this instance id.")] = None,
    database_url: UrlOption = None,
) -> None:
    """Verify hashes, chains, sequences and heads of every UOW; exit 1 on any finding."""
    with _handled():
        instance_id = _parse_uuid(instance, "instance id") if instance else None
        with _factory(database_url)() as session:
            total = queries.count_uows(session, instance_id)
            with _progress() as bar:
                task = bar.add_task("verifying UOWs", total=total)
                report = UOWPersistenceService().verify_database(
                    session, instance_id, progress=lambda n: bar.advance(task, n)
                )
        _print_report(report)
        if not report.ok:
            raise typer.Exit(EXIT_FINDINGS)


@app.command()
def logs(
    uow: Annotated[str | None, typer.Option(help="Only rows about this UOW id.")] = None,
    log_type: Annotated[
        str | None, typer.Option("--type", help="INTERACTION, TELEMETRY, ERROR, ...")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time (UTC if no offset).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time (UTC if no offset).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=queries.MAX_PAGE)] = 50,
    database_url: UrlOption = None,
) -> None:
    """Query the interaction log, newest first."""
    with _handled():
        filters: dict[str, Any] = {
            "uow_id": _parse_uuid(uow, "UOW id") if uow else None,
            "log_type": log_type,
            "since": _parse_time(since, "--since"),
            "until": _parse_time(until, "--until"),
            "limit": limit,
        }
        with _factory(database_url)() as session:
            rows = queries.query_logs(session, **filters)
        table = Table(title=f"{len(rows)} log rows")
        for column in ("time (UTC)", "type", "uow", "details"):
            table.add_column(column, overflow="fold")
        for r in rows:
            details = _compact(r.event_details, r.error_metadata)
            uow_text = str(r.uow_id)[:8] if r.uow_id else "-"
            table.add_row(
                r.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f"), r.log_type, uow_text, details
            )
        console.print(table)


@app.command()
def serve(
    database_url: UrlOption = None,
    host: Annotated[
        str | None,
        typer.Option(
            envvar="CHAMELEON_HOST",
            help="Interface to listen on (default 127.0.0.1).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            envvar="CHAMELEON_PORT",
            help="TCP port (default 8000).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API until SIGTERM or Ctrl-C (migrates the database first).

    The admin token comes from CHAMELEON_ADMIN_TOKEN only, else one is generated and shown.
    """
    # Never an --admin-token option: the command line is visible to every local user.
    from chameleon_workflow.server.run import serve as run_server  # noqa: PLC0415 - pulls in FastAPI and uvicorn
    from chameleon_workflow.server.settings import load_server_settings  # noqa: PLC0415 - see above

    with _handled(), _stopped_by_signals():
        settings = load_server_settings(database_url=database_url, host=host, port=port)
        try:
            run_server(settings=settings)
        except SystemExit as exc:  # uvicorn exits 1 when it cannot start (port in use)
            if exc.code in (0, None):
                return
            errors.print("[bold red]error:[/] the server could not start (see above)")
            raise typer.Exit(EXIT_ERROR) from None


class _StoppedError(Exception):
    """SIGTERM or SIGINT arrived; uvicorn re-raises the signal once it has shut down."""


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGINT into a clean exit 0 after uvicorn's graceful shutdown."""

    def stop(signum: int, _: FrameType | None) -> None:
        raise _StoppedError(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except _StoppedError as exc:
        errors.print(f"chameleon: stopped by {exc}", highlight=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _size(help_text: str, minimum: int = 1) -> Any:
    return typer.Option(min=minimum, help=help_text)


@app.command()
def benchmark(
    postgres: Annotated[
        str | None, typer.Option(help="PostgreSQL server URL; a scratch database is used.")
    ] = None,
    rows: Annotated[int, _size("Rows per flush benchmark.", minimum=100)] = 20_000,
    saves: Annotated[int, _size("save_uow() calls per round.")] = 2_000,
    rounds: Annotated[int, _size("Rounds per figure (the best is shown).")] = 3,
    workers: Annotated[int, _size("Processes of the PostgreSQL multi-worker figure.")] = 4,
    verify_uows: Annotated[int, _size("UOWs in the verification benchmark.")] = 2_000,
    verify_rows: Annotated[int, _size("History rows per verified UOW.")] = 50,
    engine_steps: Annotated[int, _size("Checkout + submit steps per engine figure.")] = 200,
    server_clients: Annotated[int, _size("Concurrent HTTP clients of the server figures.")] = 4,
    server_seconds: Annotated[
        int, _size("Seconds of HTTP load per back end (0 skips the server figures).", minimum=0)
    ] = 10,
) -> None:
    """Measure the hot paths against the raw driver on SQLite (and PostgreSQL if given).

    Same options as python -m chameleon_workflow.benchmarks.runner (docs/performance.md).
    """
    from chameleon_workflow.benchmarks import runner as bench  # noqa: PLC0415 - heavy, only needed here

    sizes = {
        "--rows": rows,
        "--saves": saves,
        "--rounds": rounds,
        "--workers": workers,
        "--verify-uows": verify_uows,
        "--verify-rows": verify_rows,
        "--engine-steps": engine_steps,
        "--server-clients": server_clients,
        "--server-seconds": server_seconds,
    }
    argv = [part for option, value in sizes.items() for part in (option, str(value))]
    with _handled():
        raise typer.Exit(bench.main(argv + (["--postgres", postgres] if postgres else [])))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _print_timeline(uow_id: uuid.UUID, entries: list[queries.TimelineEntry]) -> None:
    """Print a UOW's history as a timeline: one block per row, readable in 80 columns."""
    console.print(f"[bold]UOW {uow_id}[/] — {len(entries)} history rows, oldest first")
    for e in entries:
        when = e.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")
        console.print(f"\n[bold]#{e.sequence}[/]  {when} UTC  [bold]{e.event_type}[/]")
        lines = [
            ("status", _arrow(e.previous_status, e.new_status)),
            ("interaction", _arrow(e.previous_interaction, e.new_interaction)),
            ("actor", e.actor or "-"),
        ]
        if e.reasoning:
            lines.append(("why", e.reasoning))
        lines += _diff_lines(e.changes)
        if e.metadata:
            lines.append(("metadata", _json_text(e.metadata)))
        lines.append(("hashes", f"state {e.new_state_hash[:12]}  chain {e.chain_hash[:12]}"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(min_width=12, no_wrap=True)
        grid.add_column(overflow="fold")
        for label, text in lines:
            grid.add_row(Text(label), Text(text))
        console.print(Padding(grid, (0, 0, 0, 4)))


def _diff_lines(changes: Any) -> list[tuple[str, str]]:
    """Render an attribute diff ({added, removed, changed}) as one line per attribute."""
    if not changes:
        return []
    lines = [(f"+ {k}", _json_text(v)) for k, v in sorted(changes.get("added", {}).items())]
    for key, pair in sorted(changes.get("changed", {}).items()):
        lines.append((f"~ {key}", f"{_json_text(pair['old'])} → {_json_text(pair['new'])}"))
    for key, old in sorted(changes.get("removed", {}).items()):
        lines.append((f"- {key}", f"was {_json_text(old)}"))
    return lines


def _json_text(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 200 else text[:197] + "..."


def _arrow(before: str | None, after: str | None) -> str:
    if before == after:
        return after or "-"
    return f"{before or '∅'} → {after or '∅'}"


def _compact(*documents: Any) -> str:
    parts = [orjson.dumps(d).decode() for d in documents if d]
    text = " ".join(parts)
    return text if len(text) <= 300 else text[:297] + "..."


def _summary_table(summary: Any) -> Table:
    table = Table(title="Demo summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for status, count in sorted(summary.uows_by_status.items()):
        table.add_row(f"UOWs {status}", str(count))
    table.add_row("transitions (history rows)", f"{summary.transitions:,}")
    for log_type, count in sorted(summary.logs_by_type.items()):
        table.add_row(f"log rows {log_type}", f"{count:,}")
    table.add_row("time taken", f"{summary.elapsed_s:.2f} s")
    table.add_row("transitions/s", f"{summary.transitions_per_second:,.0f}")
    return table


def _print_report(report: VerificationReport) -> None:
    line = (
        f"verified {report.uows_checked:,} UOWs, {report.history_rows_checked:,} history rows, "
        f"{report.attribute_rows_checked:,} attribute rows in {report.elapsed_s:.2f} s"
    )
    if report.ok:
        console.print(f"[bold green]verification clean[/]: {line}")
        return
    console.print(f"[bold red]{len(report.findings)} finding(s)[/]: {line}")
    for finding in report.findings:
        console.print(f"  - {finding}", highlight=False)


def main() -> None:
    """Run the command line."""
    app()
