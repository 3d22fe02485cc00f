"""How the CLI shows results: progress bars, the history timeline, tables and reports."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from chameleon_workflow.audit.report import VerificationReport
from chameleon_workflow.cli.common import console, shown
from chameleon_workflow.read_models import TimelineEntry


def progress_bar() -> Progress:
    """Return the progress bar long commands show."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def print_timeline(uow_id: uuid.UUID, entries: list[TimelineEntry]) -> None:
    """Print a UOW's history as a timeline: one block per row, readable in 80 columns."""
    console.print(f"[bold]UOW {uow_id}[/] — {len(entries)} history rows, oldest first")
    for e in entries:
        when = e.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")
        event = shown(e.event_type)
        event.stylize("bold")
        console.print(Text.assemble((f"\n#{e.sequence}", "bold"), f"  {when} UTC  ", event))
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
            grid.add_row(shown(label), shown(text))
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


def compact(*documents: Any) -> str:
    """Render JSON documents on one line, cut at 300 characters."""
    parts = [orjson.dumps(d).decode() for d in documents if d]
    text = " ".join(parts)
    return text if len(text) <= 300 else text[:297] + "..."


def summary_table(summary: Any) -> Table:
    """Return the demo's summary as a table."""
    table = Table(title="Demo summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for status, count in sorted(summary.uows_by_status.items()):
        table.add_row(shown(f"UOWs {status}"), str(count))
    table.add_row("transitions (history rows)", f"{summary.transitions:,}")
    for log_type, count in sorted(summary.logs_by_type.items()):
        table.add_row(shown(f"log rows {log_type}"), f"{count:,}")
    table.add_row("time taken", f"{summary.elapsed_s:.2f} s")
    table.add_row("transitions/s", f"{summary.transitions_per_second:,.0f}")
    return table


def print_report(report: VerificationReport) -> None:
    """Print a verification report: one line when clean, else every finding."""
    line = (
        f"verified {report.uows_checked:,} UOWs, {report.history_rows_checked:,} history rows, "
        f"{report.attribute_rows_checked:,} attribute rows"
    )
    if report.streams_checked or report.log_rows_checked:
        line += (
            f", {report.log_rows_checked:,} log rows in {report.streams_checked:,} streams, "
            f"{report.admin_events_checked:,} admin events, "
            f"{report.definitions_checked:,} workflow definitions"
        )
    line += f" in {report.elapsed_s:.2f} s"
    if report.ok:
        console.print(f"[bold green]verification clean[/]: {line}")
    else:
        console.print(f"[bold red]{len(report.findings)} finding(s)[/]: {line}")
        for finding in report.findings:
            console.print(Text("  - ") + shown(finding), highlight=False)
    for notice in report.notices:
        console.print(Text("  note: ") + shown(notice), highlight=False)
