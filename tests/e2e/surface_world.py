"""A live server with the invoice workflow, driven through the Python client (both back ends).

Shared by the client, worker and MCP tests: an instance, the invoice workflow, and actors
whose tokens the tests hand to clients, workers and MCP servers.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chameleon_workflow.client import ChameleonClient, RetryPolicy
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
class World:
    """A running server, its admin client, an instance with the invoice workflow, actors."""

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
def live_world(
    database_url: str, log: Path, actors: tuple[str, ...] = ("agent",)
) -> Iterator[World]:
    """Start a server on the database, set up the invoice workflow and actors; stop it after."""
    auditor_token = secrets.token_urlsafe(32)
    env = {**FAST, "CHAMELEON_AUDITOR_TOKEN": auditor_token}
    server = ServerProcess(database_url, log, env).start()
    admin = ChameleonClient(server.url, server.admin_token, retry=QUICK)
    try:
        instance = admin.create_instance(f"invoices-{log.parent.name[-12:]}")
        admin.import_workflow(instance, INVOICE_YAML.read_text())
        tokens, actor_ids = {}, {}
        for name in actors:
            created = admin.register_actor(instance, name, name.title(), "AI_AGENT")
            for role in WALK:
                admin.assign_role(created.actor_id, role)
            tokens[name], actor_ids[name] = created.token, str(created.actor_id)
        yield World(server, admin, auditor_token, str(instance), tokens, actor_ids)
    finally:
        admin.close()
        clean = server.stop_cleanly()
        assert clean, server.log()
        assert "Traceback" not in server.log()


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
