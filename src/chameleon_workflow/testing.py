"""Fakes and helpers for tests of code that uses Chameleon (shipped on purpose).

A clock that moves only when told to; a playground (instance, workflow, interactions) and
UOWs created in it through the persistence service; a switch that lifts the append-only
triggers for tamper tests; a real server process on a free loopback port, with an
instance whose actors can walk the invoice example; and an in-memory decision sink.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chameleon_workflow.append_only import drop_guard_statements, guard_statements
from chameleon_workflow.definitions import objects_hash
from chameleon_workflow.guard import GuardEvent
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import (
    InstanceContext,
    LocalInteraction,
    LocalWorkflow,
    UnitsOfWork,
)
from chameleon_workflow.schema import drop_identity_statements, identity_statements


@dataclass
class FixedClock:
    """A clock that only moves when told to; pass it wherever a clock is accepted."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        """Return the current fixed moment."""
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward and return the new moment."""
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass(frozen=True, slots=True)
class Playground:
    """An instance with a workflow and a few interactions, for persistence-level tests."""

    instance_id: uuid.UUID
    workflow_id: uuid.UUID
    interactions: tuple[uuid.UUID, ...]


def make_playground(session: Session, name: str | None = None, interactions: int = 3) -> Playground:
    """Create (and flush) an instance, a workflow and ``interactions`` interactions."""
    instance = InstanceContext(name=name or f"playground-{uuid.uuid4().hex[:8]}")
    session.add(instance)
    session.flush()
    workflow = LocalWorkflow(
        local_workflow_id=uuid.uuid4(),
        instance_id=instance.instance_id,
        name="playground",
        version="1",
        created_at=datetime.now(UTC),
    )
    rows = [
        LocalInteraction(
            interaction_id=uuid.uuid4(),
            instance_id=instance.instance_id,
            local_workflow_id=workflow.local_workflow_id,
            name=f"step-{i}",
        )
        for i in range(interactions)
    ]
    workflow.definition_hash = objects_hash([workflow, *rows])  # it verifies like an import
    session.add(workflow)
    session.flush()
    session.add_all(rows)
    session.flush()
    return Playground(
        instance.instance_id, workflow.local_workflow_id, tuple(r.interaction_id for r in rows)
    )


def make_uow(
    session: Session,
    play: Playground | None = None,
    *,
    attributes: Mapping[str, Any] | None = None,
    interaction: int | None = 0,
    service: UOWPersistenceService | None = None,
    commit: bool = True,
) -> UnitsOfWork:
    """Create a UOW through the persistence service in ``play`` (a new playground if none).

    It starts at the playground's interaction number ``interaction`` (``None``: at none) and
    is committed unless ``commit`` is false.
    """
    place = play or make_playground(session)
    uow = (service or UOWPersistenceService()).create_uow(
        session,
        instance_id=place.instance_id,
        local_workflow_id=place.workflow_id,
        attributes=attributes,
        interaction_id=None if interaction is None else place.interactions[interaction],
    )
    if commit:
        session.commit()
    return uow


INVOICE_YAML = Path(__file__).parent / "examples" / "invoice_approval.yaml"
LOOPBACK = "127.0.0.1"
INVOICE_WALK = ("triage", "approval")


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A ``python -m chameleon_workflow.server`` child process on a loopback port."""

    def __init__(
        self, database_url: str, log_path: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.admin_token = secrets.token_urlsafe(24)
        self.log_path = log_path
        self._env = {
            **os.environ,
            "CHAMELEON_DATABASE_URL": database_url,
            "CHAMELEON_ADMIN_TOKEN": self.admin_token,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        """Start the process and wait until /health answers."""
        command = [sys.executable, "-m", "chameleon_workflow.server", "--host", LOOPBACK]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*command, "--port", str(self.port)], stdout=log, stderr=log, env=self._env
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout_s} s: {self.log()}")

    def stop(self, timeout_s: float = 30.0) -> int:
        """Send SIGTERM and wait for the exit status (SIGKILL after the timeout)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def stop_cleanly(self) -> bool:
        """Stop with SIGTERM; tell whether the app shut down gracefully (lifespan completed)."""
        status = self.stop()
        # uvicorn re-raises the signal it handled once shutdown is done: -SIGTERM is normal.
        return status in (0, -signal.SIGTERM) and "Application shutdown complete." in self.log()

    def log(self) -> str:
        """Return what the server wrote to stdout and stderr."""
        return self.log_path.read_text(errors="replace")

    def admin(self) -> dict[str, str]:
        """Return the admin's authorization header."""
        return {"Authorization": f"Bearer {self.admin_token}"}


@dataclass(frozen=True, slots=True)
class Cast:
    """An instance with the invoice workflow and actors holding every walking role."""

    instance_id: str
    actor_ids: tuple[str, ...]
    tokens: tuple[str, ...]


def setup_invoice(client: httpx.Client, admin: Mapping[str, str], actors: int) -> Cast:
    """Create an instance, import the invoice workflow and register ``actors`` actors."""
    name = f"bench-{secrets.token_hex(4)}"
    instance = checked_json(client.post("/instances", json={"name": name}, headers=admin))["id"]
    body = {"instance": instance, "yaml": INVOICE_YAML.read_text()}
    checked_json(client.post("/workflows", json=body, headers=admin))
    tokens, actor_ids = [], []
    for n in range(actors):
        actor = {"instance_id": instance, "identity_key": f"worker-{n}"}
        created = checked_json(
            client.post(
                "/actors",
                json={**actor, "name": f"Worker {n}", "actor_type": "AI_AGENT"},
                headers=admin,
            )
        )
        for role in INVOICE_WALK:
            checked_json(
                client.post(
                    f"/actors/{created['actor_id']}/roles", json={"role": role}, headers=admin
                )
            )
        tokens.append(created["token"])
        actor_ids.append(created["actor_id"])
    return Cast(instance, tuple(actor_ids), tuple(tokens))


def checked_json(response: httpx.Response) -> Any:
    """Return the JSON body of a successful response; raise RuntimeError on an error status."""
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url} -> {response.status_code}: {response.text}")
    return response.json()


@contextmanager
def append_only_disabled(engine: Engine) -> Iterator[None]:
    """Remove the append-only and identity triggers for the block (tamper tests), then restore."""
    dialect = engine.dialect.name
    _run_ddl(engine, drop_guard_statements(dialect) + drop_identity_statements(dialect))
    try:
        yield
    finally:
        _run_ddl(engine, guard_statements(dialect) + identity_statements(dialect))


def _run_ddl(engine: Engine, statements: list[str]) -> None:
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        for statement in statements:
            raw.execute(statement)  # type: ignore[union-attr]


class RecordingSink:
    """An in-memory decision sink: keeps what a ShadowLogger forwards (telemetry stand-in)."""

    def __init__(self, accept: bool = True) -> None:
        """Keep events; answer ``accept`` to each, as a full buffer would answer False."""
        self.accept = accept
        self.events: list[GuardEvent] = []

    def record(self, event: GuardEvent) -> bool:
        """Keep the event."""
        self.events.append(event)
        return self.accept

    @property
    def errors(self) -> list[GuardEvent]:
        """Return the evaluation errors kept, in order."""
        return [e for e in self.events if e.kind == "evaluation_error"]

    @property
    def decisions(self) -> list[GuardEvent]:
        """Return the decisions kept, in order."""
        return [e for e in self.events if e.kind == "decision"]
