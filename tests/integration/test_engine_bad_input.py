"""Bad input to the engine: a clear Chameleon error naming the problem, and nothing written."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import (
    ChameleonError,
    InvalidTransitionError,
    InvalidValueError,
    InvalidWorkflowError,
    NotAuthorizedError,
    NotFoundError,
)
from chameleon_workflow.models import (
    ActorRoleAssignment,
    InstanceContext,
    LocalActor,
    LocalWorkflow,
    UnitsOfWork,
    UnitsOfWorkHistory,
    UOWAttribute,
)
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

INVOICE = (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()
TABLES = (
    InstanceContext,
    LocalWorkflow,
    LocalActor,
    ActorRoleAssignment,
    UnitsOfWork,
    UnitsOfWorkHistory,
    UOWAttribute,
)


@dataclass
class Bench:
    """An invoice workflow with one UOW checked out by a triage bot."""

    engine: WorkflowEngine
    factory: sessionmaker[Session]
    buffer: TelemetryBuffer
    instance_id: uuid.UUID
    bot: uuid.UUID
    outsider: uuid.UUID
    uow_id: uuid.UUID

    def unchanged(self, call: Callable[[], object], error: type[ChameleonError], text: str) -> None:
        """Assert ``call`` raises ``error`` mentioning ``text`` and writes nothing at all."""
        before = self.counts()
        with pytest.raises(error) as caught:
            call()
        assert text in str(caught.value)
        assert self.counts() == before

    def counts(self) -> tuple[int, ...]:
        """Count rows in every table the engine writes, plus buffered telemetry."""
        with self.factory() as session:
            rows = tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES)
        return (*rows, self.buffer.get_pending_count())


@pytest.fixture
def bench(session_factory: sessionmaker[Session]) -> Bench:
    """Import the invoice workflow and leave one UOW ACTIVE, held by the triage bot."""
    buffer = TelemetryBuffer()
    engine = WorkflowEngine(session_factory, telemetry=buffer)
    instance_id = engine.create_instance("bad-input")
    engine.import_workflow(instance_id, INVOICE)
    bot = engine.register_actor(instance_id, "bot", "Bot", "AI_AGENT")
    outsider = engine.register_actor(instance_id, "eve", "Eve", "HUMAN")
    engine.assign_role(bot, "triage")
    engine.instantiate(instance_id, "invoice_approval", {"invoice_id": "INV-1", "amount": 5})
    view = engine.checkout(bot, "triage")
    assert view is not None
    return Bench(engine, session_factory, buffer, instance_id, bot, outsider, view.uow_id)


def test_unknown_ids_are_not_found(bench: Bench) -> None:
    """Unknown actor, UOW, role, workflow or instance ids raise NotFoundError naming the id."""
    ghost = uuid.uuid4()
    e = bench.engine
    bench.unchanged(lambda: e.checkout(ghost, "triage"), NotFoundError, str(ghost))
    bench.unchanged(lambda: e.submit(bench.bot, ghost), NotFoundError, str(ghost))
    bench.unchanged(lambda: e.checkout(bench.bot, "nobody"), NotFoundError, "'nobody'")
    bench.unchanged(lambda: e.checkout(bench.bot, ghost), NotFoundError, str(ghost))
    bench.unchanged(lambda: e.instantiate(bench.instance_id, "nope", {}), NotFoundError, "'nope'")
    bench.unchanged(lambda: e.import_workflow(ghost, INVOICE), NotFoundError, str(ghost))
    bench.unchanged(lambda: e.heartbeat(bench.bot, "not-a-uuid"), NotFoundError, "not-a-uuid")


def test_actor_without_role_is_refused(bench: Bench) -> None:
    """Checking out or remediating without the role raises NotAuthorizedError."""
    e = bench.engine
    bench.unchanged(lambda: e.checkout(bench.outsider, "triage"), NotAuthorizedError, "'triage'")
    bench.unchanged(
        lambda: e.remediate(bench.bot, bench.uow_id, reasoning="x"),
        NotAuthorizedError,
        "'remediation'",
    )


def test_non_holder_is_refused(bench: Bench) -> None:
    """Only the holder may submit, fail or heartbeat a UOW."""
    e, eve, uow = bench.engine, bench.outsider, bench.uow_id
    bench.unchanged(lambda: e.submit(eve, uow), NotAuthorizedError, "does not hold")
    bench.unchanged(lambda: e.fail(eve, uow, "no"), NotAuthorizedError, "does not hold")
    bench.unchanged(lambda: e.heartbeat(eve, uow), NotAuthorizedError, "does not hold")


def test_illegal_transition_is_refused(bench: Bench) -> None:
    """Remediating a UOW that has not failed raises InvalidTransitionError naming both states."""
    fixer = bench.engine.register_actor(bench.instance_id, "fixer", "Fixer", "HUMAN")
    bench.engine.assign_role(fixer, "remediation")
    bench.unchanged(
        lambda: bench.engine.remediate(fixer, bench.uow_id, reasoning="x"),
        InvalidTransitionError,
        "ACTIVE -> PENDING",
    )


def test_non_json_attribute_is_refused(bench: Bench) -> None:
    """NaN or a set as an attribute value raises InvalidValueError; the UOW stays as it was."""
    e = bench.engine
    bench.unchanged(
        lambda: e.submit(bench.bot, bench.uow_id, {"amount": float("nan")}),
        InvalidValueError,
        "attributes.amount",
    )
    bench.unchanged(
        lambda: e.instantiate(bench.instance_id, "invoice_approval", {"tags": {"a"}}),
        InvalidValueError,
        "attributes.tags",
    )
    assert e.get_uow(bench.uow_id).status == "ACTIVE"


def test_invalid_workflow_writes_nothing(bench: Bench) -> None:
    """An invalid definition raises InvalidWorkflowError listing its problems; no rows."""
    broken = INVOICE.replace("type: OMEGA", "type: BETA")
    bench.unchanged(
        lambda: bench.engine.import_workflow(bench.instance_id, broken.replace("invoice_", "x_")),
        InvalidWorkflowError,
        "OMEGA",
    )
