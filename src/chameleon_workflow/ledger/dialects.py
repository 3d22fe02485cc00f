"""The one place the ledger picks its back end's SQL by dialect.

Everything dialect-specific the writer does goes through the ``LedgerSQL`` this returns
(``sqlite.SQLiteSQL`` or ``postgres.PostgresSQL``); no other ledger module asks which
database it talks to.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from chameleon_workflow.ledger.backend import LedgerSQL
from chameleon_workflow.ledger.postgres import PostgresSQL
from chameleon_workflow.ledger.sqlite import SQLiteSQL

_SQLITE = SQLiteSQL()
_POSTGRES = PostgresSQL()


def statements_for(bind: Connection | Engine) -> LedgerSQL:
    """Return the ledger SQL of the back end behind a connection or engine."""
    return _SQLITE if bind.dialect.name == "sqlite" else _POSTGRES
