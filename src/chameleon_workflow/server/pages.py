"""Response bodies of the list and read routes: instances, workflows, actors, UOW pages, history.

Each list answers ``{"items": [...], "next_cursor": str | null}``; the cursor is opaque
and null on the last page. Bodies are built field by field from the engine's frozen
views (``engine.listing``, ``engine.history``).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chameleon_workflow.server.schemas import UOW


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Instance(_Frozen):
    """An instance: an isolation container for workflows, actors and UOWs."""

    instance_id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime


class WorkflowRole(_Frozen):
    """A role of a workflow."""

    role_id: uuid.UUID
    name: str
    role_type: str


class WorkflowInteraction(_Frozen):
    """An interaction of a workflow."""

    interaction_id: uuid.UUID
    name: str


class Workflow(_Frozen):
    """An imported workflow and the hash of its definition."""

    workflow_id: uuid.UUID
    instance_id: uuid.UUID
    name: str
    version: str
    definition_hash: str | None
    created_at: datetime


class WorkflowDetail(Workflow):
    """An imported workflow with its roles and interactions (ids and names)."""

    roles: list[WorkflowRole]
    interactions: list[WorkflowInteraction]


class ActorRole(_Frozen):
    """A role an actor holds."""

    role_id: uuid.UUID
    name: str


class Actor(_Frozen):
    """An actor, the roles it holds, and whether it has a working bearer token."""

    actor_id: uuid.UUID
    instance_id: uuid.UUID
    identity_key: str
    name: str
    actor_type: str
    roles: list[ActorRole]
    has_token: bool


class HistoryEntry(_Frozen):
    """One ledger row: the transition, its ids, both state hashes and its link."""

    history_id: uuid.UUID
    sequence: int
    timestamp: datetime
    event_type: str
    previous_status: str | None
    new_status: str
    previous_interaction_id: uuid.UUID | None
    previous_interaction: str | None
    new_interaction_id: uuid.UUID | None
    new_interaction: str | None
    actor_id: uuid.UUID | None
    actor: str | None
    role_id: uuid.UUID | None = Field(
        description=(
            "The role the row's metadata names, else the one the definition implies "
            "(see docs/server.md); null when it leaves it open."
        )
    )
    reasoning: str | None
    changes: Any
    metadata: Any
    previous_state_hash: str | None
    new_state_hash: str
    chain_hash: str
    link_version: int
    definition_hash: str | None


class InstancePage(_Frozen):
    """A page of instances."""

    items: list[Instance]
    next_cursor: str | None


class WorkflowPage(_Frozen):
    """A page of workflows."""

    items: list[Workflow]
    next_cursor: str | None


class ActorPage(_Frozen):
    """A page of actors."""

    items: list[Actor]
    next_cursor: str | None


class UOWPage(_Frozen):
    """A page of UOWs."""

    items: list[UOW]
    next_cursor: str | None


class HistoryPage(_Frozen):
    """A page of a UOW's ledger, in the order of record."""

    items: list[HistoryEntry]
    next_cursor: str | None


Model = TypeVar("Model", bound=BaseModel)


def body_of(model: type[Model], view: Any) -> Model:
    """Render a frozen dataclass view (nested ones too) as ``model``, field by field."""
    data = asdict(view)
    return model.model_validate({name: data[name] for name in model.model_fields})
