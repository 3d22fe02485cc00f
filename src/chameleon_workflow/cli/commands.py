"""The everyday commands: set up, import, demo, history, verify, logs and key rotation.

Only ``init``, ``db upgrade`` and ``demo`` create or migrate a database (and ``serve``);
they also find or make its ledger key. ``history``, ``verify`` and ``logs`` open it
read-only (``verify`` needs the key: exit 2 without one) and ``import`` and
``keys rotate`` need it current.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from chameleon_workflow import read_models
from chameleon_workflow.cli import ledger_commands
from chameleon_workflow.cli.common import (
    EXIT_FINDINGS,
    UrlOption,
    console,
    existing_engine,
    handled,
    migrated_engine,
    parse_time,
    parse_uuid,
    require_existing_file,
    sessions,
    shown,
)
from chameleon_workflow.cli.render import (
    compact,
    print_report,
    print_timeline,
    progress_bar,
    summary_table,
)
from chameleon_workflow.config import load_settings
from chameleon_workflow.demo import run_demo
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.ledger.rotation import KeyChange, provision_keys, rotate_keys
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.roles import RolePlan, apply_roles
from chameleon_workflow.schema import current_revision
from chameleon_workflow.workflow.loading import load_workflow


def init(database_url: UrlOption = None) -> None:
    """Create or upgrade the schema, find or make the ledger key and the signing key."""
    with handled():
        _print_ready(migrated_engine(database_url))
        ledger_commands.ensure_signing_key(database_url, load_settings())


def db_upgrade(database_url: UrlOption = None) -> None:
    """Upgrade an existing database to this version's schema (never creates one)."""
    with handled():
        target = database_url or load_settings().database_url
        require_existing_file(target)
        _print_ready(migrated_engine(target))


def db_roles(
    owner: Annotated[str, typer.Option(help="Role that owns the schema and migrates it.")] = (
        "chameleon_owner"
    ),
    app: Annotated[str, typer.Option(help="Role the engine and the server log in as.")] = (
        "chameleon_app"
    ),
    database_url: UrlOption = None,
) -> None:
    """Create the owner and application roles on PostgreSQL (run as a superuser; idempotent).

    Passwords come from CHAMELEON_OWNER_PASSWORD and CHAMELEON_APP_PASSWORD when set.
    """
    with handled():
        plan = RolePlan(
            owner,
            app,
            os.environ.get("CHAMELEON_OWNER_PASSWORD"),
            os.environ.get("CHAMELEON_APP_PASSWORD"),
        )
        engine = existing_engine(database_url, read_only=False)
        try:
            tables = apply_roles(engine, plan)
        finally:
            engine.dispose()
        console.print(
            f"{owner} owns {len(tables)} tables; {app} may read them all, insert, and update "
            "only the tables that change by design (never a ledger table)",
            highlight=False,
        )


def keys_rotate(database_url: UrlOption = None) -> None:
    """Make a new current ledger key; old keys stay in the key file to verify old links."""
    with handled():
        engine = existing_engine(database_url, read_only=False)
        try:
            change = rotate_keys(engine)
        finally:
            engine.dispose()
        console.print(
            f"ledger key rotated: {change.keys.current_id} is current, "
            f"{change.previous_id} kept ({_source(change)})",
            highlight=False,
            soft_wrap=True,
        )


def _print_ready(engine: Engine) -> None:
    try:
        revision = current_revision(engine)
        change = provision_keys(engine)
    finally:
        engine.dispose()
    console.print(
        f"database ready at revision [bold]{revision}[/] "
        f"({engine.url.render_as_string(hide_password=True)})"
    )
    console.print(
        f"ledger key {change.keys.current_id} ({_source(change)})", highlight=False, soft_wrap=True
    )


def _source(change: KeyChange) -> str:
    return str(getattr(change.keys, "source", "key provider"))


def import_(
    file: Annotated[Path, typer.Argument(help="Workflow definition (YAML).")],
    instance: Annotated[str, typer.Option(help="Instance name; created if missing.")] = "default",
    database_url: UrlOption = None,
) -> None:
    """Validate a workflow definition and import it into an instance."""
    with handled():
        if not file.is_file():
            raise InvalidValueError(f"no such file: {file}")
        definition = load_workflow(file)  # the one place a workflow is read from a file
        with sessions(existing_engine(database_url, read_only=False)) as factory:
            engine = WorkflowEngine(factory)
            instance_id = engine.ensure_instance(instance)
            workflow_id = engine.import_workflow(instance_id, definition)
        console.print(
            shown(f"imported {file.name} into instance {instance!r} as workflow {workflow_id}")
        )


def demo(
    uows: Annotated[int, typer.Option(min=1, max=100_000, help="Invoices to drive.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (runs are repeatable).")] = 7,
    database_url: UrlOption = None,
) -> None:
    """Run the invoice-approval demo with simulated actors, then audit and verify it."""
    with handled():
        engine = migrated_engine(database_url)
        provision_keys(engine)
        with sessions(engine) as factory, progress_bar() as bar:
            task = bar.add_task("driving invoices", total=uows)
            summary = run_demo(
                factory,
                uows=uows,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        console.print(summary_table(summary))
        print_report(summary.verification)
        if not summary.verification.ok:
            raise typer.Exit(EXIT_FINDINGS)


def history(
    uow_id: Annotated[str, typer.Argument(help="The UOW's id.")],
    database_url: UrlOption = None,
) -> None:
    """Show a UOW's timeline: statuses, interactions, actor, reasoning, diffs, hashes."""
    with handled():
        target = parse_uuid(uow_id, "UOW id")
        with (
            sessions(existing_engine(database_url, read_only=True)) as factory,
            factory() as session,
        ):
            entries = read_models.uow_timeline(session, target)
        print_timeline(target, entries)


def verify(
    instance: Annotated[str | None, typer.Option(help="Only this instance (name or id).")] = None,
    checkpoint: ledger_commands.CheckpointOption = None,
    public_key: ledger_commands.PublicKeyOption = None,
    database_url: UrlOption = None,
) -> None:
    """Verify hashes, keyed chains, attribute digests and heads of every UOW; exit 1 on findings.

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
        with (
            sessions(existing_engine(database_url, read_only=True)) as factory,
            factory() as session,
        ):
            service = UOWPersistenceService()
            service.ledger_keys(factory.kw["bind"])  # no key: say so before any progress
            instance_id = read_models.instance_id_of(session, instance) if instance else None
            total = read_models.count_uows(session, instance_id)
            with progress_bar() as bar:
                task = bar.add_task("verifying UOWs", total=total)
                report = service.verify_database(
                    session, instance_id, progress=lambda n: bar.advance(task, n)
                )
        print_report(report)
        anchored = anchor is None or ledger_commands.verify_anchor(database_url, anchor)
        if not (report.ok and anchored):
            raise typer.Exit(EXIT_FINDINGS)


def logs(
    uow: Annotated[str | None, typer.Option(help="Only rows about this UOW id.")] = None,
    log_type: Annotated[
        str | None, typer.Option("--type", help="INTERACTION, TELEMETRY, ERROR, ...")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time (UTC if no offset).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time (UTC if no offset).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=read_models.MAX_PAGE)] = 50,
    database_url: UrlOption = None,
) -> None:
    """Query the interaction log, newest first."""
    with handled():
        filters: dict[str, Any] = {
            "uow_id": parse_uuid(uow, "UOW id") if uow else None,
            "log_type": log_type,
            "since": parse_time(since, "--since"),
            "until": parse_time(until, "--until"),
            "limit": limit,
        }
        with (
            sessions(existing_engine(database_url, read_only=True)) as factory,
            factory() as session,
        ):
            rows = read_models.query_logs(session, **filters)
        table = Table(title=f"{len(rows)} log rows")
        for column in ("time (UTC)", "type", "uow", "details"):
            table.add_column(column, overflow="fold")
        for r in rows:
            details = compact(r.event_details, r.error_metadata)
            uow_text = str(r.uow_id)[:8] if r.uow_id else "-"
            table.add_row(
                r.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f"),
                shown(r.log_type),
                uow_text,
                shown(details),
            )
        console.print(table)
