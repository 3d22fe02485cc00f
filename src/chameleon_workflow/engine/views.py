"""The frozen values the engine hands out: UOW views, sweep results, actor and role facts.

No ORM object leaves the engine: a UOW row is frozen into a ``UOWView`` before it is
returned, and the actors and roles it looks up are kept as facts, which never change
once written and so may be cached.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from chameleon_workflow.models import UnitsOfWork


@dataclass(frozen=True, slots=True)
class UOWView:
    """A unit of work as the engine reports it: status, place, holder and attributes."""

    uow_id: uuid.UUID
    instance_id: uuid.UUID
    workflow_id: uuid.UUID
    status: str
    interaction_id: uuid.UUID | None
    interaction: str | None
    held_by: uuid.UUID | None
    retry_count: int
    version: int
    last_heartbeat_at: datetime | None
    attributes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ParkedUOW:
    """A UOW waiting for a pilot: why (approval or clarification), since when, its state."""

    uow_id: uuid.UUID
    workflow: str
    interaction: str | None
    kind: str
    rule: str | None
    role: str | None
    intended_status: str | None
    question: str | None
    asked_by: uuid.UUID | None
    since: datetime
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one zombie sweep did: UOWs re-queued, UOWs declared dead, UOWs skipped."""

    requeued: int
    dead: int
    skipped: int = 0

    @property
    def reclaimed(self) -> int:
        """Return how many stale UOWs the sweep took away from their holders."""
        return self.requeued + self.dead


@dataclass(frozen=True, slots=True)
class ActorFacts:
    """What the engine needs to know about an actor (immutable once registered)."""

    actor_id: uuid.UUID
    instance_id: uuid.UUID
    identity_key: str
    actor_type: str


@dataclass(frozen=True, slots=True)
class RoleFacts:
    """Where a role lives (immutable once imported)."""

    role_id: uuid.UUID
    instance_id: uuid.UUID
    workflow_id: uuid.UUID
    name: str


def make_view(uow: UnitsOfWork, interaction: str | None, attributes: Mapping[str, Any]) -> UOWView:
    """Freeze the current state of a UOW row into a view."""
    return UOWView(
        uow_id=uow.uow_id,
        instance_id=uow.instance_id,
        workflow_id=uow.local_workflow_id,
        status=str(uow.status),
        interaction_id=uow.current_interaction_id,
        interaction=interaction,
        held_by=uow.held_by_actor_id,
        retry_count=uow.retry_count,
        version=uow.version,
        last_heartbeat_at=uow.last_heartbeat_at,
        attributes=MappingProxyType(dict(attributes)),
    )
