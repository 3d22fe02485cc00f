"""A live server with the invoice workflow, driven through the Python client (both back ends).

Shared by the client, worker and MCP tests: one server per back end and test module
(starting one is the slow part), and for each test its own instance with the invoice
workflow and actors whose tokens the tests hand to clients, workers and MCP servers.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chameleon_workflow.client import ChameleonClient, RetryPolicy
from chameleon_workflow.config import scratch_database_name
from chameleon_workflow.testing import INVOICE_YAML, ServerProcess

FAST = {
    "CHAMELEON_TELEMETRY_FLUSH_INTERVAL_S": "0.1",
    "CHAMELEON_SWEEP_INTERVAL_S": "0.2",
    "CHAMELEON_ZOMBIE_THRESHOLD_S": "600",
}
WALK = ("triage", "manual_review", "approval", "remediation")
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
QUICK = RetryPolicy(attempts=3, first_wait_s=0.05, max_wait_s=0.2)


@dataclass(frozen=True)
class Live:
    """A running server (one per back end and test module), its admin and auditor tokens."""

    server: ServerProcess
    admin: ChameleonClient
    auditor_token: str


@dataclass(frozen=True)
class World:
    """A test's own instance with the invoice workflow and actors, on a shared live server."""

    server: ServerProcess
    admin: ChameleonClient
    auditor_token: str
    instance_id: str
    tokens: dict[str, str]
    actor_ids: dict[str, str]

    def client(self, actor: str) -> ChameleonClient:
        """Return a client speaking as one of the actors."""
        return ChameleonClient(self.server.url, self.tokens[actor], timeout_s=30, retry=QUICK)

    def invoice(self, actor: str, **attributes: Any) -> str:
        """Start an invoice UOW and return its id."""
        with self.client(actor) as client:
            return str(client.create_uow(self.instance_id, "invoice_approval", attributes))


@contextmanager
def module_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """Give a test module a migrated database of the back end named by ``request.param``."""
    if request.param == "sqlite":
        target = folder / "chameleon.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    template = request.getfixturevalue("pg_template")  # skips or fails as the other PG tests
    server = os.environ["CHAMELEON_TEST_POSTGRES_URL"].replace("+psycopg", "").rpartition("/")[0]
    name = scratch_database_name("t", uuid.uuid4().hex[:16])  # CHAMELEON_TEST_DB_PREFIX
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield f"{server.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def live_server(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Start a server on a module database with an auditor token; check its log at the end."""
    folder = factory.mktemp(f"live-{request.param}")
    with module_database(request, folder) as url:
        auditor_token = secrets.token_urlsafe(32)
        env = {**FAST, "CHAMELEON_AUDITOR_TOKEN": auditor_token}
        server = ServerProcess(url, folder / "server.log", env).start()
        admin = ChameleonClient(server.url, server.admin_token, retry=QUICK)
        try:
            yield Live(server, admin, auditor_token)
        finally:
            admin.close()
            clean = server.stop_cleanly()
            assert clean, server.log()
            assert "Traceback" not in server.log()


def new_world(live: Live, actors: tuple[str, ...] = ("agent",)) -> World:
    """Create an instance with the invoice workflow and actors holding every walking role."""
    admin = live.admin
    instance = admin.create_instance(f"invoices-{secrets.token_hex(6)}")
    admin.import_workflow(instance, INVOICE_YAML.read_text())
    tokens, actor_ids = {}, {}
    for name in actors:
        created = admin.register_actor(instance, name, name.title(), "AI_AGENT")
        for role in WALK:
            admin.assign_role(created.actor_id, role)
        tokens[name], actor_ids[name] = created.token, str(created.actor_id)
    return World(live.server, admin, live.auditor_token, str(instance), tokens, actor_ids)


def wait_until(check: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def chameleon_command(*args: str) -> list[str]:
    """Return the command line that runs ``chameleon`` with this interpreter."""
    return [sys.executable, "-m", "chameleon_workflow", *args]
