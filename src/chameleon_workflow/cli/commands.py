"""The everyday commands: set up, import, demo, history, verify, logs and key rotation.

Only ``init``, ``db upgrade`` and ``demo`` create or migrate a database (and ``serve``);
they also find or make its ledger key. ``history``, ``verify`` and ``logs`` open it
read-only (``verify`` needs the key: exit 2 without one) and ``import`` and
``keys rotate`` need it current.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chameleon_workflow import listings, read_models
from chameleon_workflow.cli import ledger_commands
from chameleon_workflow.cli.common import (
    EXIT_FINDINGS,
    UrlOption,
    console,
    existing_engine,
    handled,
    migrated_engine,
    require_existing_file,
    sessions,
    shown,
)
from chameleon_workflow.cli.render import (
    print_report,
    progress_bar,
    summary_table,
)
from chameleon_workflow.config import load_settings
from chameleon_workflow.demo import run_demo
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import InvalidValueError, NotFoundError
from chameleon_workflow.ledger.rotation import KeyChange, provision_keys, rotate_keys
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
    instance: Annotated[str, typer.Option(help="Instance (name or id).")] = "default",
    create_instance: Annotated[
        bool,
        typer.Option(
            "--create-instance", help="Create the instance (by that name) if there is none."
        ),
    ] = False,
    database_url: UrlOption = None,
) -> None:
    """Validate a workflow definition and import it into an existing instance."""
    with handled():
        if not file.is_file():
            raise InvalidValueError(f"no such file: {file}")
        definition = load_workflow(file)  # the one place a workflow is read from a file
        with sessions(existing_engine(database_url, read_only=False)) as factory:
            engine = WorkflowEngine(factory)
            instance_id = engine.read(lambda session: _instance(session, instance, create_instance))
            if instance_id is None:
                instance_id = engine.create_instance(instance)
            workflow_id = engine.import_workflow(instance_id, definition)
        console.print(
            shown(
                f"imported {file.name} into instance {instance!r} ({instance_id}) "
                f"as workflow {workflow_id}"
            ),
            soft_wrap=True,
        )


def _instance(session: Session, name_or_id: str, create: bool) -> uuid.UUID | None:
    """Return the instance's id; None when it is missing and may be created; else an error."""
    try:
        return read_models.instance_id_of(session, name_or_id)
    except NotFoundError:
        if create:
            return None
        raise read_models.missing_instance_error(session, name_or_id) from None


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
            with factory() as session:
                tips = _demo_tips(session, summary.instance_id)
        console.print(summary_table(summary))
        print_report(summary.verification)
        console.print(tips, soft_wrap=True, highlight=False)
        if not summary.verification.ok:
            raise typer.Exit(EXIT_FINDINGS)


def _demo_tips(session: Session, instance_id: uuid.UUID) -> Text:
    """Name the demo's instance and a few of its UOWs, with commands to try on them."""
    name = listings.instance_name(session, instance_id)
    lines = [f"\ninstance {name} ({instance_id})"]
    tried: list[str] = []
    for status in ("COMPLETED", "FAILED"):
        where = listings.UOWFilter(instance_id=instance_id, statuses=(status,))
        page = listings.list_uows(session, where, limit=1)
        for u in page.uows:
            lines.append(f"a {status} UOW: {u.uow_id}")
            tried.append(str(u.uow_id))
    lines.append("try:")
    for uow_id in tried[:1]:
        lines += [f"  chameleon history {uow_id[:8]}", f"  chameleon logs --uow {uow_id}"]
    lines += [
        f"  chameleon uows --instance {name} --status FAILED",
        f"  chameleon workflows --instance {name}",
        f"  chameleon actors --instance {name}",
        f"  chameleon verify --instance {name}",
    ]
    return Text("\n".join(lines))
