"""Ledger benchmarks: save_uow() against the raw driver, worker scaling, full verification.

The raw baselines write the same row shapes to the same schema (indexes and append-only
triggers included) with nothing but the driver: BEGIN, the compare-and-set UPDATE, the
history INSERT, COMMIT. Ours and raw alternate round by round so both see the same load.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.benchmarks.figures import BenchContext, Figure, Rates, figure
from chameleon_workflow.benchmarks.raw import RAW_READ, RAW_SQL, raw_state, read_and_hash, run_raw
from chameleon_workflow.chain import KeyedRecord
from chameleon_workflow.config import load_settings
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.ledger.backend import LedgerSQL
from chameleon_workflow.ledger.dialects import statements_for
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.ledger.sqlite import SQLiteSQL
from chameleon_workflow.models import LocalInteraction, UnitsOfWork
from chameleon_workflow.testing import Playground, make_playground, make_uow

ATTRIBUTES = {"amount": 1250.5, "customer": "acme", "tags": ["a", "b"], "approved": False}


@dataclass(slots=True)
class _Fleet:
    """UOWs of one benchmark, the interactions they move between, and raw-side state."""

    play: Playground
    uows: list[UnitsOfWork]
    raw_state: list[list[Any]]


def make_fleet(factory: sessionmaker[Session], count: int) -> _Fleet:
    """Create ``count`` UOWs for save_uow and ``count`` more for the raw baseline."""
    service = UOWPersistenceService()
    with factory() as session:
        play = make_playground(session, interactions=2)
        session.commit()
        made = [
            make_uow(session, play, attributes=ATTRIBUTES, service=service, commit=False)
            for _ in range(2 * count)
        ]
        session.commit()
    return _Fleet(play, made[:count], raw_state(factory.kw["bind"], made[count:]))


def run_saves(factory: sessionmaker[Session], fleet: _Fleet, count: int) -> None:
    """Move UOWs between two interactions with save_uow(), one transaction each."""
    service = UOWPersistenceService()
    first, second = fleet.play.interactions
    with factory() as session:
        session.add_all(fleet.uows)
        for i in range(count):
            uow = fleet.uows[i % len(fleet.uows)]
            target = second if uow.current_interaction_id == first else first
            service.save_uow(
                session, uow, new_interaction_id=target, reasoning="move", metadata={"step": i}
            )
            session.commit()


def run_core_saves(engine: Engine, fleet: _Fleet, count: int) -> None:
    """The same saves on one Core connection, one transaction each: no Session around them."""
    service = UOWPersistenceService()
    first, second = fleet.play.interactions
    with engine.connect() as conn:
        for i in range(count):
            uow = fleet.uows[i % len(fleet.uows)]
            target = second if uow.current_interaction_id == first else first
            with conn.begin():
                service.save_uow(
                    conn, uow, new_interaction_id=target, reasoning="move", metadata={"step": i}
                )


def alternate(rounds: int, count: int, *runs: Callable[[], None]) -> list[Rates]:
    """Time each of ``runs`` in turn, round after round; return their rates in order."""
    seconds: list[list[float]] = [[] for _ in runs]
    for _ in range(rounds):
        for run, times in zip(runs, seconds, strict=True):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
    return [Rates.of(count, times) for times in seconds]


# ------------------------------------------------------------------ worker processes


def _worker(task: tuple[str, str, list[str], int, Any]) -> tuple[float, float]:
    """Run one worker's saves (or raw writes) after the barrier; return wall start/end."""
    url, mode, uow_ids, count, barrier = task
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        fleet = _load_fleet(factory, [uuid.UUID(u) for u in uow_ids])
        run: Callable[[int], None] = (
            (lambda n: run_saves(factory, fleet, n))
            if mode == "ours"
            else (lambda n: run_raw(engine, fleet.raw_state, fleet.play, n))
        )
        run(min(count, 50))  # warm the connection and prepared statements
        barrier.wait()
        started = time.time()
        run(count)
        return started, time.time()
    finally:
        engine.dispose()


def _load_fleet(factory: sessionmaker[Session], ids: list[uuid.UUID]) -> _Fleet:
    """Load UOWs (and their raw-side state) as they are in the database now."""
    with factory() as session:
        uows = [u for u in (session.get(UnitsOfWork, i) for i in ids) if u is not None]
        session.expunge_all()
        first = uows[0]
        query = select(LocalInteraction.interaction_id).where(
            LocalInteraction.local_workflow_id == first.local_workflow_id
        )
        interactions = tuple(sorted(session.scalars(query)))
    play = Playground(first.instance_id, first.local_workflow_id, interactions)
    return _Fleet(play, uows, raw_state(factory.kw["bind"], uows))


def _ids(fleet: _Fleet, mode: str) -> list[uuid.UUID]:
    return [u.uow_id for u in fleet.uows] if mode == "ours" else [s[0] for s in fleet.raw_state]


def parallel_rates(url: str, fleets: list[_Fleet], count: int, rounds: int) -> tuple[Rates, Rates]:
    """Run save_uow and raw writers in one process per fleet; return aggregate rates."""
    workers = len(fleets)
    context = multiprocessing.get_context("spawn")
    times: dict[str, list[float]] = {"ours": [], "raw": []}
    with context.Manager() as manager, context.Pool(workers) as pool:
        for _ in range(rounds):
            for mode in ("ours", "raw"):
                barrier = manager.Barrier(workers)
                tasks = [
                    (url, mode, [str(u) for u in _ids(f, mode)], count, barrier) for f in fleets
                ]
                spans = pool.map(_worker, tasks)
                times[mode].append(max(e for _, e in spans) - min(s for s, _ in spans))
    total = count * workers
    return Rates.of(total, times["ours"]), Rates.of(total, times["raw"])


# ------------------------------------------------------------------ verification data


def build_ledger(factory: sessionmaker[Session], uows: int, rows_per_uow: int) -> uuid.UUID:
    """Create an instance of ``uows`` UOWs with ``rows_per_uow`` valid chained rows each."""
    service = UOWPersistenceService()
    with factory() as session:
        play = make_playground(session, interactions=2)
        made = [
            make_uow(session, play, attributes=ATTRIBUTES, service=service, commit=False)
            for _ in range(uows)
        ]
        session.commit()
        conn = session.connection()
        sql = statements_for(conn)
        keys = service.ledger_keys(conn.engine)
        raw: Any = conn.connection.driver_connection
        history, heads = [], []
        for uow in made:
            rows, head = _chain(uow, play.interactions, rows_per_uow, (sql, keys))
            history.extend(rows)
            heads.append(head)
        raw.cursor().executemany(sql.history_sql, history)
        p = "?" if conn.dialect.name == "sqlite" else "%s"
        raw.cursor().executemany(
            f"UPDATE units_of_work SET current_interaction_id = {p}, history_sequence = {p}, "
            f"chain_head = {p}, version = {p} WHERE uow_id = {p}",
            heads,
        )
        session.commit()
    return play.instance_id


def _chain(
    uow: UnitsOfWork,
    interactions: tuple[uuid.UUID, ...],
    count: int,
    writer: tuple[LedgerSQL, KeyProvider],
) -> tuple[list[list[Any]], tuple[Any, ...]]:
    """Build rows 2..count of a UOW's chain the way the service builds them."""
    sql, keys = writer
    now = datetime.now(UTC)
    stamp = format_timestamp(now)
    link, rows = uow.chain_head, []
    text = [str(i) for i in interactions]
    for sequence in range(2, count + 1):
        record = KeyedRecord(
            history_id=str(uuid.uuid4()),
            instance_id=str(uow.instance_id),
            uow_id=str(uow.uow_id),
            sequence=sequence,
            event_type="TRANSITION",
            previous_status="PENDING",
            new_status="PENDING",
            previous_state_hash=uow.content_hash,
            new_state_hash=uow.content_hash,
            previous_interaction_id=text[sequence % 2],
            new_interaction_id=text[(sequence + 1) % 2],
            actor_id=None,
            transition_timestamp=stamp,
            reasoning="move",
            transition_metadata={"step": sequence},
            holder_id=None,
            retry_count=0,
            attributes_digest=None,
            local_workflow_id=None,
            parent_id=None,
            key_id=keys.current_id,
        )
        link = record.link(link, keys)
        rows.append(sql.history_params(record, link, now))
    last = interactions[(count + 1) % 2] if count > 1 else interactions[0]
    ident: Any = str(uow.uow_id) if isinstance(sql, SQLiteSQL) else uow.uow_id
    last_id: Any = str(last) if isinstance(sql, SQLiteSQL) else last
    return rows, (last_id, count, link, count, ident)


# ------------------------------------------------------------------ figures


def _settings(ctx: BenchContext) -> str:
    if ctx.backend == "sqlite":
        return f"synchronous={load_settings().sqlite_synchronous}, WAL"
    pre_ping = "on" if load_settings().pool_pre_ping else "off"
    return f"synchronous_commit=on (server default), pool_pre_ping={pre_ping}"


def bench_save(ctx: BenchContext) -> list[Figure]:
    """Measure save_uow() transactions/s (with a Session, on a Core connection) against raw."""
    assert ctx.engine is not None
    assert ctx.session_factory is not None
    engine, factory, sizes = ctx.engine, ctx.session_factory, ctx.sizes
    count = sizes.saves if ctx.backend == "sqlite" else sizes.saves // 2
    fleet = make_fleet(factory, 200)
    run_saves(factory, fleet, 100)  # warm caches and prepared statements
    run_core_saves(engine, fleet, 100)
    run_raw(engine, fleet.raw_state, fleet.play, 100)
    ours, core, raw = alternate(
        sizes.rounds,
        count,
        lambda: run_saves(factory, fleet, count),
        lambda: run_core_saves(engine, fleet, count),
        lambda: run_raw(engine, fleet.raw_state, fleet.play, count),
    )
    empty = _empty_transactions(factory, count)
    settings = f"{_settings(ctx)}; {count:,} saves x {sizes.rounds} rounds, 200 UOWs, 4 attrs"
    raw_sql = f"raw (same SQL): {RAW_SQL[ctx.backend]}"
    session_target, session_met = _save_target(ctx.backend, ours, raw)
    core_target, core_met = _save_target(ctx.backend, core, raw)
    return [
        figure(
            "save_uow() 1 worker",
            ctx,
            ours,
            "tx/s",
            raw,
            settings,
            session_target,
            session_met,
        ),
        figure("  on a Core connection", ctx, core, "tx/s", raw, raw_sql, core_target, core_met),
        figure("  of which: empty Session txn", ctx, empty, "tx/s", None, "begin+commit, no SQL"),
    ]


def _save_target(backend: str, ours: Rates, raw: Rates) -> tuple[str, bool]:
    if backend == "sqlite":
        return ">= 0.7x raw, >= 5,000 tx/s", ours.best >= max(5_000, 0.7 * raw.best)
    return ">= 0.8x raw", ours.best >= 0.8 * raw.best


def _empty_transactions(factory: sessionmaker[Session], count: int) -> Rates:
    """Rate of empty Session transactions: the floor the caller's session sets."""
    with factory() as session:
        started = time.perf_counter()
        for _ in range(count):
            session.connection()
            session.commit()
        elapsed = time.perf_counter() - started
    return Rates(count / elapsed, count / elapsed)


def bench_workers(ctx: BenchContext) -> list[Figure]:
    """Measure save_uow() in 4 worker processes (PostgreSQL only) against 4 raw writers."""
    if ctx.backend != "postgresql" or ctx.sizes.workers < 2:
        return []
    assert ctx.session_factory is not None
    assert ctx.url is not None
    workers, count = ctx.sizes.workers, ctx.sizes.saves // 4
    fleets = [make_fleet(ctx.session_factory, 50) for _ in range(workers)]
    ours, raw = parallel_rates(ctx.url, fleets, count, ctx.sizes.rounds)
    settings = f"{_settings(ctx)}; {workers} processes x {count:,} saves, own UOWs each"
    met = ours.best >= 0.6 * raw.best
    return [
        figure(
            f"save_uow() {workers} workers", ctx, ours, "tx/s", raw, settings, ">= 0.6x raw", met
        )
    ]


def bench_verify(ctx: BenchContext) -> list[Figure]:
    """Measure full verification in history rows/s; baseline: its own read plus SHA-256."""
    assert ctx.engine is not None
    assert ctx.session_factory is not None
    factory, sizes = ctx.session_factory, ctx.sizes
    instance = build_ledger(factory, sizes.verify_uows, sizes.verify_rows)
    service = UOWPersistenceService()
    seconds, read_s = [], []
    for _ in range(sizes.rounds):
        with factory() as session:
            report = service.verify_database(session, instance_id=instance)
            session.commit()
        if not report.ok:
            raise AssertionError(f"benchmark ledger does not verify: {report.findings[:3]}")
        seconds.append(report.elapsed_s)
        read_s.append(read_and_hash(ctx.engine, instance))
    rows = report.history_rows_checked
    ours, raw = Rates.of(rows, seconds), Rates.of(rows, read_s)
    settings = f"{_settings(ctx)}; {sizes.verify_uows:,} UOWs x {sizes.verify_rows} rows"
    settings += f"; raw: {RAW_READ}"
    return [
        figure(
            "full verification",
            ctx,
            ours,
            "rows/s",
            raw,
            settings,
            ">= 200K rows/s",
            ours.best >= 200_000,
        )
    ]
