"""The ``chameleon`` command: thin transport over the services (Typer + Rich).

Exit status: 0 success, 1 verification found something, 2 bad input or a failure.
"""

from __future__ import annotations

import typer

from chameleon_workflow.cli import (
    commands,
    export_commands,
    ledger_commands,
    long_running,
    worker_commands,
)

app = typer.Typer(
    help="Chameleon: a workflow engine with an append-only, hash-chained, verifiable history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(commands.init)
app.command("import")(commands.import_)
app.command()(commands.demo)
app.command()(commands.history)
app.command()(commands.verify)
app.command()(commands.logs)
app.command()(ledger_commands.checkpoint)
app.command()(ledger_commands.prove)
app.command()(export_commands.export)
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


def main() -> None:
    """Run the command line."""
    app()
