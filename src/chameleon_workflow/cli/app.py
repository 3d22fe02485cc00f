"""The ``chameleon`` command: thin transport over the services (Typer + Rich).

Exit status: 0 success, 1 verification found something, 2 bad input or a failure.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from chameleon_workflow.cli import (
    archive_commands,
    commands,
    demo_commands,
    export_commands,
    inspect_commands,
    ledger_commands,
    listing_commands,
    long_running,
    oversight_commands,
    redaction_commands,
    worker_commands,
)
from chameleon_workflow.cli.common import check_environment, console, handled

app = typer.Typer(
    help="Chameleon: a workflow engine with an append-only, hash-chained, verifiable history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(wanted: bool) -> None:
    if wanted:
        console.print(f"chameleon {version('chameleon-workflow')}", highlight=False)
        raise typer.Exit


@app.callback()
def _everywhere(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Chameleon: a workflow engine with an append-only, hash-chained, verifiable history."""
    with handled():
        check_environment()


app.command()(commands.init)
app.command("import")(commands.import_)
app.command()(demo_commands.demo)
app.command()(inspect_commands.history)
app.command()(inspect_commands.verify)
app.command()(inspect_commands.logs)
app.command()(listing_commands.uows)
instances = typer.Typer(
    help="List instances, or create one (instances create NAME).",
    invoke_without_command=True,
)
instances.callback()(listing_commands.instances)
instances.command("create")(listing_commands.instances_create)
app.add_typer(instances, name="instances")
app.command()(listing_commands.workflows)
app.command()(listing_commands.actors)
app.command()(ledger_commands.checkpoint)
app.command()(ledger_commands.prove)
app.command()(export_commands.export)
app.command()(redaction_commands.redact)
archive = typer.Typer(
    help="Archive finished UOWs to signed segments (archive --before DATE), or restore one.",
    invoke_without_command=True,
)
archive.callback()(archive_commands.archive)
archive.command("restore")(archive_commands.restore)
app.add_typer(archive, name="archive")
app.command()(long_running.serve)
app.command()(worker_commands.worker)
app.command()(worker_commands.mcp)
database = typer.Typer(help="Manage the database: its schema and roles.", no_args_is_help=True)
database.command("upgrade")(commands.db_upgrade)
database.command("roles")(commands.db_roles)
app.add_typer(database, name="db")
keys = typer.Typer(
    help="Manage the keys: the ledger key links are made under, the checkpoint signing key.",
    no_args_is_help=True,
)
keys.command("rotate")(commands.keys_rotate)
keys.command("export")(ledger_commands.keys_export)
app.add_typer(keys, name="keys")
app.command()(long_running.benchmark)
app.add_typer(oversight_commands.pilot, name="pilot")


def main() -> None:
    """Run the command line."""
    app()
