"""The read-only commands: ``history``, ``verify`` and ``logs``.

They open the database read-only and never create or migrate it (``verify`` needs the
ledger key: exit 2 without one). Each takes ``--json`` for one JSON document instead of
text (docs/cli.md gives the shapes).
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from chameleon_workflow import read_models
from chameleon_workflow.archive.history import archived_history
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.archive.verify import ArchiveCheck, check_archive
from chameleon_workflow.audit.report import Finding, FindingKind, VerificationReport
from chameleon_workflow.cli import ledger_commands
from chameleon_workflow.cli.common import (
    EXIT_FINDINGS,
    JsonOption,
    UrlOption,
    console,
    existing_engine,
    handled,
    json_ready,
    parse_time,
    print_json,
    reading,
    sessions,
)
from chameleon_workflow.cli.render import print_log, print_report, print_timeline, progress_bar
from chameleon_workflow.errors import NotFoundError
from chameleon_workflow.hashing import parse_timestamp
from chameleon_workflow.ledger.service import UOWPersistenceService


def history(
    uow_id: Annotated[str, typer.Argument(help="The UOW's id, or a unique prefix of it.")],
    archive: Annotated[
        Path | None,
        typer.Option("--archive", help="Archive directory: also look in archived segments."),
    ] = None,
    as_json: JsonOption = False,
    database_url: UrlOption = None,
) -> None:
    """Show a UOW's timeline: statuses, interactions, actor, reasoning, diffs, hashes."""
    with handled(), reading(database_url) as session:
        try:
            target: Any = read_models.uow_id_of(session, uow_id)
            entries = read_models.uow_timeline(session, target)
        except NotFoundError:
            if archive is None:
                raise
            store = DirectoryStore.for_reading(archive)
            found = archived_history(session.connection(), store, uow_id)
            target, entries = found.uow_id, [_entry(row) for row in found.rows]
            if not as_json:
                console.print(Text(f"archived in segment {found.segment_id}"))
    if as_json:
        print_json({"uow_id": target, "entries": entries})
        return
    print_timeline(target, entries)


def verify(
    instance: Annotated[str | None, typer.Option(help="Only this instance (name or id).")] = None,
    checkpoint: ledger_commands.CheckpointOption = None,
    public_key: ledger_commands.PublicKeyOption = None,
    archive: Annotated[
        Path | None,
        typer.Option(
            "--archive",
            help="Archive directory: verify its segments and the live ledger as one chain.",
        ),
    ] = None,
    as_json: JsonOption = False,
    database_url: UrlOption = None,
) -> None:
    """Verify hashes, keyed chains, attribute digests and heads of every UOW; exit 1 on findings.

    With --archive, also verify every archived segment the database relies on: manifest
    signature, file digest, row counts, Merkle root, each row against the leaf sealed at
    its position, and the log-stream links across each cut.

    With --checkpoint, also verify every row the checkpoint covers, its signature, and that
    the database's newest checkpoint extends it. Never writes: a missing database, a
    foreign one or one at another schema revision is an error (exit 2), as are an unknown
    instance and a missing ledger key.
    """
    with handled():
        anchor = (
            ledger_commands.load_anchor(checkpoint, public_key, database_url)
            if checkpoint is not None
            else None
        )
        store = None if archive is None else DirectoryStore.for_reading(archive)
        public = None if store is None else ledger_commands.public_key_of(public_key, database_url)
        checked = None
        with (
            sessions(existing_engine(database_url, read_only=True)) as factory,
            factory() as session,
        ):
            service = UOWPersistenceService()
            keys = service.ledger_keys(factory.kw["bind"])  # no key: say so before any progress
            instance_id = read_models.instance_id_of(session, instance) if instance else None
            if as_json:
                report = service.verify_database(session, instance_id)
            else:
                total = read_models.count_uows(session, instance_id)
                with progress_bar() as bar:
                    task = bar.add_task("verifying UOWs", total=total)
                    report = service.verify_database(
                        session, instance_id, progress=lambda n: bar.advance(task, n)
                    )
            if store is not None and public is not None:
                checked = check_archive(session.connection(), store, public, keys)
                report = _with_archive(report, checked)
        anchored = None if anchor is None else ledger_commands.check_anchor(database_url, anchor)
        if as_json:
            document: dict[str, Any] = {"ok": report.ok and (anchored is None or anchored.ok)}
            document.update(json_ready(report), checkpoint=json_ready(anchored))
            document["archive"] = json_ready(checked)
            print_json(document)
        else:
            print_report(report)
            if checked is not None:
                console.print(
                    Text(
                        f"archive: {checked.segments} segments, {checked.rows:,} archived rows "
                        f"checked in {checked.elapsed_s:.2f} s"
                    )
                )
            if anchored is not None:
                ledger_commands.print_checkpoint_report(anchored)
        if not (report.ok and (anchored is None or anchored.ok)):
            raise typer.Exit(EXIT_FINDINGS)


def _entry(row: dict[str, Any]) -> read_models.TimelineEntry:
    """Return an archived history row (canonical values) as a timeline entry."""

    def ident(name: str) -> uuid.UUID | None:
        value = row.get(name)
        return None if value is None else uuid.UUID(value)

    return read_models.TimelineEntry(
        sequence=row["sequence"],
        timestamp=parse_timestamp(row["transition_timestamp"]),
        event_type=row["event_type"],
        previous_status=row.get("previous_status"),
        new_status=row["new_status"],
        previous_interaction=row.get("previous_interaction_id"),
        new_interaction=row.get("new_interaction_id"),
        actor=row.get("actor_id"),
        reasoning=row.get("reasoning"),
        changes=row.get("changes"),
        metadata=row.get("transition_metadata"),
        new_state_hash=row["new_state_hash"],
        chain_hash=row["chain_hash"],
        history_id=uuid.UUID(row["history_id"]),
        previous_state_hash=row.get("previous_state_hash"),
        previous_interaction_id=ident("previous_interaction_id"),
        new_interaction_id=ident("new_interaction_id"),
        actor_id=ident("actor_id"),
    )


def _with_archive(report: VerificationReport, checked: ArchiveCheck) -> VerificationReport:
    """Add each problem with a segment to the report as an ARCHIVE finding, each note as one."""
    extra = tuple(
        Finding(FindingKind.ARCHIVE, "", None, f"segment {segment}: {problem}")
        for segment, problem in checked.problems
    )
    notes = tuple(f"archived segment {segment}: {note}" for segment, note in checked.notes)
    return dataclasses.replace(
        report, findings=report.findings + extra, notices=report.notices + notes
    )


def logs(
    uow: Annotated[
        str | None, typer.Option(help="Only rows about this UOW (id or unique prefix).")
    ] = None,
    log_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Only this type: ERROR, GUARDIAN_DECISION, STATE_TRANSITION, TELEMETRY_LOSS.",
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time (UTC if no offset).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time (UTC if no offset).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=read_models.MAX_PAGE)] = 50,
    as_json: JsonOption = False,
    database_url: UrlOption = None,
) -> None:
    """Query the interaction log, newest first: one block per row, full ids."""
    with handled(), reading(database_url) as session:
        rows = read_models.query_logs(
            session,
            uow_id=read_models.uow_id_of(session, uow) if uow else None,
            log_type=log_type,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
            limit=limit,
        )
    if as_json:
        print_json({"logs": rows})
        return
    console.print(Text(f"{len(rows)} log rows, newest first"))
    for row in rows:
        print_log(row)
