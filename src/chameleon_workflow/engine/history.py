"""A UOW's ledger as the HTTP API pages it: every row with its ids, hashes and link.

Each entry carries what a client needs to follow the chain (``history_id``, both state
hashes, ``chain_hash`` and its ``link_version``) and names resolved for reading.

The ledger row has no role column, so ``role_id`` is the role the row's metadata names
(routing and failure rows), else the one the workflow's definition leaves no doubt about:
ALPHA for the creation, EPSILON for a remediation, TAU for a zombie reclaim, and for a
checkout, heartbeat or finished step the only role consuming the interaction the UOW
was in; null when the definition leaves it open. ``definition_hash`` is the hash of the
definition a routing decision was made under when the row records one, else the hash of
the UOW's workflow as imported.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chameleon_workflow.db import translated_errors
from chameleon_workflow.engine.paging import Page, check_limit, decode_cursor, encode_cursor
from chameleon_workflow.errors import InvalidValueError, NotFoundError
from chameleon_workflow.models import (
    LocalActor,
    LocalComponent,
    LocalInteraction,
    LocalRole,
    LocalWorkflow,
    UnitsOfWork,
    UnitsOfWorkHistory,
)
from chameleon_workflow.states import Direction, RoleType, UOWStatus

S = UOWStatus
#: Statuses a reclaim by the TAU role moves a UOW into or out of.
ZOMBIE = frozenset({S.ZOMBIED_SOFT, S.ZOMBIED_DEAD})


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One ledger row of a UOW: the transition, its ids, its hashes and its link."""

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
    role_id: uuid.UUID | None
    reasoning: str | None
    changes: Any
    metadata: Any
    previous_state_hash: str | None
    new_state_hash: str
    chain_hash: str
    link_version: int
    definition_hash: str | None


def history_page(
    session: Session, uow_id: uuid.UUID, cursor: str | None, limit: int
) -> Page[HistoryEntry]:
    """Return one page of a UOW's ledger in the order of record (NotFoundError if unknown)."""
    check_limit(limit)
    after = _sequence_of(cursor)
    table = UnitsOfWorkHistory
    with translated_errors():
        workflow_id = session.scalar(
            select(UnitsOfWork.local_workflow_id).where(UnitsOfWork.uow_id == uow_id)
        )
        if workflow_id is None:
            raise NotFoundError(f"no unit of work with id {uow_id}")
        query = (
            select(table)
            .where(table.uow_id == uow_id, table.sequence > after)
            .order_by(table.sequence)
            .limit(limit + 1)
        )
        rows = session.scalars(query).all()
        names = _Names.of(session, workflow_id, rows[:limit])
    kept = rows[:limit]
    following = encode_cursor(kept[-1].sequence) if len(rows) > limit else None
    return Page(tuple(names.entry(row) for row in kept), following)


def _sequence_of(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        return int(decode_cursor(cursor, 1)[0])
    except ValueError:
        raise InvalidValueError("cursor: not a cursor this server returned") from None


@dataclass(frozen=True, slots=True)
class _Names:
    """Names of the interactions, actors and roles one page refers to."""

    interactions: dict[uuid.UUID, str]
    actors: dict[uuid.UUID, str]
    roles: dict[str, uuid.UUID]
    role_of_type: dict[str, uuid.UUID]
    consumers: dict[uuid.UUID, tuple[uuid.UUID, ...]]
    definition_hash: str | None

    @classmethod
    def of(cls, session: Session, workflow_id: uuid.UUID, rows: Any) -> _Names:
        """Look up every name the rows refer to, one query per kind."""
        interaction_ids = {
            i for r in rows for i in (r.previous_interaction_id, r.new_interaction_id) if i
        }
        actor_ids = {r.actor_id for r in rows if r.actor_id}
        interactions = session.execute(
            select(LocalInteraction.interaction_id, LocalInteraction.name).where(
                LocalInteraction.interaction_id.in_(interaction_ids)
            )
        ).all()
        actors = session.execute(
            select(LocalActor.actor_id, LocalActor.name).where(LocalActor.actor_id.in_(actor_ids))
        ).all()
        roles = session.execute(
            select(LocalRole.name, LocalRole.role_id, LocalRole.role_type).where(
                LocalRole.local_workflow_id == workflow_id
            )
        ).all()
        inbound = session.execute(
            select(LocalComponent.interaction_id, LocalComponent.role_id).where(
                LocalComponent.local_workflow_id == workflow_id,
                LocalComponent.direction == Direction.INBOUND,
            )
        ).all()
        definition = session.scalar(
            select(LocalWorkflow.definition_hash).where(
                LocalWorkflow.local_workflow_id == workflow_id
            )
        )
        consumers: dict[uuid.UUID, tuple[uuid.UUID, ...]] = {}
        for interaction_id, role_id in inbound:
            consumers[interaction_id] = (*consumers.get(interaction_id, ()), role_id)
        return cls(
            {row[0]: row[1] for row in interactions},
            {row[0]: row[1] for row in actors},
            {row[0]: row[1] for row in roles},
            {str(row[2]): row[1] for row in roles},
            consumers,
            definition,
        )

    def role_of(self, row: UnitsOfWorkHistory, named: object) -> uuid.UUID | None:
        """Return the role a row was made under, when the metadata or the definition says."""
        if isinstance(named, str):
            return self.roles.get(named)
        before, after = row.previous_status, row.new_status
        if before is None:
            return self.role_of_type.get(RoleType.ALPHA)
        if after in ZOMBIE or (before in ZOMBIE and after == S.PENDING):
            return self.role_of_type.get(RoleType.TAU)
        if before in (S.FAILED, S.ZOMBIED_DEAD) and after == S.PENDING:
            return self.role_of_type.get(RoleType.EPSILON)
        if S.ACTIVE in (before, after) and row.previous_interaction_id is not None:
            only = self.consumers.get(row.previous_interaction_id, ())
            return only[0] if len(only) == 1 else None
        return None

    def entry(self, row: UnitsOfWorkHistory) -> HistoryEntry:
        """Build the entry of one row."""
        metadata = row.transition_metadata
        route = metadata.get("route") if isinstance(metadata, dict) else None
        role_name = (route or {}).get("role") if isinstance(route, dict) else None
        if role_name is None and isinstance(metadata, dict):
            role_name = metadata.get("role")
        recorded = route.get("definition") if isinstance(route, dict) else None
        return HistoryEntry(
            history_id=row.history_id,
            sequence=row.sequence,
            timestamp=row.transition_timestamp,
            event_type=str(row.event_type),
            previous_status=None if row.previous_status is None else str(row.previous_status),
            new_status=str(row.new_status),
            previous_interaction_id=row.previous_interaction_id,
            previous_interaction=self._name(self.interactions, row.previous_interaction_id),
            new_interaction_id=row.new_interaction_id,
            new_interaction=self._name(self.interactions, row.new_interaction_id),
            actor_id=row.actor_id,
            actor=self._name(self.actors, row.actor_id),
            role_id=self.role_of(row, role_name),
            reasoning=row.reasoning,
            changes=row.changes,
            metadata=metadata,
            previous_state_hash=row.previous_state_hash,
            new_state_hash=row.new_state_hash,
            chain_hash=row.chain_hash,
            link_version=row.link_version,
            definition_hash=recorded if isinstance(recorded, str) else self.definition_hash,
        )

    @staticmethod
    def _name(table: dict[uuid.UUID, str], key: uuid.UUID | None) -> str | None:
        return None if key is None else table.get(key, str(key))
