"""What the HTTP API answers, as frozen pydantic models.

Fields the server may add later are ignored rather than refused, so an older client keeps
working against a newer server; fields a server release may not send yet default to None.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    """Base of every answer: frozen, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Page(Model, Generic[T]):
    """One page of a listing; ``next_cursor`` fetches the next one (None on the last)."""

    items: list[T]
    next_cursor: str | None = None


class UOW(Model):
    """A unit of work: status, place, holder, version and current attributes."""

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
    attributes: dict[str, Any]


class Created(Model):
    """The id of something just created."""

    id: uuid.UUID


class ActorCreated(Model):
    """A new actor (or a new token for one); the token is shown only in this answer."""

    actor_id: uuid.UUID
    token: str


class RoleAssigned(Model):
    """An actor now holds a role."""

    actor_id: uuid.UUID
    role_id: uuid.UUID


class Instance(Model):
    """An isolation container of workflows, actors and UOWs."""

    instance_id: uuid.UUID
    name: str
    description: str | None = None
    created_at: datetime | None = None


class RoleRef(Model):
    """A role of a workflow, by id and name."""

    role_id: uuid.UUID
    name: str
    role_type: str | None = None


class InteractionRef(Model):
    """An interaction (a place a UOW waits) of a workflow."""

    interaction_id: uuid.UUID
    name: str


class Workflow(Model):
    """One imported version of a workflow; read alone, it lists its roles and interactions."""

    workflow_id: uuid.UUID
    instance_id: uuid.UUID
    name: str
    version: str
    definition_hash: str | None = None
    created_at: datetime | None = None
    roles: list[RoleRef] = Field(default_factory=list)
    interactions: list[InteractionRef] = Field(default_factory=list)


class Actor(Model):
    """A registered actor, the roles it holds, and whether it has a working token."""

    actor_id: uuid.UUID
    instance_id: uuid.UUID
    identity_key: str
    name: str
    actor_type: str
    roles: list[RoleRef] = Field(default_factory=list)
    has_token: bool = False


class HistoryEntry(Model):
    """One ledger row of a UOW: the transition, its attribute diff, and its hashes."""

    sequence: int
    timestamp: datetime
    event_type: str
    previous_status: str | None
    new_status: str
    previous_interaction: str | None = None
    new_interaction: str | None = None
    previous_interaction_id: uuid.UUID | None = None
    new_interaction_id: uuid.UUID | None = None
    actor: str | None = None
    reasoning: str | None = None
    changes: Any = None
    metadata: Any = None
    new_state_hash: str
    chain_hash: str
    history_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None
    previous_state_hash: str | None = None
    link_version: int | None = None
    definition_hash: str | None = None


class Finding(Model):
    """One broken item verification found."""

    kind: str
    uow_id: str
    sequence: int | None
    detail: str


class Verification(Model):
    """A verification report: what was checked and every finding."""

    ok: bool
    uows_checked: int
    history_rows_checked: int
    attribute_rows_checked: int
    findings: list[Finding]
    elapsed_s: float
    notices: list[str] = []


class LogEntry(Model):
    """One interaction-log row."""

    log_id: uuid.UUID
    timestamp: datetime
    log_type: str
    instance_id: uuid.UUID | None
    uow_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    interaction_id: uuid.UUID | None
    event_details: Any
    error_metadata: Any


class LogPage(Model):
    """A page of log rows, newest first."""

    items: list[LogEntry]
    limit: int
    offset: int


class Checkpoint(Model):
    """A signed checkpoint: the Merkle root of the ledger's first ``tree_size`` rows."""

    format: str
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str


class ServiceStatus(Model):
    """One background service of the server."""

    name: str
    state: Literal["running", "failing", "stopped"]
    failures_total: int
    consecutive_failures: int
    last_error: str | None


class Health(Model):
    """Liveness of the parts the server depends on."""

    status: Literal["ok", "degraded"]
    database: bool
    flusher_alive: bool
    services: list[ServiceStatus]
    buffer_pending: int
    buffer_capacity: int
    buffer_fill: float


class Problem(Model):
    """An RFC 9457 problem document: the body of every error answer."""

    type: str = "about:blank"
    title: str = ""
    status: int
    detail: str = ""
    problems: list[str] | None = None
