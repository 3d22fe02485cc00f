"""End-to-end engine benchmarks: the step rate (checkout + submit, with history and telemetry).

One step is one ``checkout`` and one ``submit`` of the invoice workflow's triage role:
two transactions, two transitions with their history rows, a gate decision, a routing
decision and two STATE_TRANSITION log rows (flushed inside the timed window). Measured
with one worker on SQLite and PostgreSQL, and with several worker processes (4 by
default) on PostgreSQL, each with its own engine and connection pool, all claiming from
one queue.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Sequence
from importlib.resources import files
from multiprocessing.synchronize import Barrier
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.benchmarks.figures import Figure
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import ConcurrencyError
from chameleon_workflow.schema import upgrade_database
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

ROLE = "triage"


def invoice_source() -> str:
    """Return the invoice-approval example workflow (YAML text)."""
    return (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()


def seed_queue(
    factory: sessionmaker[Session], uows: int, workers: int
) -> tuple[WorkflowEngine, list[uuid.UUID]]:
    """Import the invoice workflow into a fresh instance, queue ``uows`` routine invoices.

    Returns the engine and one triage actor id per worker.
    """
    engine = WorkflowEngine(factory, telemetry=TelemetryBuffer(max_queue_size=8 * uows + 1000))
    instance_id = engine.create_instance(f"bench-{uuid.uuid4().hex[:8]}")
    engine.import_workflow(instance_id, invoice_source())
    actors = []
    for n in range(workers):
        actor_id = engine.register_actor(instance_id, f"worker-{n}", f"Worker {n}", "AI_AGENT")
        engine.assign_role(actor_id, ROLE)
        actors.append(actor_id)
    for n in range(uows):
        engine.instantiate(instance_id, "invoice_approval", {"invoice_id": f"B-{n}", "amount": n})
    engine.flush_telemetry()
    return engine, actors


def drain(engine: WorkflowEngine, actor_id: uuid.UUID, role: str = ROLE) -> list[uuid.UUID]:
    """Check out and submit until the role's queue is empty; return the UOWs processed."""
    done: list[uuid.UUID] = []
    while True:
        try:
            view = engine.checkout(actor_id, role)
        except ConcurrencyError:
            continue  # another worker changed the row first; claim the next one
        if view is None:
            return done
        engine.submit(actor_id, view.uow_id, reasoning="benchmark step")
        done.append(view.uow_id)


def _worker(url: str, actor_id: str, role: str, barrier: Barrier, results: Any) -> None:
    """Process entry point: own engine, wait for the others, drain, report ids and times."""
    db = make_engine(url)
    engine = WorkflowEngine(make_session_factory(db), telemetry=TelemetryBuffer())
    barrier.wait()
    started = time.time()
    done = drain(engine, uuid.UUID(actor_id), role)
    engine.flush_telemetry()
    results.put((actor_id, [str(u) for u in done], started, time.time()))
    db.dispose()


def drain_in_processes(
    url: str, actor_ids: Sequence[uuid.UUID], role: str = ROLE
) -> tuple[dict[uuid.UUID, list[uuid.UUID]], float]:
    """Drain a queue with one spawned process per actor; return what each did and the time."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(actor_ids))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, str(a), role, barrier, results)) for a in actor_ids
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    done = {uuid.UUID(a): [uuid.UUID(u) for u in ids] for a, ids, _, _ in reports}
    elapsed = max(r[3] for r in reports) - min(r[2] for r in reports)
    return done, elapsed


def _one_worker(url: str, steps: int) -> float:
    db = make_engine(url)
    try:
        upgrade_database(db)
        engine, (actor,) = seed_queue(make_session_factory(db), steps, 1)
        started = time.perf_counter()
        count = len(drain(engine, actor))
        engine.flush_telemetry()
        return count / (time.perf_counter() - started)
    finally:
        db.dispose()


def _processes(url: str, steps: int, workers: int) -> float:
    db = make_engine(url)
    try:
        upgrade_database(db)
        _, actors = seed_queue(make_session_factory(db), steps, workers)
    finally:
        db.dispose()
    done, elapsed = drain_in_processes(url, actors)
    return sum(len(ids) for ids in done.values()) / elapsed


def engine_figures(
    sqlite_url: str, postgres_url: str | None, *, steps: int, workers: int = 4
) -> list[Figure]:
    """Measure the end-to-end step rate on SQLite, and on PostgreSQL with 1 and ``workers``."""
    note = f"{steps:,} steps (checkout + submit, history + telemetry)"
    figures = [
        Figure(
            "engine step, 1 worker", "sqlite", _one_worker(sqlite_url, steps), "steps/s", notes=note
        ),
    ]
    if postgres_url is not None:
        single = _one_worker(postgres_url, steps)
        multi = _processes(postgres_url, steps, workers)
        figures += [
            Figure("engine step, 1 worker", "postgresql", single, "steps/s", notes=note),
            Figure(
                f"engine step, {workers} processes",
                "postgresql",
                multi,
                "steps/s",
                baseline=single,
                ratio=multi / single,
                notes=f"{note}; baseline = 1 worker",
            ),
        ]
    return figures
