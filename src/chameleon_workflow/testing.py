"""Fakes and helpers for tests of code that uses Chameleon (shipped on purpose)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chameleon_workflow.guard import GuardEvent
from chameleon_workflow.models import (
    InstanceContext,
    LocalInteraction,
    LocalWorkflow,
)
from chameleon_workflow.schema import create_statements, drop_statements


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
    workflow = LocalWorkflow(instance_id=instance.instance_id, name="playground")
    session.add(workflow)
    session.flush()
    rows = [
        LocalInteraction(
            instance_id=instance.instance_id,
            local_workflow_id=workflow.local_workflow_id,
            name=f"step-{i}",
        )
        for i in range(interactions)
    ]
    session.add_all(rows)
    session.flush()
    return Playground(
        instance.instance_id, workflow.local_workflow_id, tuple(r.interaction_id for r in rows)
    )


@contextmanager
def append_only_disabled(engine: Engine) -> Iterator[None]:
    """Remove the append-only triggers for the block (tamper tests), then restore them."""
    dialect = engine.dialect.name
    _run_ddl(engine, drop_statements(dialect))
    try:
        yield
    finally:
        _run_ddl(engine, create_statements(dialect))


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
