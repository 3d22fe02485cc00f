"""The engine's reads: actors, roles and UOW rows it looks up, and the queue queries.

Nothing here changes UOW state; the engine hands every transition to the persistence
service. The lookups raise ``NotFoundError`` / ``NotAuthorizedError`` naming what was
missing; the queue queries (claiming, finding and re-reading stale UOWs) are the only
ones whose text depends on the back end, and ``Queue`` picks that once per database.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    bindparam,
    exists,
    literal_column,
    or_,
    select,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from chameleon_workflow.db import is_sqlite
from chameleon_workflow.engine.views import ActorFacts, RoleFacts
from chameleon_workflow.errors import (
    InstancePausedError,
    InvalidValueError,
    NotAuthorizedError,
    NotFoundError,
)
from chameleon_workflow.models import (
    ActorRoleAssignment,
    InstanceContext,
    LocalActor,
    LocalRole,
    UnitsOfWork,
    UnitsOfWorkHistory,
    as_uuid,
)
from chameleon_workflow.states import ActorType, HistoryEvent, InstanceStatus, UOWStatus

Selected = TypeVar("Selected")


def get_actor(session: Session, actor_id: uuid.UUID | str) -> ActorFacts:
    """Return the actor or raise NotFoundError."""
    actor = session.get(LocalActor, as_uuid(actor_id, "actor id"))
    if actor is None:
        raise NotFoundError(f"no actor with id {actor_id}")
    return ActorFacts(actor.actor_id, actor.instance_id, actor.identity_key, actor.actor_type)


def get_uow_row(session: Session, uow_id: uuid.UUID | str) -> UnitsOfWork:
    """Return the UOW row or raise NotFoundError."""
    uow = session.get(UnitsOfWork, as_uuid(uow_id, "UOW id"))
    if uow is None:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    return uow


def find_role(session: Session, instance_id: uuid.UUID, role: uuid.UUID | str) -> RoleFacts:
    """Return the role named or identified by ``role`` in an instance."""
    row = _role_row(session, instance_id, role)
    return RoleFacts(row.role_id, row.instance_id, row.local_workflow_id, row.name)


def _role_row(session: Session, instance_id: uuid.UUID, role: uuid.UUID | str) -> LocalRole:
    """Return the role named or identified by ``role`` in an instance."""
    role_id = _maybe_uuid(role)
    if role_id is not None:
        row = session.get(LocalRole, role_id)
        if row is None or row.instance_id != instance_id:
            raise NotFoundError(f"no role with id {role_id} in instance {instance_id}")
        return row
    query = select(LocalRole).where(LocalRole.instance_id == instance_id, LocalRole.name == role)
    rows = list(session.scalars(query))
    if not rows:
        raise NotFoundError(f"no role named {role!r} in instance {instance_id}")
    if len(rows) > 1:
        raise InvalidValueError(
            f"role name {role!r} is used by {len(rows)} workflows in instance {instance_id}; "
            "pass the role id"
        )
    return rows[0]


def _maybe_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def actor_role_ids(session: Session, actor_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """Return the ids of every role assigned to an actor."""
    query = select(ActorRoleAssignment.role_id).where(ActorRoleAssignment.actor_id == actor_id)
    return frozenset(session.scalars(query))


def require_role(session: Session, actor: ActorFacts, role_id: uuid.UUID, role_name: str) -> None:
    """Raise NotAuthorizedError unless the actor holds the role."""
    query = select(ActorRoleAssignment.assignment_id).where(
        ActorRoleAssignment.actor_id == actor.actor_id, ActorRoleAssignment.role_id == role_id
    )
    if session.execute(query).first() is None:
        raise NotAuthorizedError(
            f"actor {actor.identity_key!r} ({actor.actor_id}) does not hold role {role_name!r}"
        )


#: The grant and the instance's status, one statement (built once: the hot path).
_GRANT_AND_STATUS = select(
    exists().where(
        ActorRoleAssignment.actor_id == bindparam("actor_id"),
        ActorRoleAssignment.role_id == bindparam("role_id"),
    ),
    select(InstanceContext.status)
    .where(InstanceContext.instance_id == bindparam("instance_id"))
    .scalar_subquery(),
)
#: The UOW table's columns, read by Core and handed to the Session by ``adopt_uow``.
_UOW = UnitsOfWork.__table__.c
_GRANTS = ActorRoleAssignment.__table__.c
_UOW_COLUMNS = tuple(_UOW)
_UOW_MAPPER = sa_inspect(UnitsOfWork)
#: The mapped attribute of each column of ``_UOW_COLUMNS``, in the same order.
_UOW_KEYS = tuple(_UOW_MAPPER.get_property_by_column(c).key for c in _UOW_COLUMNS)
_UOW_WIDTH = len(_UOW_COLUMNS)
#: A UOW row with every role id of one actor (one row per grant; NULL when none).
_UOW_WITH_ROLE_IDS = (
    select(*_UOW_COLUMNS, _GRANTS.role_id)
    .outerjoin(ActorRoleAssignment.__table__, _GRANTS.actor_id == bindparam("actor_id"))
    .where(_UOW.uow_id == bindparam("uow_id"))
)


def adopt_uow(session: Session, row: Sequence[Any]) -> UnitsOfWork:
    """Return the Session's UnitsOfWork for a row of ``_UOW_COLUMNS`` read by Core.

    What an ORM load of the row gives, for less: the object the Session already holds
    for that id (unchanged, as an ORM load leaves it), else a new persistent object with
    the row's values as its committed state (nothing to flush, no pending change).
    """
    key = _UOW_MAPPER.identity_key_from_primary_key((row[0],))
    held = session.identity_map.get(key)
    if held is not None:
        return held
    uow = _UOW_MAPPER.class_manager.new_instance()
    state = instance_state(uow)
    state.dict.update(zip(_UOW_KEYS, row[:_UOW_WIDTH], strict=True))
    state.key = key
    session.add(uow)
    return uow


def require_role_paused(
    session: Session, actor: ActorFacts, role_id: uuid.UUID, role_name: str
) -> bool:
    """Raise NotAuthorizedError unless the actor holds the role; tell if its instance is paused.

    One statement asks both, on the Session's connection (no ORM entity is loaded), so a
    checkout pays one round trip for the two checks.
    """
    params = {"actor_id": actor.actor_id, "role_id": role_id, "instance_id": actor.instance_id}
    held, state = session.connection().execute(_GRANT_AND_STATUS, params).one()
    if not held:
        raise NotAuthorizedError(
            f"actor {actor.identity_key!r} ({actor.actor_id}) does not hold role {role_name!r}"
        )
    return bool(state == InstanceStatus.PAUSED)


def refuse_paused(instance_id: uuid.UUID) -> None:
    """Raise InstancePausedError: no checkout in a paused instance."""
    raise InstancePausedError(
        f"instance {instance_id} is paused by a pilot: no checkout until it is resumed"
    )


def uow_with_role_ids(
    session: Session, uow_id: uuid.UUID | str, actor_id: uuid.UUID
) -> tuple[UnitsOfWork, frozenset[uuid.UUID]]:
    """Return the UOW row and the ids of every role the actor holds, in one statement."""
    params = {"actor_id": actor_id, "uow_id": as_uuid(uow_id, "UOW id")}
    rows = session.connection().execute(_UOW_WITH_ROLE_IDS, params).all()
    if not rows:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    roles = frozenset(row[_UOW_WIDTH] for row in rows if row[_UOW_WIDTH] is not None)
    return adopt_uow(session, rows[0]), roles


def require_holder(uow: UnitsOfWork, actor: ActorFacts) -> None:
    """Raise NotAuthorizedError unless the actor holds the (ACTIVE) UOW."""
    if uow.instance_id != actor.instance_id:
        # Nothing about another instance's UOW (its holder, its status) reaches the caller.
        raise NotAuthorizedError(f"UOW {uow.uow_id} belongs to another instance")
    if uow.held_by_actor_id != actor.actor_id or uow.status != UOWStatus.ACTIVE:
        holder = uow.held_by_actor_id or "nobody"
        raise NotAuthorizedError(
            f"actor {actor.identity_key!r} ({actor.actor_id}) does not hold UOW {uow.uow_id} "
            f"(status {uow.status}, held by {holder})"
        )


def system_actor_for(session: Session, role_id: uuid.UUID) -> uuid.UUID | None:
    """Return a SYSTEM actor holding the role (the TAU sweeper), if there is one."""
    query = (
        select(LocalActor.actor_id)
        .join(ActorRoleAssignment, ActorRoleAssignment.actor_id == LocalActor.actor_id)
        .where(ActorRoleAssignment.role_id == role_id, LocalActor.actor_type == ActorType.SYSTEM)
        .order_by(LocalActor.created_at, LocalActor.actor_id)
        .limit(1)
    )
    return session.scalars(query).first()


def failed_from(session: Session, uow_id: uuid.UUID) -> uuid.UUID | None:
    """Return the interaction a FAILED UOW was in when it failed (from its history)."""
    table = UnitsOfWorkHistory
    query = (
        select(table.previous_interaction_id)
        .where(
            table.uow_id == uow_id,
            table.new_status == UOWStatus.FAILED,
            table.previous_status != UOWStatus.FAILED,
        )
        .order_by(table.sequence.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def parked_note(
    session: Session, uow_id: uuid.UUID, status: str = UOWStatus.PENDING_PILOT_APPROVAL
) -> tuple[dict[str, Any], uuid.UUID | None, datetime]:
    """Return the metadata, actor and time of the row that last moved a UOW into ``status``."""
    table = UnitsOfWorkHistory
    query = (
        select(table.transition_metadata, table.actor_id, table.transition_timestamp)
        .where(
            table.uow_id == uow_id,
            table.new_status == status,
            or_(table.previous_status != status, table.previous_status.is_(None)),
        )
        .order_by(table.sequence.desc())
        .limit(1)
    )
    row = session.execute(query).first()
    if row is None:
        raise NotFoundError(f"UOW {uow_id} never entered {status}")
    note = row[0] if isinstance(row[0], dict) else {}
    return note, row[1], row[2]


def waived_guardians(session: Session, uow_id: uuid.UUID, interaction_id: uuid.UUID) -> set[str]:
    """Return the guardians a pilot waived for this UOW at this interaction."""
    table = UnitsOfWorkHistory
    query = select(table.transition_metadata).where(
        table.uow_id == uow_id,
        table.event_type == HistoryEvent.WAIVER,
        table.new_interaction_id == interaction_id,
    )
    found: set[str] = set()
    for note in session.scalars(query):
        waiver = note.get("waiver") if isinstance(note, dict) else None
        if isinstance(waiver, dict) and isinstance(waiver.get("guardian"), str):
            found.add(waiver["guardian"])
    return found


@dataclass(frozen=True, slots=True)
class Queue:
    """The queue queries of one back end: claim a PENDING UOW, find and re-read stale ones.

    PostgreSQL: a claim and a sweep's re-read lock their row ``FOR UPDATE SKIP LOCKED``,
    so concurrent claimers and sweepers pass each other instead of waiting on one row.
    SQLite: no row lock; the engine's BEGIN IMMEDIATE transaction already excludes every
    other writer.
    """

    skip_locked: bool

    @classmethod
    def for_engine(cls, engine: Engine) -> Queue:
        """Return the queue queries for the engine's back end."""
        return cls(skip_locked=not is_sqlite(engine))

    def claim_next(
        self, session: Session, interaction_ids: Sequence[uuid.UUID]
    ) -> UnitsOfWork | None:
        """Return the oldest PENDING UOW waiting in one of the interactions."""
        claim = _claim(len(interaction_ids), self.skip_locked)
        params = {f"i{n}": interaction_id for n, interaction_id in enumerate(interaction_ids)}
        row = session.connection().execute(claim, params).first()
        return None if row is None else adopt_uow(session, row)

    def checked_claim(
        self,
        session: Session,
        actor: ActorFacts,
        role_id: uuid.UUID,
        role_name: str,
        interaction_ids: Sequence[uuid.UUID],
    ) -> tuple[bool, UnitsOfWork | None]:
        """Ask the grant and the pause with the first claim: one statement, not two.

        Raises NotAuthorizedError unless the actor holds the role, as
        ``require_role_paused`` does; returns whether the instance is paused and the
        claimed UOW. When the queue is empty the statement returns no row, and the two
        checks are asked on their own. A UOW claimed by a checkout that then raises is
        released with its transaction's rollback.
        """  # fmt: skip
        claim = _claim(len(interaction_ids), self.skip_locked, checked=True)
        params = {f"i{n}": interaction_id for n, interaction_id in enumerate(interaction_ids)}
        params.update(actor_id=actor.actor_id, role_id=role_id, instance_id=actor.instance_id)
        row = session.connection().execute(claim, params).first()
        if row is None:
            return require_role_paused(session, actor, role_id, role_name), None
        if not row[_UOW_WIDTH]:
            raise NotAuthorizedError(
                f"actor {actor.identity_key!r} ({actor.actor_id}) does not hold role {role_name!r}"
            )
        return row[_UOW_WIDTH + 1] == InstanceStatus.PAUSED, adopt_uow(session, row)

    def stale_uow_ids(
        self, session: Session, cutoff: datetime, instance_id: uuid.UUID | None = None
    ) -> list[uuid.UUID]:
        """Return the ACTIVE UOWs (of one instance if given) gone quiet since ``cutoff``."""
        query = (
            select(UnitsOfWork.uow_id)
            .where(*_stale(cutoff))
            .order_by(UnitsOfWork.last_heartbeat_at)
        )
        if instance_id is not None:
            query = query.where(UnitsOfWork.instance_id == instance_id)
        return list(session.scalars(query))

    def lock_stale(
        self, session: Session, uow_id: uuid.UUID, cutoff: datetime
    ) -> UnitsOfWork | None:
        """Re-read one sweep candidate under lock; None when it is no longer stale."""
        query = select(UnitsOfWork).where(UnitsOfWork.uow_id == uow_id, *_stale(cutoff))
        return session.scalars(self._locked(query)).first()

    def _locked(self, query: Select[Selected]) -> Select[Selected]:
        return query.with_for_update(skip_locked=True) if self.skip_locked else query


@functools.lru_cache(maxsize=64)
def _claim(count: int, locked: bool, *, checked: bool = False) -> Select[Any]:
    """Return the claim of the oldest PENDING UOW of ``count`` interactions (``:i0`` ...).

    Built once per count and kept, with one plain parameter per interaction: an
    expanding IN parameter would have its SQL rewritten on every checkout. ``checked``
    adds the grant and the instance's status (``_GRANT_AND_STATUS``) to the row.
    """
    claim = (
        select(*_UOW_COLUMNS, *(_GRANT_AND_STATUS.selected_columns if checked else ()))
        .where(
            _UOW.current_interaction_id.in_(
                [bindparam(f"i{n}", type_=_UOW.current_interaction_id.type) for n in range(count)]
            ),
            # A literal, not a parameter: even a generic plan matches it to the queue index.
            _UOW.status == literal_column("'PENDING'"),
        )
        .order_by(_UOW.created_at, _UOW.uow_id)
        .limit(1)
    )
    return claim.with_for_update(skip_locked=True) if locked else claim


def _stale(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    """Return the conditions of an ACTIVE UOW whose holder has gone quiet since ``cutoff``."""
    return (
        # A literal, not a parameter: even a generic plan matches it to the sweep index.
        UnitsOfWork.status == literal_column("'ACTIVE'"),
        or_(UnitsOfWork.last_heartbeat_at < cutoff, UnitsOfWork.last_heartbeat_at.is_(None)),
    )
