"""``chameleon demo``: the invoice demo (default) or, with ``--workflow purchase_order``,
the purchase-order demo of fan-out, joins and pilot oversight."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from chameleon_workflow.cli import commands
from chameleon_workflow.cli.common import (
    EXIT_FINDINGS,
    UrlOption,
    console,
    handled,
    migrated_engine,
    sessions,
    shown,
)
from chameleon_workflow.cli.render import print_report, progress_bar, summary_table
from chameleon_workflow.ledger.rotation import provision_keys
from chameleon_workflow.purchase_demo import event_counts, run_purchase_demo


class DemoWorkflow(StrEnum):
    """The workflows the demo can drive."""

    INVOICE_APPROVAL = "invoice_approval"
    PURCHASE_ORDER = "purchase_order"


def demo(
    uows: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=100_000,
            help="Units to drive: invoices (default 300), or orders (default 20).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (runs are repeatable).")] = 7,
    workflow: Annotated[
        DemoWorkflow, typer.Option(help="The example workflow to drive.")
    ] = DemoWorkflow.INVOICE_APPROVAL,
    database_url: UrlOption = None,
) -> None:
    """Run a demo with simulated actors (a simulated pilot too), then audit and verify it."""
    if workflow == DemoWorkflow.INVOICE_APPROVAL:
        commands.demo(uows=uows or 300, seed=seed, database_url=database_url)
        return
    with handled():
        engine = migrated_engine(database_url)
        provision_keys(engine)
        orders = uows or 20
        with sessions(engine) as factory, progress_bar() as bar:
            task = bar.add_task("driving purchase orders", total=orders)
            summary = run_purchase_demo(
                factory,
                orders=orders,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
            events = event_counts(factory, summary.instance_id)
        console.print(summary_table(summary))
        table = Table(title="Ledger events")
        table.add_column("event")
        table.add_column("rows", justify="right")
        for kind, count in events.items():
            table.add_row(shown(kind), shown(count))
        console.print(table)
        print_report(summary.verification)
        if not summary.verification.ok:
            raise typer.Exit(EXIT_FINDINGS)
