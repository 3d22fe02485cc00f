"""The join under load: 200 children, and 8 children finishing at the same instant."""

from __future__ import annotations

import threading
import uuid

import pytest
from po_world import PurchaseOrders, make_world
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.states import HistoryEvent, UOWStatus

WORKERS = 8
#: Enough children that the decomposition and the join each handle a large batch in one
#: transaction; 1,000 proved nothing more and cost 2,000 further transactions a back end.
CHILDREN = 200


@pytest.fixture
def po(session_factory: sessionmaker[Session]) -> PurchaseOrders:
    """The purchase-order world."""
    return make_world(session_factory)


def test_two_hundred_children(po: PurchaseOrders) -> None:
    """One submit creates 200 children atomically; the join counts all 200 once.

    Each line is failed by its checker (two transactions a child instead of four): the
    join then sends the order to needs_attention with every child counted.
    """
    order = po.start(*[float(i) for i in range(CHILDREN)])
    po.step("split")
    decomposed = po.history(order)[-1]
    assert decomposed.transition_metadata["decomposition"]["count"] == CHILDREN
    assert len(po.children(order)) == CHILDREN
    checker = po.actors["check_line"]
    while (view := po.engine.checkout(checker, "check_line")) is not None:
        po.engine.fail(checker, view.uow_id, "out of stock")
    view = po.engine.get_uow(order)
    assert view.interaction == "needs_attention"
    assert view.attributes["line_totals"] == [None] * CHILDREN
    joins = [h for h in po.history(order) if h.event_type == HistoryEvent.JOIN]
    assert len(joins) == 1
    assert joins[0].transition_metadata["join"]["failed"] == CHILDREN
    po.verify_clean()


@pytest.mark.parametrize("round_", range(3))
def test_eight_children_finishing_at_once_release_the_parent_exactly_once(
    po: PurchaseOrders, round_: int
) -> None:
    """Eight workers, each on its own connection, close the last eight children together."""
    order = po.start(*[float(i + round_) for i in range(WORKERS)])
    po.step("split")
    closers = []
    for i in range(WORKERS):
        actor = po.engine.register_actor(po.instance_id, f"closer-{i}", "closer", "AI_AGENT")
        po.engine.assign_role(actor, "approval")
        closers.append(actor)
    held: list[tuple[uuid.UUID, uuid.UUID]] = []
    for closer in closers:
        view = po.engine.checkout(po.actors["check_line"], "check_line")
        assert view is not None
        po.engine.submit(po.actors["check_line"], view.uow_id, {"line_total": 1.0})
        closing = po.engine.checkout(closer, "approval")
        assert closing is not None
        held.append((closer, closing.uow_id))
    barrier = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def close(actor: uuid.UUID, uow_id: uuid.UUID) -> None:
        barrier.wait()
        try:
            po.engine.submit(actor, uow_id, reasoning="line closed")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=close, args=pair) for pair in held]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {k.status for k in po.children(order)} == {UOWStatus.COMPLETED}
    joins = [h for h in po.history(order) if h.event_type == HistoryEvent.JOIN]
    assert len(joins) == 1
    assert joins[0].transition_metadata["join"]["completed"] == WORKERS
    assert po.engine.get_uow(order).interaction == "ready_for_approval"
    po.verify_clean()
