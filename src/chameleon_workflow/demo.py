"""The invoice-approval demo: simulated actors drive invoices through a real workflow.

AI agents triage, a human reviews large or malformed invoices (fixing text amounts,
failing invoices without a purchase order), EPSILON adds the missing purchase order and
sends them back, an approval agent finishes them (its CERBERUS gate refuses amounts over
the limit), and one triage agent "dies" holding an invoice so the TAU sweep reclaims it.
Every path is decided by the invoice's own attributes, so a seed gives the same summary
whatever order the queues hand invoices out in.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.resources import files
from types import MappingProxyType
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.audit.report import VerificationReport
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.engine.views import UOWView
from chameleon_workflow.models import InteractionLog, UnitsOfWork, UnitsOfWorkHistory, utcnow
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

Progress = Callable[[int, int], None]
WORKFLOW = "invoice_approval"
REVIEW_LIMIT = 10_000
#: Flush telemetry once this many entries wait, so a long demo never drops any.
FLUSH_AT = 5_000


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a demo run did: final statuses, ledger and log volume, speed, verification."""

    instance_id: uuid.UUID
    uows: int
    uows_by_status: Mapping[str, int]
    transitions: int
    logs_by_type: Mapping[str, int]
    elapsed_s: float
    zombies_reclaimed: int
    verification: VerificationReport

    @property
    def transitions_per_second(self) -> float:
        """Return history rows written per second of driving."""
        return self.transitions / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class _Cast:
    """The simulated actors, by job."""

    triage: list[uuid.UUID]
    reviewer: uuid.UUID
    approver: uuid.UUID
    fixer: uuid.UUID


@dataclass
class _Run:
    """Mutable state of one demo run."""

    engine: WorkflowEngine
    instance_id: uuid.UUID
    cast: _Cast
    total: int
    progress: Progress | None
    finished: int = 0
    zombie: uuid.UUID | None = None
    reclaimed: int = 0
    awaiting_approval: set[uuid.UUID] = field(default_factory=set)
    failed_for_po: list[uuid.UUID] = field(default_factory=list)

    def report(self) -> None:
        """Tell the progress callback how far we are."""
        if self.progress is not None:
            self.progress(self.finished, self.total)


def run_demo(
    session_factory: sessionmaker[Session],
    *,
    uows: int = 300,
    seed: int = 7,
    progress: Progress | None = None,
) -> DemoSummary:
    """Drive ``uows`` invoices through the invoice workflow, then audit and verify the result."""
    started = time.perf_counter()
    engine = WorkflowEngine(session_factory, telemetry=TelemetryBuffer(max_queue_size=4 * FLUSH_AT))
    instance_id = engine.create_instance(f"invoice-demo-{uuid.uuid4().hex[:8]}")
    source = (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()
    engine.import_workflow(instance_id, source)
    run = _Run(engine, instance_id, _register_cast(engine, instance_id), uows, progress)
    intake = engine.register_actor(instance_id, "intake-gateway", "Intake gateway", "SYSTEM")
    for number, attributes in enumerate(_invoices(uows, seed)):
        engine.instantiate(instance_id, WORKFLOW, attributes, actor_id=intake)
        if number % 100 == 0:
            _flush_if_full(engine)
    run.report()
    _drive(run)
    engine.close_telemetry()
    elapsed = time.perf_counter() - started
    return _summarize(session_factory, engine, run, elapsed)


def _register_cast(engine: WorkflowEngine, instance_id: uuid.UUID) -> _Cast:
    def actor(key: str, name: str, kind: str, role: str) -> uuid.UUID:
        actor_id = engine.register_actor(instance_id, key, name, kind, {"demo": True})
        engine.assign_role(actor_id, role)
        return actor_id

    triage = [actor(f"triage-agent-{n}", f"Triage agent {n}", "AI_AGENT", "triage") for n in (1, 2)]
    actor("reaper", "Zombie reaper", "SYSTEM", "reaper")
    return _Cast(
        triage=triage,
        reviewer=actor("alice", "Alice (accounts payable)", "HUMAN", "manual_review"),
        approver=actor("approval-agent", "Approval agent", "AI_AGENT", "approval"),
        fixer=actor("bob", "Bob (remediation)", "HUMAN", "remediation"),
    )


def _invoices(count: int, seed: int) -> list[dict[str, Any]]:
    """Generate invoices: mostly routine, some large, some malformed, a few over the limit."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable simulation, not a secret
    # The first few cover every path, so even a tiny run shows each of them.
    draws = [0.0, 0.1, 0.3, 0.2]
    return [_invoice(n, draws[n] if n < len(draws) else rng.random(), rng) for n in range(count)]


def _invoice(n: int, draw: float, rng: random.Random) -> dict[str, Any]:
    invoice: dict[str, Any] = {"invoice_id": f"INV-{n + 1:06d}", "vendor": rng.choice(_VENDORS)}
    if draw < 0.08:
        invoice["amount"] = f"{rng.uniform(50, 9_000):,.2f}"  # text: the router's error case
    elif draw < 0.28:
        invoice["amount"] = rng.randint(REVIEW_LIMIT + 1, 90_000)
    elif draw < 0.32:
        invoice["amount"] = rng.randint(1_500_000, 3_000_000)  # CERBERUS refuses these
    else:
        invoice["amount"] = round(rng.uniform(10, REVIEW_LIMIT), 2)
    # About a quarter of the large invoices arrive without a purchase order.
    if n != 1 and (draw >= 0.32 or n < 4 or rng.random() >= 0.25):
        invoice["po_number"] = f"PO-{rng.randint(10_000, 99_999)}"
    return invoice


_VENDORS = ("Acme Corp", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises")


def _drive(run: _Run) -> None:
    """Work every queue until nothing moves; reclaim the dead worker's invoice once."""
    while True:
        moved = _triage(run) + _review(run) + _approve(run) + _remediate(run)
        _flush_if_full(run.engine)
        if moved:
            continue
        if run.zombie is None or run.reclaimed:
            return
        # Sweep "later": as if the zombie threshold had passed since the worker died.
        later = utcnow() + timedelta(seconds=run.engine.settings.zombie_threshold_s + 1)
        run.reclaimed = run.engine.sweep_zombies(later, run.instance_id).reclaimed


def _triage(run: _Run) -> int:
    moved = 0
    while True:
        agent = run.cast.triage[moved % len(run.cast.triage)]
        view = run.engine.checkout(agent, "triage")
        if view is None:
            return moved
        moved += 1
        if run.zombie is None and agent == run.cast.triage[-1]:
            # This agent crashes holding the invoice: no submit, no heartbeat, ever.
            run.zombie = view.uow_id
            run.cast.triage.pop()
            continue
        _submitted(run, run.engine.submit(agent, view.uow_id, reasoning=_triage_note(view)))


def _triage_note(view: UOWView) -> str:
    amount = view.attributes.get("amount")
    return f"triaged {view.attributes.get('invoice_id')} ({amount!r})"


def _review(run: _Run) -> int:
    moved, reviewer = 0, run.cast.reviewer
    while (view := run.engine.checkout(reviewer, "manual_review")) is not None:
        moved += 1
        run.engine.heartbeat(reviewer, view.uow_id)  # a human takes a while
        amount = view.attributes.get("amount")
        if isinstance(amount, str):
            fixed = {"amount": float(amount.replace(",", ""))}
            done = run.engine.submit(reviewer, view.uow_id, fixed, "amount re-keyed as a number")
        elif "po_number" not in view.attributes:
            run.engine.fail(reviewer, view.uow_id, "no purchase order on a large invoice")
            run.failed_for_po.append(view.uow_id)
            continue
        else:
            done = run.engine.submit(reviewer, view.uow_id, {"reviewed_by": "alice"}, "approved")
        _submitted(run, done)
    return moved


def _approve(run: _Run) -> int:
    moved = 0
    while (view := run.engine.checkout(run.cast.approver, "approval")) is not None:
        moved += 1
        run.engine.submit(run.cast.approver, view.uow_id, reasoning="approved for payment")
        run.finished += 1
        run.awaiting_approval.discard(view.uow_id)
        run.report()
    if run.awaiting_approval:
        # Whatever is left was refused by the approval gate and now waits at EPSILON for good.
        run.finished += len(run.awaiting_approval)
        run.awaiting_approval.clear()
        run.report()
    return moved


def _remediate(run: _Run) -> int:
    moved = 0
    while run.failed_for_po:
        uow_id = run.failed_for_po.pop(0)
        fix = {"po_number": f"PO-R{uow_id.hex[:6]}"}
        run.engine.remediate(run.cast.fixer, uow_id, fix, reasoning="purchase order obtained")
        moved += 1
    return moved


def _submitted(run: _Run, view: UOWView) -> None:
    if view.interaction == "ready_for_approval":
        run.awaiting_approval.add(view.uow_id)


def _flush_if_full(engine: WorkflowEngine) -> None:
    if engine.telemetry.get_pending_count() >= FLUSH_AT:
        engine.flush_telemetry()


def _summarize(
    factory: sessionmaker[Session], engine: WorkflowEngine, run: _Run, elapsed: float
) -> DemoSummary:
    instance_id = run.instance_id
    with factory() as session:
        statuses = _grouped(session, UnitsOfWork.status, UnitsOfWork.instance_id, instance_id)
        logs = _grouped(session, InteractionLog.log_type, InteractionLog.instance_id, instance_id)
        transitions = session.scalar(
            select(func.count()).where(UnitsOfWorkHistory.instance_id == instance_id)
        )
        report = engine.persistence.verify_database(session, instance_id)
    return DemoSummary(
        instance_id=instance_id,
        uows=run.total,
        uows_by_status=statuses,
        transitions=transitions or 0,
        logs_by_type=logs,
        elapsed_s=elapsed,
        zombies_reclaimed=run.reclaimed,
        verification=report,
    )


def _grouped(
    session: Session, column: Any, scope: Any, instance_id: uuid.UUID
) -> Mapping[str, int]:
    rows = session.execute(
        select(column, func.count()).where(scope == instance_id).group_by(column)
    )
    return MappingProxyType(
        {str(key): count for key, count in sorted(rows, key=lambda r: str(r[0]))}
    )
