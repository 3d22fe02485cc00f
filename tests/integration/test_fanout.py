"""Decomposition and join on both back ends: children, history on both sides, the merge."""

from __future__ import annotations

import pytest
import yaml
from po_world import PURCHASE_ORDER, PurchaseOrders, make_world
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.engine.fanout import MAX_DEPTH
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.states import HistoryEvent, UOWStatus


@pytest.fixture
def po(session_factory: sessionmaker[Session]) -> PurchaseOrders:
    """The purchase-order world."""
    return make_world(session_factory)


@pytest.mark.parametrize("count", [1, 2])
def test_fan_out_and_join_release_the_parent_once(po: PurchaseOrders, count: int) -> None:
    """Each line becomes a child; when the last is back the parent moves on with the totals."""
    order = po.start(*[100.0 * (i + 1) for i in range(count)])
    assert po.step("split") == order
    kids = po.children(order)
    assert len(kids) == count
    assert {k.status for k in kids} == {UOWStatus.PENDING}
    decomposed = po.history(order)[-1]
    assert decomposed.event_type == HistoryEvent.DECOMPOSITION
    named = decomposed.transition_metadata["decomposition"]["children"]
    assert sorted(named) == sorted(str(k.uow_id) for k in kids)
    for kid in kids:
        first = po.history(kid.uow_id)[0]
        assert first.event_type == HistoryEvent.CREATED
        assert first.parent_id == order
        assert first.transition_metadata["parent"] == str(order)
    assert po.check_all_lines() == count
    joins = [h for h in po.history(order) if h.event_type == HistoryEvent.JOIN]
    assert len(joins) == 1
    assert joins[0].transition_metadata["join"]["outcome"] == "COMPLETED"
    view = po.engine.get_uow(order)
    assert view.status == UOWStatus.PENDING
    assert view.interaction == "ready_for_approval"
    assert view.attributes["line_totals"] == [100.0 * (i + 1) for i in range(count)]
    po.verify_clean()


def test_children_inherit_only_the_listed_attributes(po: PurchaseOrders) -> None:
    """A child gets po_number and currency, its line and its index, nothing else."""
    order = po.engine.instantiate(
        po.instance_id,
        "purchase_order",
        {"po_number": "PO-9", "currency": "EUR", "secret": "x", "line_items": [{"a": 1}]},
    )
    po.step("split")
    (kid,) = po.children(order)
    attrs = po.engine.get_uow(kid.uow_id).attributes
    assert attrs == {"po_number": "PO-9", "currency": "EUR", "line_item": {"a": 1}, "index": 0}


def test_a_failed_child_sends_the_parent_to_on_failed(po: PurchaseOrders) -> None:
    """One line fails: once the other is back, the order goes to needs_attention."""
    order = po.start(10.0, 20.0)
    po.step("split")
    checker = po.actors["check_line"]
    first = po.engine.checkout(checker, "check_line")
    assert first is not None
    po.engine.fail(checker, first.uow_id, "SKU discontinued")
    assert po.engine.get_uow(order).interaction == "awaiting_lines"
    assert po.check_all_lines() == 1
    view = po.engine.get_uow(order)
    assert view.interaction == "needs_attention"
    join = po.history(order)[-1].transition_metadata["join"]
    assert (join["completed"], join["failed"], join["outcome"]) == (1, 1, "FAILED")
    with pytest.raises(InvalidValueError, match="already counted"):
        po.engine.remediate(po.actors["remediation"], first.uow_id, to_interaction="line_checks")
    po.verify_clean()


def test_the_join_role_cannot_be_checked_out(po: PurchaseOrders) -> None:
    """Nobody takes a parent out of a join: the engine releases it."""
    actor = po.engine.register_actor(po.instance_id, "joiner", "joiner", "AI_AGENT")
    po.engine.assign_role(actor, "consolidate")
    po.start(1.0)
    po.step("split")
    with pytest.raises(InvalidValueError, match="is a join"):
        po.engine.checkout(actor, "consolidate")


def test_bad_decomposition_input_writes_nothing(po: PurchaseOrders) -> None:
    """A missing or empty list refuses the submit; the order stays with its holder."""
    order = po.engine.instantiate(po.instance_id, "purchase_order", {"po_number": "PO-2"})
    view = po.engine.checkout(po.actors["split"], "split")
    assert view is not None
    with pytest.raises(InvalidValueError, match="must be a list attribute"):
        po.engine.submit(po.actors["split"], order)
    with pytest.raises(InvalidValueError, match="list is empty"):
        po.engine.submit(po.actors["split"], order, {"line_items": []})
    assert po.engine.get_uow(order).status == UOWStatus.ACTIVE
    assert po.children(order) == []


def test_a_merge_conflict_fails_the_parent(session_factory: sessionmaker[Session]) -> None:
    """Two children reporting different values for a merged key: the parent fails, named."""
    data = yaml.safe_load(PURCHASE_ORDER)
    for component in data["components"]:
        for guardian in component.get("guardians", []):
            if guardian["name"] == "all_lines_back":
                guardian["config"]["join"]["merge"] = ["warehouse"]
    po = make_world(session_factory, yaml.safe_dump(data))
    order = po.start(1.0, 2.0)
    po.step("split")
    for warehouse in ("north", "south"):
        view = po.engine.checkout(po.actors["check_line"], "check_line")
        assert view is not None
        po.engine.submit(
            po.actors["check_line"], view.uow_id, {"line_total": 1, "warehouse": warehouse}
        )
        po.step("approval")
    view = po.engine.get_uow(order)
    assert view.status == UOWStatus.FAILED
    last = po.history(order)[-1]
    assert last.event_type == HistoryEvent.JOIN
    assert "'warehouse' has 2 different values" in last.transition_metadata["join"]["conflict"]
    po.verify_clean()


def test_heterogeneous_and_nested_decomposition(session_factory: sessionmaker[Session]) -> None:
    """Fixed kinds start where each says; nesting deeper than the limit is refused."""
    po = make_world(session_factory, _nested(kinds=True))
    order = po.engine.instantiate(po.instance_id, "purchase_order", {"po_number": "P"})
    po.step("split")
    kinds = sorted(po.engine.get_uow(k.uow_id).attributes["kind"] for k in po.children(order))
    assert kinds == ["legal", "price"]
    # Recursion: a child is split again until the depth limit refuses.
    uow = po.children(order)[0].uow_id
    for _ in range(MAX_DEPTH - 1):
        po.step("split")
        uow = po.children(uow)[0].uow_id
    view = po.engine.checkout(po.actors["split"], "split")
    assert view is not None
    with pytest.raises(InvalidValueError, match="levels deep"):
        po.engine.submit(po.actors["split"], view.uow_id)


def _nested(kinds: bool) -> str:
    data = yaml.safe_load(PURCHASE_ORDER)
    split = next(r for r in data["roles"] if r["name"] == "split")
    split["decompose"] = {
        "kinds": [
            {"kind": "legal", "start": "submitted"},
            {"kind": "price", "start": "line_checks"},
        ]
    }
    del data["components"][0]  # the heterogeneous children feed `submitted` again
    data["roles"] = [r for r in data["roles"] if r["name"] != "intake"]
    data["roles"].append({"name": "intake", "type": "ALPHA"})
    data["interactions"].append({"name": "start"})
    data["components"].append({"role": "intake", "interaction": "start", "direction": "OUTBOUND"})
    data["components"].append({"role": "split", "interaction": "start", "direction": "INBOUND"})
    return yaml.safe_dump(data)
