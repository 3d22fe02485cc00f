"""Engine set-up on both back ends: unknown instances are not found, workflows are text only."""

from __future__ import annotations

import uuid
from importlib.resources import files
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import InvalidValueError, InvalidWorkflowError, NotFoundError
from chameleon_workflow.models import LocalActor, LocalWorkflow
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.workflow.loading import parse_workflow_text

MINIMAL = (files("chameleon_workflow") / "examples" / "minimal.yaml").read_text()


@pytest.fixture
def engine(session_factory: sessionmaker[Session]) -> WorkflowEngine:
    """Return an engine with a buffer of its own."""
    return WorkflowEngine(session_factory, telemetry=TelemetryBuffer())


def _count(factory: sessionmaker[Session], model: type[object]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_register_actor_in_unknown_instance_is_not_found(
    engine: WorkflowEngine, session_factory: sessionmaker[Session]
) -> None:
    """Registering an actor in an instance that does not exist names it and writes nothing."""
    ghost = uuid.uuid4()
    with pytest.raises(NotFoundError) as caught:
        engine.register_actor(ghost, "bot", "Bot", "AI_AGENT")
    assert str(caught.value) == f"instance {ghost} does not exist"
    assert _count(session_factory, LocalActor) == 0


def test_register_actor_checks_its_type_before_the_instance(engine: WorkflowEngine) -> None:
    """An unknown actor type is refused as invalid, whatever the instance."""
    with pytest.raises(InvalidValueError) as caught:
        engine.register_actor(uuid.uuid4(), "bot", "Bot", "ROBOT")
    assert str(caught.value) == "unknown actor type 'ROBOT'"


def test_register_actor_in_existing_instance(
    engine: WorkflowEngine, session_factory: sessionmaker[Session]
) -> None:
    """An actor registered in an existing instance is stored there."""
    instance_id = engine.create_instance("setup")
    actor_id = engine.register_actor(instance_id, "bot", "Bot", "AI_AGENT")
    with session_factory() as session:
        actor = session.get(LocalActor, actor_id)
        assert actor is not None
        assert (actor.instance_id, actor.identity_key, actor.actor_type) == (
            instance_id,
            "bot",
            "AI_AGENT",
        )


def test_import_reads_a_path_like_string_as_yaml_text(
    engine: WorkflowEngine, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """A one-line '*.yaml' string naming a real file is YAML text to the engine, not a path."""
    target = tmp_path / "minimal.yaml"
    target.write_text(MINIMAL, encoding="utf-8")
    instance_id = engine.create_instance("paths")
    with pytest.raises(InvalidWorkflowError) as caught:
        engine.import_workflow(instance_id, str(target))
    assert caught.value.problems == [
        "<string>: workflow: the document must be a mapping with name, roles, interactions, "
        "components"
    ]
    assert _count(session_factory, LocalWorkflow) == 0


def test_import_refuses_a_path_object(engine: WorkflowEngine, tmp_path: Path) -> None:
    """A Path is refused with a hint: the engine never reads files."""
    target = tmp_path / "minimal.yaml"
    target.write_text(MINIMAL, encoding="utf-8")
    instance_id = engine.create_instance("path-object")
    with pytest.raises(InvalidValueError) as caught:
        engine.import_workflow(instance_id, target)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "a workflow is YAML text or a WorkflowDefinition, not PosixPath; "
        "read a file with chameleon_workflow.workflow.definition.load_workflow"
    )


def test_import_takes_text_or_a_definition(
    engine: WorkflowEngine, session_factory: sessionmaker[Session]
) -> None:
    """YAML text and an already parsed definition both import."""
    from_text = engine.import_workflow(engine.create_instance("text"), MINIMAL)
    definition = parse_workflow_text(MINIMAL)
    from_definition = engine.import_workflow(engine.create_instance("definition"), definition)
    with session_factory() as session:
        names = {
            session.get(LocalWorkflow, workflow_id).name  # type: ignore[union-attr]
            for workflow_id in (from_text, from_definition)
        }
    assert names == {"minimal"}
