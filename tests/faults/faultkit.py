"""Helpers of the fault-injection suite: an invoice desk, and ways to kill connections."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import Settings
from chameleon_workflow.db import normalize_url
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.testing import LOOPBACK, FixedClock, free_port

INVOICE = (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()
#: Quick retries keep a test that exhausts them short.
FAST_RETRIES = Settings(
    zombie_threshold_s=60, db_retry_attempts=3, db_retry_max_wait_s=0.1, sqlite_busy_timeout_ms=2000
)


@dataclass
class Desk:
    """An instance with the invoice workflow and one worker holding triage, approval and TAU."""

    engine: WorkflowEngine
    factory: sessionmaker[Session]
    clock: FixedClock
    instance_id: uuid.UUID
    worker: uuid.UUID

    def start(self, amount: float = 50) -> uuid.UUID:
        """Instantiate one invoice."""
        attributes = {"invoice_id": "INV", "amount": amount}
        return self.engine.instantiate(self.instance_id, "invoice_approval", attributes)

    def statuses(self, uow_id: uuid.UUID) -> list[tuple[int, str]]:
        """Return a UOW's history as (sequence, new status) pairs."""
        with self.factory() as session:
            rows = UOWPersistenceService().get_uow_history(session, uow_id)
            return [(r.sequence, str(r.new_status)) for r in rows]


def backend_pid(session: Session) -> int:
    """Return the PostgreSQL backend serving ``session``'s connection."""
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(database_url: str, pid: int) -> None:
    """End one PostgreSQL backend from another connection, as an operator or a crash would."""
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def terminate_all(database_url: str) -> int:
    """End every other backend connected to the URL's database; return how many."""
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def make_desk(session_factory: sessionmaker[Session], settings: Settings = FAST_RETRIES) -> Desk:
    """Set up the invoice workflow and a worker holding triage, approval and TAU."""
    clock = FixedClock()
    engine = WorkflowEngine(
        session_factory, telemetry=TelemetryBuffer(), clock=clock, settings=settings
    )
    instance_id = engine.create_instance("faults")
    engine.import_workflow(instance_id, INVOICE)
    worker = engine.register_actor(instance_id, "worker", "Worker", "AI_AGENT")
    for role in ("triage", "approval", "reaper"):
        engine.assign_role(worker, role)
    return Desk(engine, session_factory, clock, instance_id, worker)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread of this process (lifespan included); yield its URL."""
    port = free_port()
    config = uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the in-process server did not start"
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or the timeout passes; return its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Load:
    """Client threads walking invoices (instantiate, checkout, submit) and noting each status."""

    def __init__(self, url: str, token: str, instance_id: str, threads: int = 2) -> None:
        """Drive the server at ``url`` as the actor of ``token``."""
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.instance_id = instance_id
        self.statuses: list[tuple[float, int]] = []
        self.ports: set[object] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def start(self) -> Load:
        """Start the client threads."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[int]:
        """Stop the threads and return every status code seen, in order."""
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        return [status for _, status in self.statuses]

    def since(self, moment: float) -> list[int]:
        """Return the status codes of responses received after ``moment`` (monotonic)."""
        return [status for at, status in list(self.statuses) if at > moment]

    def _run(self) -> None:
        body = {"workflow": "invoice_approval", "attributes": {"invoice_id": "L", "amount": 5}}
        with httpx.Client(base_url=self.url, timeout=30.0, headers=self.headers) as client:
            while not self._stop.is_set():
                try:
                    self._note(client.post(f"/instances/{self.instance_id}/uows", json=body))
                    claimed = self._note(client.post("/roles/triage/checkout"))
                    if claimed.status_code == 200:
                        uow = claimed.json()["uow_id"]
                        self._note(client.post(f"/uows/{uow}/submit", json={}))
                except httpx.TransportError:
                    self.statuses.append((time.monotonic(), 0))  # no answer at all
                    time.sleep(0.05)

    def _note(self, response: httpx.Response) -> httpx.Response:
        self.statuses.append((time.monotonic(), response.status_code))
        self.ports.add(response.extensions["network_stream"].get_extra_info("client_addr"))
        if response.status_code == 503:
            time.sleep(0.05)  # as Retry-After asks, shortened
        return response


def count_rows(database_url: str, sql: str) -> int:
    """Run a counting query straight against the database."""
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()
