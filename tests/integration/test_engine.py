"""The engine walks UOWs through the invoice workflow on both back ends, every step traced."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from importlib.resources import files

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import Settings
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import StateDriftError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import InteractionLog, LocalWorkflow, UnitsOfWorkHistory
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.testing import FixedClock, append_only_disabled

INVOICE = (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()
MINIMAL = (files("chameleon_workflow") / "examples" / "minimal.yaml").read_text()
SETTINGS = Settings(zombie_threshold_s=60, zombie_max_retries=1)


@dataclass
class World:
    """An instance with the invoice workflow imported and one actor per role."""

    engine: WorkflowEngine
    factory: sessionmaker[Session]
    clock: FixedClock
    instance_id: uuid.UUID
    bot: uuid.UUID
    alice: uuid.UUID
    approver: uuid.UUID
    fixer: uuid.UUID
    reaper: uuid.UUID

    def start(self, **attributes: object) -> uuid.UUID:
        """Instantiate an invoice with these attributes."""
        return self.engine.instantiate(self.instance_id, "invoice_approval", attributes)

    def step(self, actor: uuid.UUID, role: str, **attributes: object) -> uuid.UUID:
        """Check out one UOW for ``role`` and submit it; return its id."""
        view = self.engine.checkout(actor, role)
        assert view is not None
        self.engine.submit(actor, view.uow_id, attributes or None, reasoning=f"{role} done")
        return view.uow_id

    def history(self, uow_id: uuid.UUID) -> list[UnitsOfWorkHistory]:
        """Return a UOW's history rows in order."""
        with self.factory() as session:
            return UOWPersistenceService().get_uow_history(session, uow_id)

    def definition_hash(self) -> str | None:
        """Return the recorded hash of the (only) imported workflow."""
        with self.factory() as session:
            return session.scalars(select(LocalWorkflow.definition_hash)).one()

    def logs(self) -> Counter[str]:
        """Flush telemetry and count log rows by type (not the streams' own open/close rows)."""
        self.engine.flush_telemetry()
        with self.factory() as session:
            rows = session.execute(
                select(InteractionLog.log_type, func.count())
                .where(InteractionLog.log_type.not_in(("STREAM_OPENED", "STREAM_CLOSED")))
                .group_by(InteractionLog.log_type)
            )
            return Counter({str(kind): n for kind, n in rows})


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> World:
    """Set up the invoice workflow with a triage bot, a reviewer, an approver, EPSILON and TAU."""
    clock = FixedClock()
    engine = WorkflowEngine(
        session_factory, telemetry=TelemetryBuffer(), clock=clock, settings=SETTINGS
    )
    instance_id = engine.create_instance("invoices")
    engine.import_workflow(instance_id, INVOICE)
    actors = {}
    for key, kind, role in [
        ("bot", "AI_AGENT", "triage"),
        ("alice", "HUMAN", "manual_review"),
        ("approver", "AI_AGENT", "approval"),
        ("fixer", "HUMAN", "remediation"),
        ("reaper", "SYSTEM", "reaper"),
    ]:
        actors[key] = engine.register_actor(instance_id, key, key.title(), kind)
        engine.assign_role(actors[key], role)
    return World(engine, session_factory, clock, instance_id, **actors)


def test_five_role_walk_records_every_step(world: World) -> None:
    """A high invoice goes ALPHA → triage → review → approval → COMPLETED, fully traced."""
    uow_id = world.start(invoice_id="INV-1", amount=25_000)
    world.step(world.bot, "triage")
    world.step(world.alice, "manual_review", reviewed_by="alice")
    world.step(world.approver, "approval")
    assert world.engine.get_uow(uow_id).status == "COMPLETED"
    rows = world.history(uow_id)
    assert [(r.event_type, r.new_status) for r in rows] == [
        ("CREATED", "PENDING"),
        ("TRANSITION", "ACTIVE"),
        ("TRANSITION", "PENDING"),
        ("TRANSITION", "ACTIVE"),
        ("ATTRIBUTES", "ACTIVE"),
        ("TRANSITION", "PENDING"),
        ("TRANSITION", "ACTIVE"),
        ("TRANSITION", "COMPLETED"),
    ]
    actors = [r.actor_id for r in rows]
    bot, alice, approver = world.bot, world.alice, world.approver
    assert actors == [None, bot, bot, alice, alice, alice, approver, approver]
    assert [r.reasoning for r in rows][1:] == [
        "checked out by role 'triage'",
        "triage done",
        "checked out by role 'manual_review'",
        "manual_review done",
        "manual_review done",
        "checked out by role 'approval'",
        "approval done",
    ]
    assert rows[4].changes["added"] == {"reviewed_by": "alice"}
    assert world.logs() == {"STATE_TRANSITION": 7, "GUARDIAN_DECISION": 5}
    with world.factory() as session:
        assert UOWPersistenceService().verify_database(session).ok


def test_routing_by_amount(world: World) -> None:
    """Amounts over 10,000 go to manual review; the rest straight to approval."""
    low = world.start(invoice_id="INV-low", amount=900)
    high = world.start(invoice_id="INV-high", amount=10_001)
    world.step(world.bot, "triage")
    world.step(world.bot, "triage")
    assert world.engine.get_uow(low).interaction == "ready_for_approval"
    assert world.engine.get_uow(high).interaction == "needs_review"
    route = world.history(high)[-1].transition_metadata["route"]
    assert route == {
        "role": "triage",
        "guardian": "amount_router",
        "branch": 0,
        "error": None,
        "definition": world.definition_hash(),
    }
    assert world.history(low)[-1].transition_metadata["route"]["branch"] == -1


def test_condition_error_takes_on_error_route(world: World) -> None:
    """A text amount makes the condition fail: ERROR row, and the UOW goes to manual review."""
    uow_id = world.start(invoice_id="INV-text", amount="1,200.00")
    world.step(world.bot, "triage")
    view = world.engine.get_uow(uow_id)
    assert (view.status, view.interaction) == ("PENDING", "needs_review")
    route = world.history(uow_id)[-1].transition_metadata["route"]
    assert route["branch"] == -2
    assert route["error"].startswith("branch 0: ")
    assert world.logs()["ERROR"] == 1
    with world.factory() as session:
        error = session.scalars(select(InteractionLog).where(InteractionLog.log_type == "ERROR"))
        row = error.one()
    assert row.uow_id == uow_id
    assert row.event_details["condition"] == "amount > 10000"
    assert row.event_details["variables"] == {"invoice_id": "INV-text", "amount": "1,200.00"}


def test_gate_rejection_fails_to_epsilon(world: World) -> None:
    """CERBERUS refuses a zero amount at approval: FAILED in the failed queue, with the reason."""
    uow_id = world.start(invoice_id="INV-0", amount=0)
    world.step(world.bot, "triage")
    assert world.engine.checkout(world.approver, "approval") is None
    view = world.engine.get_uow(uow_id)
    assert (view.status, view.interaction, view.held_by) == ("FAILED", "failed", None)
    last = world.history(uow_id)[-1]
    assert last.actor_id == world.approver
    assert last.reasoning == "rejected by 'final_check': heads not met: amount > 0"
    assert last.transition_metadata["guardian"] == "final_check"
    assert world.logs()["GUARDIAN_DECISION"] == 3


def test_remediation_sends_uow_back_and_it_completes(world: World) -> None:
    """EPSILON fixes a rejected invoice; it re-enters at EPSILON's exit and completes."""
    uow_id = world.start(invoice_id="INV-0", amount=0)
    world.step(world.bot, "triage")
    world.engine.checkout(world.approver, "approval")
    view = world.engine.remediate(world.fixer, uow_id, {"amount": 50}, reasoning="amount fixed")
    assert (view.status, view.interaction, view.attributes["amount"]) == (
        "PENDING",
        "submitted",
        50,
    )
    last = world.history(uow_id)[-1]
    ready = world.engine.get_uow(uow_id).interaction_id
    assert (last.actor_id, last.reasoning) == (world.fixer, "amount fixed")
    assert last.transition_metadata["to"] == str(ready)
    world.step(world.bot, "triage")
    world.step(world.approver, "approval")
    assert world.engine.get_uow(uow_id).status == "COMPLETED"


def test_remediation_without_epsilon_exit_returns_where_it_failed(
    session_factory: sessionmaker[Session],
) -> None:
    """With no EPSILON exit, a remediated UOW goes back to the interaction it failed from."""
    engine = WorkflowEngine(session_factory, telemetry=TelemetryBuffer())
    instance_id = engine.create_instance("minimal")
    engine.import_workflow(instance_id, MINIMAL)
    worker = engine.register_actor(instance_id, "w", "Worker", "AI_AGENT")
    fixer = engine.register_actor(instance_id, "f", "Fixer", "HUMAN")
    engine.assign_role(worker, "finish")
    engine.assign_role(fixer, "fixer")
    uow_id = engine.instantiate(instance_id, "minimal", {"n": 1})
    view = engine.checkout(worker, "finish")
    assert view is not None
    assert engine.fail(worker, uow_id, "printer on fire").interaction == "failed"
    back = engine.remediate(fixer, uow_id, reasoning="fire out")
    assert (back.status, back.interaction) == ("PENDING", "work")
    with session_factory() as session:
        rows = UOWPersistenceService().get_uow_history(session, uow_id)
    assert rows[-2].reasoning == "printer on fire"
    assert rows[-1].transition_metadata["remediated_from"] == str(view.interaction_id)


def test_zombie_is_requeued_then_declared_dead(world: World) -> None:
    """A silent holder loses its UOW: soft → re-queued with a retry, then dead past the limit."""
    uow_id = world.start(invoice_id="INV-z", amount=10)
    assert world.engine.checkout(world.bot, "triage") is not None
    world.clock.advance(61)
    result = world.engine.sweep_zombies()
    assert (result.requeued, result.dead) == (1, 0)
    view = world.engine.get_uow(uow_id)
    assert (view.status, view.interaction, view.retry_count, view.held_by) == (
        "PENDING",
        "submitted",
        1,
        None,
    )
    rows = world.history(uow_id)[-2:]
    assert [(r.new_status, r.actor_id) for r in rows] == [
        ("ZOMBIED_SOFT", world.reaper),
        ("PENDING", world.reaper),
    ]
    assert world.engine.checkout(world.bot, "triage") is not None
    world.clock.advance(61)
    assert world.engine.sweep_zombies().dead == 1
    assert world.engine.get_uow(uow_id).status == "ZOMBIED_DEAD"
    with world.factory() as session:
        assert UOWPersistenceService().verify_database(session).ok


def test_heartbeat_keeps_uow_alive(world: World) -> None:
    """Heartbeats within the threshold keep the UOW ACTIVE and write no history."""
    uow_id = world.start(invoice_id="INV-h", amount=10)
    assert world.engine.checkout(world.bot, "triage") is not None
    before = len(world.history(uow_id))
    for _ in range(3):
        world.clock.advance(40)
        world.engine.heartbeat(world.bot, uow_id)
        assert world.engine.sweep_zombies().reclaimed == 0
    view = world.engine.get_uow(uow_id)
    assert (view.status, view.held_by, view.last_heartbeat_at) == (
        "ACTIVE",
        world.bot,
        world.clock.now,
    )
    assert len(world.history(uow_id)) == before


def test_sweep_without_system_actor_records_no_actor(
    session_factory: sessionmaker[Session],
) -> None:
    """Without a SYSTEM actor on TAU the sweep still runs, recording no actor."""
    clock = FixedClock()
    engine = WorkflowEngine(session_factory, telemetry=TelemetryBuffer(), clock=clock)
    instance_id = engine.create_instance("minimal")
    engine.import_workflow(instance_id, MINIMAL)
    worker = engine.register_actor(instance_id, "w", "Worker", "AI_AGENT")
    engine.assign_role(worker, "finish")
    uow_id = engine.instantiate(instance_id, "minimal", {})
    engine.checkout(worker, "finish")
    assert engine.sweep_zombies(clock.now).reclaimed == 0
    assert engine.sweep_zombies(clock.advance(301)).requeued == 1
    with session_factory() as session:
        rows = UOWPersistenceService().get_uow_history(session, uow_id)
    assert [(r.new_status, r.actor_id) for r in rows[-2:]] == [
        ("ZOMBIED_SOFT", None),
        ("PENDING", None),
    ]


def test_drift_at_checkout_is_recorded_as_breach(world: World, engine: Engine) -> None:
    """An attribute edited behind the engine's back stops the checkout and records the breach."""
    uow_id = world.start(invoice_id="INV-d", amount=10)
    with append_only_disabled(engine), engine.begin() as conn:
        conn.exec_driver_sql("UPDATE uow_attributes SET value = '999' WHERE key = 'amount'")
    with pytest.raises(StateDriftError) as caught:
        world.engine.checkout(world.bot, "triage")
    assert caught.value.recorded is True
    view = world.engine.get_uow(uow_id)
    assert (view.status, view.held_by) == ("FAILED_SECURITY_BREACH", None)
    assert world.history(uow_id)[-1].event_type == "SECURITY_BREACH"
