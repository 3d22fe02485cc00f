"""Workflow definitions are content-hashed and append-only; decisions name the hash."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from importlib.resources import files

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow import audit
from chameleon_workflow.definitions import stored_definitions
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import DefinitionAlteredError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import InteractionLog, LocalWorkflow
from chameleon_workflow.schema import alembic_config, current_revision, upgrade_database
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.testing import append_only_disabled

INVOICE = (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()


@dataclass
class Flow:
    """An engine with the invoice workflow imported and a triage bot."""

    engine: WorkflowEngine
    instance_id: uuid.UUID
    bot: uuid.UUID
    digest: str


@pytest.fixture
def flow(session_factory: sessionmaker[Session]) -> Flow:
    """Import the invoice workflow and register a triage bot; remember the recorded hash."""
    engine = WorkflowEngine(session_factory, telemetry=TelemetryBuffer())
    instance_id = engine.create_instance("defs")
    workflow_id = engine.import_workflow(instance_id, INVOICE)
    bot = engine.register_actor(instance_id, "bot", "Bot", "AI_AGENT")
    engine.assign_role(bot, "triage")
    with session_factory() as session:
        digest = session.scalar(
            select(LocalWorkflow.definition_hash).where(
                LocalWorkflow.local_workflow_id == workflow_id
            )
        )
    assert digest is not None
    return Flow(engine, instance_id, bot, digest)


def _raise_limit(engine: Engine) -> None:
    """Raise the review threshold in the stored guardian configuration with one UPDATE."""
    config = "config::text" if engine.dialect.name == "postgresql" else "CAST(config AS TEXT)"
    raised = f"REPLACE({config}, '10000', '99999')"
    if engine.dialect.name == "postgresql":
        raised += "::jsonb"
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE local_guardians SET config = {raised}"))


def test_import_records_the_hash_the_rows_compute(flow: Flow, session: Session) -> None:
    """The stored hash is the one the stored rows hash to, on both back ends."""
    [(workflow, recomputed)] = list(stored_definitions(session.connection()))
    assert (workflow["definition_hash"], recomputed) == (flow.digest, flow.digest)


def test_a_plain_update_of_a_limit_is_refused(flow: Flow, engine: Engine) -> None:
    """An ordinary writer cannot raise a guardian's limit: the database refuses the UPDATE."""
    with pytest.raises(Exception, match="local_guardians is append-only"):
        _raise_limit(engine)


def test_an_owner_edit_is_found_and_refused_by_the_engine(
    flow: Flow, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """With the triggers off a limit is raised; verification names it, the engine won't run it."""
    with append_only_disabled(engine):
        _raise_limit(engine)
    with session_factory() as session:
        report = audit.verify(session)
    assert [f.kind.value for f in report.findings] == ["DEFINITION_ALTERED"]
    assert report.findings[0].detail.startswith("workflow 'invoice_approval' (")
    fresh = WorkflowEngine(session_factory, telemetry=TelemetryBuffer())  # nothing cached
    with pytest.raises(DefinitionAlteredError, match="was altered after its import"):
        fresh.instantiate(flow.instance_id, "invoice_approval", {"amount": 5})


def test_decisions_name_the_definition(flow: Flow, session_factory: sessionmaker[Session]) -> None:
    """A routed submit's history row and its GUARDIAN_DECISION row carry the definition hash."""
    uow_id = flow.engine.instantiate(flow.instance_id, "invoice_approval", {"amount": 20_000})
    assert flow.engine.checkout(flow.bot, "triage") is not None
    flow.engine.submit(flow.bot, uow_id, None, reasoning="routed")
    flow.engine.flush_telemetry()
    with session_factory() as session:
        rows = UOWPersistenceService().get_uow_history(session, uow_id)
        decisions = session.scalars(
            select(InteractionLog.event_details).where(
                InteractionLog.log_type == "GUARDIAN_DECISION"
            )
        ).all()
    assert rows[-1].transition_metadata["route"]["definition"] == flow.digest
    assert [d["definition"] for d in decisions] == [flow.digest, flow.digest]  # gate, route


def test_definitions_imported_before_the_hash_get_it(
    flow: Flow, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """Downgrading below the hash and upgrading again recomputes exactly the same hash."""
    head = current_revision(engine)
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    upgrade_database(engine)
    assert current_revision(engine) == head
    with session_factory() as session:
        stored = session.scalar(select(LocalWorkflow.definition_hash))
        count = session.scalar(select(func.count()).select_from(LocalWorkflow))
        assert audit.verify(session).ok
    assert (stored, count) == (flow.digest, 1)
    with pytest.raises(Exception, match="local_guardians is append-only"):
        _raise_limit(engine)  # the triggers are back
