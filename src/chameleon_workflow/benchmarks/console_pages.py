"""Console benchmark: server time per page of the audit console on a database of N UOWs.

The database is filled (untimed) through the ledger's own ``create_uow`` (the call the
engine makes for each new UOW: attributes, the CREATED history row and its chain link),
committed every ``FILL_BATCH`` UOWs; statuses cycle over PENDING, ACTIVE, COMPLETED and
FAILED so every status page has rows, and each UOW has a ``customer`` among
``CUSTOMERS`` and an ``amount``. The pages are then asked of the console app in process
(Starlette's test client, signed in with the admin token), each ``PAGE_ROUNDS`` times;
a figure is the median time of one request and its 95th percentile, rendering included.
"""

from __future__ import annotations

import secrets
import statistics
import time
import uuid
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.benchmarks.figures import BenchContext, Figure
from chameleon_workflow.chain import KeyedRecord, attribute_diff
from chameleon_workflow.console import ConsoleBackend, Viewer, Vitals, create_console
from chameleon_workflow.console.sessions import SIGNIN_COOKIE
from chameleon_workflow.engine.paging import encode_cursor
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import NotAuthenticatedError
from chameleon_workflow.hashing import GENESIS_HASH, content_hash
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.ledger.dialects import statements_for
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.ledger.writes import attribute_row, creation_record, rows_digest
from chameleon_workflow.models import UnitsOfWork, utcnow
from chameleon_workflow.states import UOWStatus
from chameleon_workflow.testing import Playground, make_playground

FILL_BATCH = 2_000
PAGE_ROUNDS = 20
CUSTOMERS = 1_000
STATUSES = (UOWStatus.PENDING, UOWStatus.ACTIVE, UOWStatus.COMPLETED, UOWStatus.FAILED)


def fill(factory: sessionmaker[Session], count: int) -> list[uuid.UUID]:
    """Create ``count`` UOWs in one new instance; return their ids in creation order.

    Each UOW, its attribute rows and its CREATED history row are built by the ledger's
    own writers (``creation_record``, ``attribute_row``: salted digests, the keyed chain
    link), exactly as ``create_uow`` builds them; only the INSERTs are batched.
    """
    keys = UOWPersistenceService().ledger_keys(factory.kw["bind"])
    made: list[uuid.UUID] = []
    with factory() as session:
        play = make_playground(session, interactions=2)
        session.commit()
        for start in range(0, count, FILL_BATCH):
            uows, history, attributes = [], [], []
            sql = statements_for(session.connection())
            for i in range(start, min(count, start + FILL_BATCH)):
                uow, rows, record = _created(play, i, keys)
                uows.append(uow)
                history.append(sql.history_params(record, uow.chain_head, uow.created_at))
                attributes.extend(rows)
            session.add_all(uows)
            session.flush()
            conn = session.connection()
            raw: Any = conn.connection.driver_connection
            raw.cursor().executemany(sql.history_sql, history)
            sql.insert_attributes(conn, attributes)
            session.commit()
            made.extend(uow.uow_id for uow in uows)
            session.expunge_all()
    return made


def _created(
    play: Playground, i: int, keys: KeyProvider
) -> tuple[UnitsOfWork, list[dict[str, Any]], KeyedRecord]:
    """Build UOW number ``i``, its attribute rows and its CREATED record (as create_uow)."""
    attrs = {"customer": f"c{i % CUSTOMERS}", "amount": i}
    now = utcnow()
    uow = UnitsOfWork(
        uow_id=uuid.uuid4(),
        instance_id=play.instance_id,
        local_workflow_id=play.workflow_id,
        parent_id=None,
        current_interaction_id=play.interactions[i % 2],
        status=STATUSES[i % len(STATUSES)],
        content_hash=content_hash(attrs),
        last_heartbeat_at=None,
        version=1,
        history_sequence=1,
        retry_count=0,
        created_at=now,
        updated_at=now,
    )
    rows = [attribute_row(uow, (key, 1, 1), value, None, None, now) for key, value in attrs.items()]
    note = (None, None, None)
    record = creation_record(uow, note, attribute_diff({}, attrs), rows_digest(rows), keys)
    uow.chain_head = record.link(GENESIS_HASH, keys)
    return uow, rows, record


def signed_in_client(factory: sessionmaker[Session]) -> TestClient:
    """Return a test client of the console app, signed in with a fresh admin token."""
    token = secrets.token_urlsafe(16)

    def authenticate(given: str) -> Viewer:
        if not secrets.compare_digest(given, token):
            raise NotAuthenticatedError("not the admin token")
        return Viewer("admin")

    backend = ConsoleBackend(
        WorkflowEngine(factory),
        authenticate,
        lambda: None,
        lambda: Vitals(0, 0, 0, ()),
    )
    client = TestClient(create_console(backend), base_url="http://testserver")
    client.get("/signin").raise_for_status()
    csrf = client.cookies.get(SIGNIN_COOKIE)
    signed = client.post("/signin", data={"token": token, "csrf": csrf}, follow_redirects=False)
    if signed.status_code != 303:
        raise AssertionError(f"benchmark sign-in failed: {signed.status_code}")
    return client


def page_paths(factory: sessionmaker[Session], made: list[uuid.UUID]) -> dict[str, str]:
    """Name each page kind measured and its path; the deep cursor is at the middle UOW."""
    middle = made[len(made) // 2]
    with factory() as session:
        created = session.scalar(select(UnitsOfWork.created_at).where(UnitsOfWork.uow_id == middle))
    assert created is not None
    cursor = quote(encode_cursor(created.isoformat(), middle))
    return {
        "first page": "/uows",
        "by status": f"/uows?status={UOWStatus.COMPLETED.value}",
        "by attribute": f"/uows?attribute=customer%3Dc{min(len(made), CUSTOMERS) // 2}",
        "deep cursor": f"/uows?cursor={cursor}",
        "timeline": f"/uows/{middle}",
    }


def time_page(client: TestClient, path: str, rounds: int) -> list[float]:
    """Ask for ``path`` ``rounds`` times (after one warm-up); return each time in ms."""
    client.get(path).raise_for_status()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times


def p95(times: list[float]) -> float:
    """Return the 95th percentile (nearest rank) of ``times``."""
    ordered = sorted(times)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def bench_console_pages(ctx: BenchContext) -> list[Figure]:
    """Fill the database with ``console_uows`` UOWs and time each console page kind."""
    assert ctx.session_factory is not None
    count = ctx.sizes.console_uows
    started = time.perf_counter()
    made = fill(ctx.session_factory, count)
    filled_s = time.perf_counter() - started
    _check(ctx.session_factory, made[len(made) // 2])
    client = signed_in_client(ctx.session_factory)
    figures = []
    notes = f"{count:,} UOWs (filled in {filled_s:.0f} s); median of {PAGE_ROUNDS}, p95 in brackets"
    with client:
        for kind, path in page_paths(ctx.session_factory, made).items():
            times = time_page(client, path, PAGE_ROUNDS)
            figures.append(_figure(f"console: {kind}", ctx, times, notes))
    return figures


def _check(factory: sessionmaker[Session], uow_id: uuid.UUID) -> None:
    """Refuse to measure on data whose ledger does not verify (a sample UOW's chain)."""
    with factory() as session:
        report = UOWPersistenceService().verify_uow(session, uow_id)
    if report.findings:
        raise AssertionError(f"benchmark UOW does not verify: {report.findings[:3]}")


def _figure(name: str, ctx: BenchContext, times: list[float], notes: str) -> Figure:
    return Figure(name, ctx.backend, statistics.median(times), "ms", notes=notes, worst=p95(times))
