"""The peers side by side: Chameleon against the libraries a user would pick instead.

Run by ``chameleon benchmark --peers`` on each database of the run, after the other
figures, in rounds that alternate ours and the peer's so both see the same load:

- ``save_uow`` against the ``eventsourcing`` library saving one new event of an
  aggregate (optimistic concurrency on the aggregate's version), SQLite and PostgreSQL;
- an engine step against a DBOS workflow step (SQLite and PostgreSQL) and a
  procrastinate job (PostgreSQL): one unit of work created and moved one step, and one
  more step of an existing unit.

On SQLite ours runs with ``synchronous=FULL`` here, the setting the peers get from
Python's ``sqlite3`` (they offer none of their own), so both sides make a commit equally
durable. The peers are the optional ``peers`` extra, imported only when this runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from sqlalchemy import Engine

from chameleon_workflow.benchmarks.engine import ROLE, drain, invoice_source
from chameleon_workflow.benchmarks.figures import Figure, Rates, Sizes
from chameleon_workflow.benchmarks.ledger import alternate, make_fleet, run_saves
from chameleon_workflow.config import load_settings
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

OURS_SAVE = (
    "ours per save: compare-and-set UPDATE of the UOW row + history row with its hash-chain "
    "link and keyed MAC, drift check, one transaction"
)
OURS_STEP = (
    "ours per step: checkout + submit = 2 transactions, 2 history rows (hash chain, keyed "
    "MAC), gate and routing decisions, 2 telemetry rows flushed and linked"
)
OURS_UNIT = (
    "ours per unit: instantiate (UOW row, attribute rows, first history row) + one step "
    "(checkout + submit, as in 'engine step')"
)


def peer_figures(urls: list[str], sizes: Sizes) -> list[Figure]:
    """Measure ours against each peer on every database of the run."""
    figures: list[Figure] = []
    for url in urls:
        figures += save_figures(url, sizes)
        figures += step_figures(url, sizes)
    return figures


def _backend(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def _our_engine(url: str) -> Engine:
    settings = load_settings()
    if _backend(url) == "sqlite":
        settings = settings.model_copy(update={"sqlite_synchronous": "FULL"})
    return make_engine(url, settings)


def _ours_settings(url: str) -> str:
    if _backend(url) == "sqlite":
        return "SQLite WAL, synchronous=FULL on both sides"
    return "PostgreSQL, synchronous_commit=on, one connection each"


def versus(
    name: str, backend: str, ours: Rates, peer: Rates, unit: str, peer_name: str, notes: str
) -> Figure:
    """A side-by-side figure: ours as the value, the peer as the baseline, ratio ours/peer."""
    notes = f"peer worst {peer.worst:,.0f}; {notes}"
    return Figure(
        name,
        backend,
        ours.best,
        unit,
        baseline=peer.best,
        ratio=ours.best / peer.best,
        notes=notes,
        worst=ours.worst,
        peer=peer_name,
    )


def save_figures(url: str, sizes: Sizes) -> list[Figure]:
    """``save_uow`` against ``eventsourcing`` saving one new event, rounds alternating."""
    from chameleon_workflow.benchmarks.peers_eventsourcing import (  # noqa: PLC0415 - extra
        AGGREGATES,
        EventsourcingPeer,
    )

    backend = _backend(url)
    count = sizes.saves if backend == "sqlite" else max(1, sizes.saves // 2)
    engine = _our_engine(url)
    with ExitStack() as opened:
        opened.callback(engine.dispose)
        peer = EventsourcingPeer(url)
        opened.callback(peer.close)
        factory = make_session_factory(engine)
        fleet = make_fleet(factory, AGGREGATES)
        warm = min(count, 100)
        run_saves(factory, fleet, warm)
        peer.run(warm)
        ours, theirs = alternate(
            sizes.rounds, count, lambda: run_saves(factory, fleet, count), lambda: peer.run(count)
        )
        peer.check()
        notes = (
            f"{_ours_settings(url)}; {count:,} saves x {sizes.rounds} rounds, {AGGREGATES} "
            f"UOWs / aggregates; {OURS_SAVE}; peer per save: {peer.settings()}, one event "
            "INSERT (primary key on id + version), one transaction"
        )
        name = "save_uow() vs eventsourcing save"
        return [versus(name, backend, ours, theirs, "tx/s", "eventsourcing", notes)]


class OursSteps:
    """One triage worker on a fresh instance of the invoice workflow; ``run`` times both halves."""

    def __init__(self, url: str, steps: int) -> None:
        self.db = _our_engine(url)
        telemetry = TelemetryBuffer(max_queue_size=8 * steps + 1000)
        self.engine = WorkflowEngine(make_session_factory(self.db), telemetry=telemetry)
        self.instance = self.engine.create_instance(f"peers-{uuid.uuid4().hex[:8]}")
        self.engine.import_workflow(self.instance, invoice_source())
        self.actor = self.engine.register_actor(self.instance, "worker", "Worker", "AI_AGENT")
        self.engine.assign_role(self.actor, ROLE)
        self.made = 0

    def run(self, count: int) -> tuple[float, float]:
        """Instantiate ``count`` UOWs, then check out and submit each; seconds of each half."""
        started = time.perf_counter()
        for n in range(count):
            invoice = {"invoice_id": f"P-{self.made + n}", "amount": n}
            self.engine.instantiate(self.instance, "invoice_approval", invoice)
        self.engine.flush_telemetry()
        created = time.perf_counter()
        done = drain(self.engine, self.actor)
        self.engine.flush_telemetry()
        moved = time.perf_counter()
        self.made += count
        if len(done) != count:
            raise AssertionError(f"engine moved {len(done)} of {count} UOWs")
        return created - started, moved - created

    def close(self) -> None:
        """Release the connections."""
        self.db.dispose()


def step_figures(url: str, sizes: Sizes) -> list[Figure]:
    """The engine step against DBOS (and procrastinate on PostgreSQL), rounds alternating."""
    from chameleon_workflow.benchmarks.peers_dbos import DbosPeer  # noqa: PLC0415 - extra

    backend, count = _backend(url), sizes.engine_steps
    times: dict[str, list[float]] = {}

    def timed(key: str, work: Callable[[], object]) -> None:
        started = time.perf_counter()
        work()
        times.setdefault(key, []).append(time.perf_counter() - started)

    with ExitStack() as opened:
        ours = OursSteps(url, count)
        opened.callback(ours.close)
        dbos = DbosPeer(url)
        opened.callback(dbos.close)
        queue = _procrastinate(url) if backend == "postgresql" else None
        warm = min(count, 20)
        ours.run(warm)
        dbos.run_workflows(warm)
        dbos.run_steps(warm)
        if queue is not None:
            queue.run(warm)
        for _ in range(sizes.rounds):
            create, step = ours.run(count)
            times.setdefault("ours unit", []).append(create + step)
            times.setdefault("ours step", []).append(step)
            timed("dbos unit", lambda: dbos.run_workflows(count))
            timed("dbos step", lambda: dbos.run_steps(count))
            if queue is not None:
                defer, execute = queue.run(count)
                times.setdefault("queue unit", []).append(defer + execute)
                times.setdefault("queue step", []).append(execute)
        dbos_settings = dbos.settings()
    rate = {key: Rates.of(count, seconds) for key, seconds in times.items()}
    load = f"{_ours_settings(url)}; {count:,} units x {sizes.rounds} rounds"
    figures = [
        versus(
            "create + 1 step vs DBOS 1-step workflow",
            backend,
            rate["ours unit"],
            rate["dbos unit"],
            "units/s",
            "dbos",
            f"{load}; {OURS_UNIT}; peer per unit: {dbos_settings}, workflow status row "
            "written at start and end, one step output row",
        ),
        versus(
            "engine step vs DBOS step",
            backend,
            rate["ours step"],
            rate["dbos step"],
            "steps/s",
            "dbos",
            f"{load}; {OURS_STEP}; peer per step: one checkpointed step (one output row) "
            f"in a running workflow of {count:,} steps, {dbos_settings}",
        ),
    ]
    if queue is not None:
        queue_settings = queue.settings()
        figures += [
            versus(
                "create + 1 step vs procrastinate defer + execute",
                backend,
                rate["ours unit"],
                rate["queue unit"],
                "units/s",
                "procrastinate",
                f"{load}; {OURS_UNIT}; peer per job: {queue_settings}, defer (INSERT "
                "the job) + execute (claim, run, mark succeeded)",
            ),
            versus(
                "engine step vs procrastinate execute",
                backend,
                rate["ours step"],
                rate["queue step"],
                "steps/s",
                "procrastinate",
                f"{load}; {OURS_STEP}; peer per job: {queue_settings}, claim, run and mark "
                "succeeded a job deferred before (its defer not counted here)",
            ),
        ]
    return figures


def _procrastinate(url: str) -> Any:
    from chameleon_workflow.benchmarks.peers_procrastinate import (  # noqa: PLC0415 - extra
        ProcrastinatePeer,
    )

    return ProcrastinatePeer(url)
