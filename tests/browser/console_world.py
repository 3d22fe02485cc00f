"""A small world for the console tests: one served database per back end, Chromium, hostile text.

One server per back end and test module (starting one is the slow part). The world holds
an instance with the invoice workflow, an actor whose name is markup, invoices whose
attributes and reasoning are markup or template syntax, and a checkpoint sealed over
all of it. Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run``);
Playwright drives it and never downloads a browser of its own.
"""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from chameleon_workflow.checkpoints import create_signing_key, seal
from chameleon_workflow.client import ChameleonClient, RetryPolicy
from chameleon_workflow.config import Settings
from chameleon_workflow.db import make_engine
from chameleon_workflow.testing import INVOICE_YAML, ServerProcess

CHROMIUM = Path(os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"))
QUICK = RetryPolicy(attempts=3, first_wait_s=0.05, max_wait_s=0.2)
#: Stored strings that must reach the page as text: markup, an event handler, template syntax.
SCRIPT = "<script>window.__pwned = 1</script>"
IMAGE = '"><img src=x onerror="window.__pwned = 2">'
TEMPLATE = "{{7*7}}"
WALK = ("triage", "manual_review", "approval", "remediation")


@dataclass(frozen=True)
class World:
    """The served world: its server, tokens, and the UOWs the tests look at."""

    server: ServerProcess
    database_url: str
    auditor_token: str
    actor_token: str
    instance: str
    plain_uow: str
    hostile_uow: str
    tampered_uow: str
    screenshots: Path

    @property
    def console(self) -> str:
        """Return the console's address."""
        return f"{self.server.url}/ui"


def require_chromium() -> None:
    """Fail (under CI) or skip (on a laptop) when Debian's Chromium is missing."""
    if CHROMIUM.exists():
        return
    message = f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium"
    if os.environ.get("CI") == "true" or os.environ.get("CHAMELEON_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


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
    name = f"chameleon_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield f"{server.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def served_world(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Serve a fresh database, fill it with the world, seal it, and stop the server after."""
    folder = factory.mktemp(f"console-{request.param}")
    # CONSOLE_SCREENSHOTS keeps the run's screenshots where docs/console.md's copies come from.
    kept = os.environ.get("CONSOLE_SCREENSHOTS")
    shots = Path(kept) / request.param if kept else factory.mktemp(f"screenshots-{request.param}")
    shots.mkdir(parents=True, exist_ok=True)
    with module_database(request, folder) as url:
        key = folder / "signing-key.pem"
        signer = create_signing_key(key)
        auditor = secrets.token_urlsafe(32)
        env = {
            "CHAMELEON_AUDITOR_TOKEN": auditor,
            "CHAMELEON_SIGNING_KEY_FILE": str(key),
            "CHAMELEON_TELEMETRY_FLUSH_INTERVAL_S": "0.1",
        }
        server = ServerProcess(url, folder / "server.log", env).start()
        try:
            world = populate(server, url, auditor, shots)
            engine = make_engine(url, Settings(database_url=url))
            try:
                seal(engine, signer)
            finally:
                engine.dispose()
            yield world
        finally:
            clean = server.stop_cleanly()
            assert clean, server.log()
            assert "Traceback" not in server.log()


def populate(server: ServerProcess, url: str, auditor: str, shots: Path) -> World:
    """Create the instance, the workflow, a hostile actor and three invoices."""
    with ChameleonClient(server.url, server.admin_token, retry=QUICK) as admin:
        instance = f"invoices-{secrets.token_hex(4)}"
        instance_id = admin.create_instance(instance)
        admin.import_workflow(instance_id, INVOICE_YAML.read_text())
        actor = admin.register_actor(instance_id, "agent", f"Agent {SCRIPT}", "AI_AGENT")
        for role in WALK:
            admin.assign_role(actor.actor_id, role)
    with ChameleonClient(server.url, actor.token, retry=QUICK) as agent:
        plain = agent.create_uow(instance_id, "invoice_approval", plain_invoice())
        hostile = agent.create_uow(instance_id, "invoice_approval", hostile_invoice())
        tampered = agent.create_uow(instance_id, "invoice_approval", plain_invoice("INV-3"))
        for _ in range(3):
            held = agent.checkout("triage")
            assert held is not None
            note = {"note": TEMPLATE, "vendor_html": IMAGE} if held.uow_id == hostile else None
            agent.submit(held, note, reasoning=f"triaged {SCRIPT} {IMAGE} {TEMPLATE}")
    return World(
        server, url, auditor, actor.token, instance, str(plain), str(hostile), str(tampered), shots
    )


def plain_invoice(invoice_id: str = "INV-1") -> dict[str, object]:
    """Return an ordinary small invoice."""
    return {"invoice_id": invoice_id, "amount": 120, "vendor": "Acme"}


def hostile_invoice() -> dict[str, object]:
    """Return an invoice whose values are markup and template syntax."""
    return {"invoice_id": "INV-2", "amount": 50, "vendor": SCRIPT, "memo": TEMPLATE}
