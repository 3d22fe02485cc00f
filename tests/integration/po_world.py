"""A purchase-order world for fan-out, join and oversight tests: engine, instance, actors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork, UnitsOfWorkHistory
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

PURCHASE_ORDER = (files("chameleon_workflow") / "examples" / "purchase_order.yaml").read_text()


def lines(*totals: float) -> list[dict[str, Any]]:
    """Return line items whose unit prices make these totals (quantity 1)."""
    return [{"sku": f"SKU-{i}", "quantity": 1, "unit_price": t} for i, t in enumerate(totals)]


@dataclass
class PurchaseOrders:
    """An instance with the purchase-order workflow and one actor per role, and a pilot."""

    engine: WorkflowEngine
    factory: sessionmaker[Session]
    instance_id: uuid.UUID
    actors: dict[str, uuid.UUID]
    pilot: uuid.UUID

    def start(self, *totals: float, po: str = "PO-1") -> uuid.UUID:
        """Instantiate an order with one line per total."""
        attrs = {"po_number": po, "currency": "EUR", "line_items": lines(*totals)}
        return self.engine.instantiate(self.instance_id, "purchase_order", attrs)

    def step(self, role: str, **attributes: Any) -> uuid.UUID:
        """Check out one UOW for ``role`` and submit it; return its id."""
        view = self.engine.checkout(self.actors[role], role)
        assert view is not None, f"nothing to check out for {role}"
        self.engine.submit(self.actors[role], view.uow_id, attributes or None, f"{role} done")
        return view.uow_id

    def check_all_lines(self) -> int:
        """Check every waiting line (line_total = unit price) and close it; return how many."""
        done = 0
        while (view := self.engine.checkout(self.actors["check_line"], "check_line")) is not None:
            total = view.attributes["line_item"]["unit_price"]
            self.engine.submit(self.actors["check_line"], view.uow_id, {"line_total": total})
            closing = self.engine.checkout(self.actors["approval"], "approval")
            assert closing is not None
            self.engine.submit(self.actors["approval"], closing.uow_id)
            done += 1
        return done

    def children(self, parent: uuid.UUID) -> list[UnitsOfWork]:
        """Return a UOW's children."""
        with self.factory() as session:
            query = select(UnitsOfWork).where(UnitsOfWork.parent_id == parent)
            return list(session.scalars(query))

    def history(self, uow_id: uuid.UUID) -> list[UnitsOfWorkHistory]:
        """Return a UOW's history rows in order."""
        with self.factory() as session:
            return UOWPersistenceService().get_uow_history(session, uow_id)

    def verify_clean(self) -> None:
        """Assert that verification of the whole database finds nothing."""
        with self.factory() as session:
            report = UOWPersistenceService().verify_database(session)
        assert report.ok, report.findings


def make_world(factory: sessionmaker[Session], workflow: str = PURCHASE_ORDER) -> PurchaseOrders:
    """Import the workflow into a new instance and register an actor per role and a pilot."""
    engine = WorkflowEngine(factory, telemetry=TelemetryBuffer())
    instance_id = engine.create_instance("orders")
    engine.import_workflow(instance_id, workflow)
    actors = {}
    for role, kind in (
        ("split", "AI_AGENT"),
        ("check_line", "AI_AGENT"),
        ("buyer", "HUMAN"),
        ("approval", "AI_AGENT"),
        ("remediation", "HUMAN"),
    ):
        actor = engine.register_actor(instance_id, role, role, kind)
        engine.assign_role(actor, role)
        actors[role] = actor
    pilot = engine.register_actor(instance_id, "pilot", "Pat the pilot", "PILOT")
    return PurchaseOrders(engine, factory, instance_id, actors, pilot)
