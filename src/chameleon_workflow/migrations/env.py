"""Alembic environment: runs migrations on Chameleon's own engine settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from chameleon_workflow.archive import records as archive_records  # noqa: F401 - its tables
from chameleon_workflow.checkpoints import records  # noqa: F401 - registers its tables on Base
from chameleon_workflow.db import make_engine
from chameleon_workflow.models import Base
from chameleon_workflow.redactions import Redaction  # noqa: F401 - registers its table

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    """Run migrations online against the configured URL (or CHAMELEON_DATABASE_URL)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or None
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
