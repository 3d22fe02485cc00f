"""Pilot oversight on both back ends: held moves, pause, clarification, waiver, tampering."""

from __future__ import annotations

import uuid

import pytest
from po_world import PurchaseOrders, make_world
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.errors import (
    InstancePausedError,
    InvalidTransitionError,
    InvalidValueError,
    NotAuthorizedError,
)
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import AdminEvent
from chameleon_workflow.states import HistoryEvent, UOWStatus
from chameleon_workflow.testing import append_only_disabled


@pytest.fixture
def po(session_factory: sessionmaker[Session]) -> PurchaseOrders:
    """The purchase-order world."""
    return make_world(session_factory)


def _order_ready(po: PurchaseOrders, *totals: float) -> uuid.UUID:
    order = po.start(*totals)
    po.step("split")
    po.check_all_lines()
    return order


def _park_large_order(po: PurchaseOrders) -> uuid.UUID:
    """Bring an order of 12,000 to approval: the approver's submit is held for a pilot."""
    order = _order_ready(po, 7000.0, 5000.0)
    view = po.engine.checkout(po.actors["approval"], "approval")
    assert view is not None
    assert view.uow_id == order
    po.engine.submit(po.actors["approval"], order, {"total": 12000.0}, "totals checked")
    return order


def test_a_held_move_moves_only_for_a_pilot(po: PurchaseOrders) -> None:
    """Parked: no checkout, submit, fail or remediation moves it; a non-pilot cannot approve."""
    order = _park_large_order(po)
    view = po.engine.get_uow(order)
    assert view.status == UOWStatus.PENDING_PILOT_APPROVAL
    assert view.held_by is None
    held = po.history(order)[-1].transition_metadata["parked"]
    assert (held["rule"], held["status"]) == ("large_order", "COMPLETED")
    approver = po.actors["approval"]
    assert po.engine.checkout(approver, "approval") is None
    with pytest.raises(NotAuthorizedError):
        po.engine.submit(approver, order)
    with pytest.raises(NotAuthorizedError):
        po.engine.fail(approver, order, "give up")
    with pytest.raises(InvalidTransitionError):
        po.engine.remediate(po.actors["remediation"], order)
    with pytest.raises(NotAuthorizedError, match="is not a pilot"):
        po.engine.oversight.approve(po.actors["buyer"], order, "looks fine")
    other = po.engine.create_instance("elsewhere")
    stranger = po.engine.register_actor(other, "pilot", "other pilot", "PILOT")
    with pytest.raises(NotAuthorizedError, match="is not a pilot"):
        po.engine.oversight.approve(stranger, order, "looks fine")
    with pytest.raises(InvalidValueError, match="reasoning"):
        po.engine.oversight.approve(po.pilot, order, "  ")
    (queued,) = po.engine.oversight.queue(po.pilot, po.instance_id)
    assert (queued.uow_id, queued.kind, queued.rule) == (order, "approval", "large_order")
    done = po.engine.oversight.approve(po.pilot, order, "budget confirmed with finance")
    assert done.status == UOWStatus.COMPLETED
    last = po.history(order)[-1]
    assert last.event_type == HistoryEvent.PILOT_APPROVAL
    assert (last.actor_id, last.reasoning) == (po.pilot, "budget confirmed with finance")
    assert po.engine.oversight.queue(po.pilot, po.instance_id) == []
    po.verify_clean()


def test_a_small_order_is_not_held(po: PurchaseOrders) -> None:
    """Below the threshold the approver completes the order itself."""
    order = _order_ready(po, 10.0)
    po.step("approval", total=10.0)
    assert po.engine.get_uow(order).status == UOWStatus.COMPLETED


def test_a_rejection_goes_to_the_rules_interaction(po: PurchaseOrders) -> None:
    """Rejected: back to needs_attention with the pilot's reason; a buyer can pick it up."""
    order = _park_large_order(po)
    view = po.engine.oversight.reject(po.pilot, order, "split the order in two")
    assert (view.status, view.interaction) == (UOWStatus.PENDING, "needs_attention")
    last = po.history(order)[-1]
    assert last.event_type == HistoryEvent.PILOT_REJECTION
    assert last.reasoning == "split the order in two"
    assert po.step("buyer") == order
    po.verify_clean()


def test_a_rejection_to_failed(po: PurchaseOrders) -> None:
    """Rejected to FAILED when asked: the order waits for remediation."""
    order = _park_large_order(po)
    view = po.engine.oversight.reject(po.pilot, order, "fraud suspected", to_interaction="failed")
    assert (view.status, view.interaction) == (UOWStatus.FAILED, "failed")
    assert po.history(order)[-1].event_type == HistoryEvent.PILOT_REJECTION
    with pytest.raises(InvalidValueError, match="not waiting for a pilot"):
        po.engine.oversight.reject(po.pilot, order, "again")


def test_pause_during_checkout(po: PurchaseOrders) -> None:
    """Paused: waiting UOWs park, checkouts are refused, holders finish; resume restores."""
    held_order = po.start(1.0)
    waiting = po.start(2.0, po="PO-2")
    view = po.engine.checkout(po.actors["split"], "split")
    assert view is not None
    assert view.uow_id == held_order
    assert po.engine.oversight.pause(po.pilot, po.instance_id, "agent misbehaving") == 1
    assert po.engine.get_uow(waiting).status == UOWStatus.PAUSED
    pause_row = po.history(waiting)[-1]
    assert (pause_row.event_type, pause_row.actor_id) == (HistoryEvent.PAUSE, po.pilot)
    with pytest.raises(InstancePausedError):
        po.engine.checkout(po.actors["split"], "split")
    po.engine.heartbeat(po.actors["split"], held_order)
    po.engine.submit(po.actors["split"], held_order)  # the holder finishes its step
    with pytest.raises(InvalidValueError, match="already"):
        po.engine.oversight.pause(po.pilot, po.instance_id, "again")
    assert po.engine.oversight.resume(po.pilot, po.instance_id, "fixed the prompt") == 1
    assert po.engine.get_uow(waiting).status == UOWStatus.PENDING
    assert po.history(waiting)[-1].event_type == HistoryEvent.RESUME
    assert po.step("split") == waiting
    with po.factory() as session:
        switches = session.execute(
            select(AdminEvent.action, AdminEvent.actor_id, AdminEvent.details).where(
                AdminEvent.action.in_(("INSTANCE_PAUSED", "INSTANCE_RESUMED"))
            )
        ).all()
    assert [tuple(s) for s in switches] == [
        ("INSTANCE_PAUSED", po.pilot, {"reasoning": "agent misbehaving", "uows": 1}),
        ("INSTANCE_RESUMED", po.pilot, {"reasoning": "fixed the prompt", "uows": 1}),
    ]
    po.verify_clean()


def test_clarification_question_and_answer(po: PurchaseOrders) -> None:
    """A holder asks; the UOW waits; the pilot's answer comes back to the same holder."""
    po.start(1.0)
    view = po.engine.checkout(po.actors["split"], "split")
    assert view is not None
    asked = po.engine.oversight.ask(po.actors["split"], view.uow_id, "Is SKU-0 a service?")
    assert asked.status == UOWStatus.PENDING_PILOT_APPROVAL
    (queued,) = po.engine.oversight.queue(po.pilot, po.instance_id)
    assert (queued.kind, queued.question, queued.asked_by) == (
        "clarification",
        "Is SKU-0 a service?",
        po.actors["split"],
    )
    with pytest.raises(InvalidValueError, match="not an approval"):
        po.engine.oversight.approve(po.pilot, view.uow_id, "ok")
    back = po.engine.oversight.answer(po.pilot, view.uow_id, "No, goods.")
    assert (back.status, back.held_by) == (UOWStatus.ACTIVE, po.actors["split"])
    assert back.attributes["clarification"]["answer"] == "No, goods."
    rows = [h for h in po.history(view.uow_id) if h.event_type == HistoryEvent.CLARIFICATION]
    assert [h.actor_id for h in rows] == [po.actors["split"], po.pilot]
    po.engine.submit(po.actors["split"], view.uow_id)
    po.verify_clean()


def test_a_waiver_lets_a_refused_uow_through_with_its_justification(po: PurchaseOrders) -> None:
    """A guardian refuses a line; the pilot waives it with a justification; it goes through.

    The other line is still out, so the join has not counted the refused one yet.
    """
    order = po.start(5.0, 6.0)
    po.step("split")
    line = po.engine.checkout(po.actors["check_line"], "check_line")
    assert line is not None
    po.engine.submit(po.actors["check_line"], line.uow_id, {"line_total": -5.0})
    assert po.engine.checkout(po.actors["approval"], "approval") is None  # refused: FAILED
    assert po.engine.get_uow(line.uow_id).status == UOWStatus.FAILED
    with pytest.raises(InvalidValueError, match="justification"):
        po.engine.oversight.waive(po.pilot, line.uow_id, "")
    reason = "credit note: a negative line is expected here"
    waived = po.engine.oversight.waive(po.pilot, line.uow_id, reason)
    assert (waived.status, waived.interaction) == (UOWStatus.PENDING, "line_checked")
    row = po.history(line.uow_id)[-1]
    assert row.event_type == HistoryEvent.WAIVER
    assert (row.actor_id, row.reasoning) == (po.pilot, reason)
    assert row.transition_metadata["waiver"]["guardian"] == "line_check"
    closing = po.engine.checkout(po.actors["approval"], "approval")
    assert closing is not None
    assert closing.uow_id == line.uow_id
    po.engine.submit(po.actors["approval"], line.uow_id)
    assert po.check_all_lines() == 1
    assert po.engine.get_uow(order).interaction == "ready_for_approval"
    with pytest.raises(InvalidValueError, match="nothing to waive"):
        po.engine.oversight.waive(po.pilot, order, reason)
    po.verify_clean()


@pytest.mark.parametrize("target", ["pilot event", "child"])
def test_tampering_with_a_pilot_event_or_a_child_is_found(
    po: PurchaseOrders, engine: Engine, target: str
) -> None:
    """Editing the pilot's reasoning, or a child's first row, breaks verification."""
    order = _park_large_order(po)
    po.engine.oversight.approve(po.pilot, order, "budget confirmed")
    po.verify_clean()
    if target == "pilot event":
        where = "event_type = 'PILOT_APPROVAL'"
    else:
        where = f"parent_id IS NOT NULL AND sequence = 1 AND uow_id <> '{order}'"
    with append_only_disabled(engine), engine.begin() as conn:
        changed = conn.execute(
            text(f"UPDATE uow_history SET reasoning = 'nothing to see' WHERE {where}")
        ).rowcount
    assert changed >= 1
    with po.factory() as session:
        report = UOWPersistenceService().verify_database(session)
    assert not report.ok
