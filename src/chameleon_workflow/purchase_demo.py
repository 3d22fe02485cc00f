"""The purchase-order demo: fan-out, join and a pilot overseeing simulated agents.

Each order is split into one child per line item; line checkers (AI agents) price each
line in parallel (a discontinued item fails its line; a credit note is a negative line
the approval gate refuses until the pilot waives it); the join collects the line totals
and sends the order on. The approver computes the total: above 10,000 the workflow holds
the order for the pilot, who approves it, or first rejects very large ones back to the
buyer for a budget note. A buyer (a person) repairs orders with failed lines. Along the
way the split agent asks the pilot a question, and the pilot pauses the instance (every
new order waits, PAUSED) for a spot check before the agents start, then resumes it.
The seed decides everything, so a run is repeatable.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.demo import FLUSH_AT, DemoSummary, Progress, summarize
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.engine.views import UOWView
from chameleon_workflow.models import UnitsOfWorkHistory
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

WORKFLOW = "purchase_order"
#: The pilot sends orders above this back to the buyer once, for a budget note.
BUDGET_LIMIT = 50_000


@dataclass
class _Run:
    engine: WorkflowEngine
    instance_id: uuid.UUID
    actors: dict[str, uuid.UUID]
    total: int
    progress: Progress | None
    finished: int = 0
    credit_lines: list[uuid.UUID] = field(default_factory=list)
    asked: bool = False

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.finished, self.total)


def run_purchase_demo(
    session_factory: sessionmaker[Session],
    *,
    orders: int = 20,
    seed: int = 7,
    progress: Progress | None = None,
) -> DemoSummary:
    """Drive ``orders`` purchase orders through the workflow, then audit and verify them."""
    started = time.perf_counter()
    engine = WorkflowEngine(session_factory, telemetry=TelemetryBuffer(max_queue_size=4 * FLUSH_AT))
    instance_id = engine.create_instance(f"purchase-demo-{uuid.uuid4().hex[:8]}")
    source = (files("chameleon_workflow") / "examples" / "purchase_order.yaml").read_text()
    engine.import_workflow(instance_id, source)
    run = _Run(engine, instance_id, _cast(engine, instance_id), orders, progress)
    for attributes in _orders(orders, seed):
        engine.instantiate(instance_id, WORKFLOW, attributes, actor_id=run.actors["intake"])
    run.report()
    # The pilot holds the new orders for a spot check before any agent starts on them.
    engine.oversight.pause(run.actors["pilot"], instance_id, "spot check of the new orders")
    engine.oversight.resume(run.actors["pilot"], instance_id, "spot check done")
    while _split(run) + _check(run) + _close(run) + _pilot(run) + _buyer(run):
        if engine.telemetry.get_pending_count() >= FLUSH_AT:
            engine.flush_telemetry()
    engine.flush_telemetry()
    elapsed = time.perf_counter() - started
    return summarize(session_factory, engine, instance_id, orders, elapsed)


def event_counts(factory: sessionmaker[Session], instance_id: uuid.UUID) -> dict[str, int]:
    """Count a demo instance's history rows by event type (fan-out, join, pilot actions)."""
    with factory() as session:
        rows = session.execute(
            select(UnitsOfWorkHistory.event_type, func.count())
            .where(UnitsOfWorkHistory.instance_id == instance_id)
            .group_by(UnitsOfWorkHistory.event_type)
        )
        return {str(kind): count for kind, count in sorted(rows, key=lambda r: str(r[0]))}


def _cast(engine: WorkflowEngine, instance_id: uuid.UUID) -> dict[str, uuid.UUID]:
    cast = {}
    for key, name, kind, role in (
        ("intake", "Order gateway", "SYSTEM", None),
        ("split", "Order splitter", "AI_AGENT", "split"),
        ("check_line", "Line checker", "AI_AGENT", "check_line"),
        ("approval", "Approval agent", "AI_AGENT", "approval"),
        ("buyer", "Carol (purchasing)", "HUMAN", "buyer"),
        ("pilot", "Pat (pilot)", "PILOT", None),
    ):
        cast[key] = engine.register_actor(instance_id, key, name, kind, {"demo": True})
        if role is not None:
            engine.assign_role(cast[key], role)
    return cast


def _orders(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - a repeatable simulation, not a secret
    orders = []
    for n in range(count):
        lines = [
            {"sku": f"SKU-{rng.randint(100, 999)}", "quantity": rng.randint(1, 20),
             "unit_price": round(rng.uniform(5, 2_500), 2)}
            for _ in range(rng.randint(1, 5))
        ]  # fmt: skip
        if n == 1 or (n > 3 and rng.random() < 0.1):
            lines[0]["discontinued"] = True
        if n == 2 or (n > 3 and rng.random() < 0.05):
            lines.insert(0, {"sku": "CREDIT", "quantity": 1, "unit_price": -150.0})
        orders.append({"po_number": f"PO-{n + 1:05d}", "currency": "EUR", "line_items": lines})
    return orders


def _split(run: _Run) -> int:
    moved, agent = 0, run.actors["split"]
    while (view := run.engine.checkout(agent, "split")) is not None:
        moved += 1
        if not run.asked:
            run.asked = True
            run.engine.oversight.ask(agent, view.uow_id, "Should one supplier's lines be merged?")
            run.engine.oversight.answer(run.actors["pilot"], view.uow_id, "No: one line each.")
        run.engine.submit(agent, view.uow_id, reasoning="one child per line item")
    return moved


def _check(run: _Run) -> int:
    moved, agent = 0, run.actors["check_line"]
    while (view := run.engine.checkout(agent, "check_line")) is not None:
        moved += 1
        item = view.attributes["line_item"]
        if item.get("discontinued"):
            run.engine.fail(agent, view.uow_id, f"{item['sku']} is discontinued")
            continue
        total = round(item["quantity"] * item["unit_price"], 2)
        if total < 0:
            run.credit_lines.append(view.uow_id)
        run.engine.submit(agent, view.uow_id, {"line_total": total}, "priced from the list")
    return moved


def _close(run: _Run) -> int:
    """Close checked lines and approve orders; the pilot waives a refused credit line at once.

    The approval gate refuses a negative line when it is checked out (it goes to FAILED);
    the pilot waives it before the next line of its order is closed, so the order's join
    is still waiting for it.
    """
    moved, agent = 0, run.actors["approval"]
    while (view := run.engine.checkout(agent, "approval")) is not None:
        moved += 1
        _waive_refused(run)
        if "line_item" in view.attributes:
            run.engine.submit(agent, view.uow_id, reasoning="line closed")
            continue
        totals = [t for t in view.attributes.get("line_totals", []) if t is not None]
        done = run.engine.submit(agent, view.uow_id, {"total": round(sum(totals), 2)}, "approved")
        _finished(run, done)
    _waive_refused(run)
    return moved


def _waive_refused(run: _Run) -> None:
    for uow_id in list(run.credit_lines):
        if run.engine.get_uow(uow_id).status == "FAILED":
            run.credit_lines.remove(uow_id)
            run.engine.oversight.waive(
                run.actors["pilot"], uow_id, "a credit note: a negative line is expected"
            )


def _pilot(run: _Run) -> int:
    moved, pilot = 0, run.actors["pilot"]
    for uow in run.engine.oversight.queue(pilot, run.instance_id):
        moved += 1
        total = uow.attributes.get("total", 0)
        if total > BUDGET_LIMIT and "budget_note" not in uow.attributes:
            run.engine.oversight.reject(pilot, uow.uow_id, "over budget: add a budget note")
        else:
            _finished(run, run.engine.oversight.approve(pilot, uow.uow_id, "within budget"))
    return moved


def _buyer(run: _Run) -> int:
    moved, buyer = 0, run.actors["buyer"]
    while (view := run.engine.checkout(buyer, "buyer")) is not None:
        moved += 1
        totals = view.attributes.get("line_totals", [])
        changes: dict[str, Any] = {"line_totals": [t for t in totals if t is not None]}
        if view.attributes.get("total", 0) > BUDGET_LIMIT:
            changes["budget_note"] = "approved by the department head"
        run.engine.submit(buyer, view.uow_id, changes, "order repaired by purchasing")
    return moved


def _finished(run: _Run, view: UOWView) -> None:
    if view.status == "COMPLETED":
        run.finished += 1
        run.report()
