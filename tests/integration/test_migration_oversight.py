"""Revision 0007 admits the PILOT actor type and the new history events, and undoes it."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy.orm import sessionmaker

from chameleon_workflow.db import make_engine
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import ChameleonError
from chameleon_workflow.schema import alembic_config, upgrade_database
from chameleon_workflow.telemetry.buffer import TelemetryBuffer


def test_pilot_actors_come_and_go_with_0007(empty_database_url: str) -> None:
    """Below 0007 a PILOT actor is refused by the database; at 0007 it is stored.

    The new history event types are written (and so admitted) by the engine tests.
    """
    engine = make_engine(empty_database_url)
    try:
        upgrade_database(engine, "0006")
        workflows = WorkflowEngine(sessionmaker(engine), telemetry=TelemetryBuffer())
        instance = workflows.create_instance("i")
        with pytest.raises(ChameleonError):
            workflows.register_actor(instance, "p", "p", "PILOT")
        upgrade_database(engine)
        workflows.register_actor(instance, "p", "p", "PILOT")
        config = alembic_config(engine)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            # Narrowing the CHECK again is refused while a PILOT actor exists.
            with pytest.raises(Exception, match="local_actors"):
                command.downgrade(config, "0006")
    finally:
        engine.dispose()
