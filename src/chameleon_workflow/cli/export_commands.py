"""``chameleon export``: the ledger's rows for an auditor, streamed, never altering the database."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated

import typer

from chameleon_workflow import exporting, read_models
from chameleon_workflow.cli.common import (
    UrlOption,
    console,
    existing_engine,
    handled,
    parse_time,
    sessions,
    shown,
)
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.exporting import ExportScope


def export(
    what: Annotated[
        list[str] | None,
        typer.Option(
            "--what",
            help="history, attributes, logs or admin (repeatable; default: all four).",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="jsonl (every table in one stream), csv or parquet (one table each).",
        ),
    ] = "jsonl",
    instance: Annotated[
        str | None, typer.Option(help="Only rows of this instance (name or id).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this ISO 8601 time (UTC if no offset).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO 8601 time.")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of standard output.")
    ] = None,
    database_url: UrlOption = None,
) -> None:
    """Export history, attribute versions, log rows and admin events with their hashes."""
    with handled():
        if output_format not in exporting.FORMATS:
            raise InvalidValueError(
                f"unknown format {output_format!r}: choose from {', '.join(exporting.FORMATS)}"
            )
        tables = exporting.tables_of(what or list(exporting.EXPORTABLE))
        if output_format in exporting.ONE_TABLE and len(tables) != 1:
            raise InvalidValueError(f"{output_format} holds one table: name it with --what")
        if output_format == "parquet":
            exporting.parquet_available()
        engine = existing_engine(database_url, read_only=True)
        with sessions(engine) as factory, factory() as session:
            instance_id = read_models.instance_id_of(session, instance) if instance else None
            scope = ExportScope(
                instance_id, parse_time(since, "--since"), parse_time(until, "--until")
            )
            connection = session.connection()
            with _target(output) as out:
                if output_format == "jsonl":
                    for line in exporting.jsonl(connection, tables, scope):
                        out.write(line)
                elif output_format == "parquet":
                    for chunk in exporting.parquet_chunks(connection, tables[0], scope):
                        out.write(chunk)
                else:
                    for text in exporting.csv_lines(connection, tables[0], scope):
                        out.write(text.encode())
        if output is not None:
            console.print(shown(f"exported to {output}"), highlight=False)


@contextmanager
def _target(output: Path | None) -> Iterator[IO[bytes]]:
    """Yield the byte stream to write: the file (written whole or not at all) or stdout."""
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("wb") as out:
            yield out
        partial.replace(output)
    except OSError as exc:
        raise InvalidValueError(f"cannot write {output}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
