"""``chameleon redact``: erase one attribute value everywhere, recorded in the admin ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from chameleon_workflow.cli.common import (
    UrlOption,
    console,
    existing_engine,
    handled,
    parse_uuid,
    sessions,
    shown,
)
from chameleon_workflow.erasure import redact_value


def redact(
    uow_id: Annotated[str, typer.Argument(help="The UOW whose value is erased (its id).")],
    key: Annotated[str, typer.Argument(help="The attribute whose value is erased.")],
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why (recorded in the admin ledger).", show_default=False),
    ],
    database_url: UrlOption = None,
) -> None:
    """Erase an attribute's value from every row that holds it; verification still passes."""
    with handled():
        target = parse_uuid(uow_id, "UOW_ID")
        engine = existing_engine(database_url, read_only=False)
        with sessions(engine) as factory, factory.begin() as session:
            result = redact_value(session, target, key, reason)
        console.print(
            shown(
                f"redacted {key!r} of UOW {result.uow_id}: {result.attribute_rows} attribute "
                f"rows, {result.history_rows} history rows, {result.log_rows} log rows "
                f"(admin event #{result.admin_sequence})"
            ),
            highlight=False,
            soft_wrap=True,
        )
