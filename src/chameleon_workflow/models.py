"""SQLAlchemy 2 typed models: the schema of SPEC §1 on SQLite and PostgreSQL."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from chameleon_workflow.columns import GUID, JSONDoc, UTCDateTime
from chameleon_workflow.errors import NotFoundError
from chameleon_workflow.states import (
    ActorType,
    Direction,
    GuardianType,
    HistoryEvent,
    InstanceStatus,
    LogType,
    RoleType,
    UOWStatus,
)


def utcnow() -> datetime:
    """Return the current moment, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_uuid(value: uuid.UUID | str, what: str) -> uuid.UUID:
    """Parse an id, naming what it was meant to be when it is not one (NotFoundError)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError(f"{what} {value!r} is not a valid id") from None


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base carrying the constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(GUID(), primary_key=True, default=uuid.uuid4)


def _fk(target: str, *, nullable: bool = False) -> Mapped[Any]:
    return mapped_column(GUID(), ForeignKey(target), nullable=nullable, index=True)


class InstanceContext(Base):
    """An isolation container: everything else belongs to exactly one instance."""

    __tablename__ = "instance_context"

    instance_id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[InstanceStatus] = mapped_column(
        _enum(InstanceStatus, "instance_status"), default=InstanceStatus.ACTIVE
    )
    deployment_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LocalWorkflow(Base):
    """A workflow definition copied into an instance."""

    __tablename__ = "local_workflows"
    __table_args__ = (UniqueConstraint("instance_id", "name"),)

    local_workflow_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(50), default="1")
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: SHA-256 over every row of the definition (see ``definitions``); set at import.
    definition_hash: Mapped[str | None] = mapped_column(String(64))


class LocalRole(Base):
    """A role (ALPHA, BETA, OMEGA, EPSILON, TAU) of a local workflow."""

    __tablename__ = "local_roles"
    __table_args__ = (UniqueConstraint("local_workflow_id", "name"),)

    role_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    local_workflow_id: Mapped[uuid.UUID] = _fk("local_workflows.local_workflow_id")
    name: Mapped[str] = mapped_column(String(200))
    role_type: Mapped[RoleType] = mapped_column(_enum(RoleType, "role_type"))
    description: Mapped[str | None] = mapped_column(Text)


class LocalInteraction(Base):
    """A holding place where UOWs wait between roles."""

    __tablename__ = "local_interactions"
    __table_args__ = (UniqueConstraint("local_workflow_id", "name"),)

    interaction_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    local_workflow_id: Mapped[uuid.UUID] = _fk("local_workflows.local_workflow_id")
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)


class LocalComponent(Base):
    """A connection between a role and an interaction, INBOUND or OUTBOUND."""

    __tablename__ = "local_components"
    __table_args__ = (UniqueConstraint("role_id", "interaction_id", "direction"),)

    component_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    local_workflow_id: Mapped[uuid.UUID] = _fk("local_workflows.local_workflow_id")
    role_id: Mapped[uuid.UUID] = _fk("local_roles.role_id")
    interaction_id: Mapped[uuid.UUID] = _fk("local_interactions.interaction_id")
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    name: Mapped[str] = mapped_column(String(200))


class LocalGuardian(Base):
    """A guardian standing on a component, with its configuration (policy, criteria)."""

    __tablename__ = "local_guardians"
    __table_args__ = (UniqueConstraint("component_id", "name"),)

    guardian_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    local_workflow_id: Mapped[uuid.UUID] = _fk("local_workflows.local_workflow_id")
    component_id: Mapped[uuid.UUID] = _fk("local_components.component_id")
    name: Mapped[str] = mapped_column(String(200))
    guardian_type: Mapped[GuardianType] = mapped_column(_enum(GuardianType, "guardian_type"))
    config: Mapped[Any] = mapped_column(JSONDoc, nullable=True)


class LocalActor(Base):
    """Someone or something that acts on UOWs: a person, an AI agent or the system."""

    __tablename__ = "local_actors"
    __table_args__ = (UniqueConstraint("instance_id", "identity_key"),)

    actor_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    identity_key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    actor_type: Mapped[ActorType] = mapped_column("type", _enum(ActorType, "actor_type"))
    capabilities: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ActorRoleAssignment(Base):
    """Grants an actor a role in its instance."""

    __tablename__ = "actor_role_assignments"
    __table_args__ = (UniqueConstraint("actor_id", "role_id"),)

    assignment_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    actor_id: Mapped[uuid.UUID] = _fk("local_actors.actor_id")
    role_id: Mapped[uuid.UUID] = _fk("local_roles.role_id")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UnitsOfWork(Base):
    """A unit of work; only ``UOWPersistenceService`` writes it."""

    __tablename__ = "units_of_work"
    __table_args__ = (
        # Claim order (created_at, uow_id) behind the filter columns: checkout reads the
        # oldest PENDING UOW of an interaction straight off the index.
        Index("ix_units_of_work_queue", "current_interaction_id", "status", "created_at", "uow_id"),
        Index("ix_units_of_work_status_heartbeat", "status", "last_heartbeat_at"),
    )

    uow_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    local_workflow_id: Mapped[uuid.UUID] = _fk("local_workflows.local_workflow_id")
    parent_id: Mapped[uuid.UUID | None] = _fk("units_of_work.uow_id", nullable=True)
    # Indexed through ix_units_of_work_queue (leading column).
    current_interaction_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID(), ForeignKey("local_interactions.interaction_id"), nullable=True
    )
    status: Mapped[UOWStatus] = mapped_column(_enum(UOWStatus, "uow_status"))
    content_hash: Mapped[str] = mapped_column(String(64))
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    held_by_actor_id: Mapped[uuid.UUID | None] = _fk("local_actors.actor_id", nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    history_sequence: Mapped[int] = mapped_column(Integer, default=0)
    chain_head: Mapped[str] = mapped_column(String(64))
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    history: Mapped[list[UnitsOfWorkHistory]] = relationship(
        back_populates="uow",
        order_by="UnitsOfWorkHistory.sequence",
        viewonly=True,  # history is written by the service alone and never cascaded
    )


class UOWAttribute(Base):
    """One version of one attribute of a UOW; rows are never updated in place."""

    __tablename__ = "uow_attributes"
    __table_args__ = (UniqueConstraint("uow_id", "key", "version"),)

    attribute_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # Indexed through the (uow_id, key, version) unique constraint.
    uow_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("units_of_work.uow_id"))
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    key: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    value: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    reasoning: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Format 2 (docs/ledger.md); NULL on rows written before it. The history row with this
    # sequence commits to value_digest = SHA-256(salt || canonical value), never the value.
    salt: Mapped[str | None] = mapped_column(String(32))
    value_digest: Mapped[str | None] = mapped_column(String(64))
    history_sequence: Mapped[int | None] = mapped_column(Integer)


class UnitsOfWorkHistory(Base):
    """The ledger: one hash-chained row per change of a UOW, append-only in the database."""

    __tablename__ = "uow_history"
    __table_args__ = (UniqueConstraint("uow_id", "sequence"),)

    history_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID] = _fk("instance_context.instance_id")
    # Indexed through the (uow_id, sequence) unique constraint.
    uow_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("units_of_work.uow_id"))
    sequence: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[HistoryEvent] = mapped_column(_enum(HistoryEvent, "history_event"))
    previous_status: Mapped[UOWStatus | None] = mapped_column(
        _enum(UOWStatus, "previous_status"), nullable=True
    )
    new_status: Mapped[UOWStatus] = mapped_column(_enum(UOWStatus, "new_status"))
    previous_state_hash: Mapped[str | None] = mapped_column(String(64))
    new_state_hash: Mapped[str] = mapped_column(String(64))
    # Recorded values, deliberately without foreign keys: the ledger is evidence of what
    # was, independent of definition rows, and each extra index slows every append.
    previous_interaction_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    new_interaction_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    actor_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    transition_timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reasoning: Mapped[str | None] = mapped_column(Text)
    transition_metadata: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    changes: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    chain_hash: Mapped[str] = mapped_column(String(64))
    # Link format 2 (docs/ledger.md): a MAC under the ledger key ``key_id`` that also covers
    # the holder and retry count after the row, the digest of the attribute rows written
    # with it, and (on CREATED rows) the UOW's workflow and parent. 1: the unkeyed format.
    link_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    key_id: Mapped[str | None] = mapped_column(String(64))
    holder_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    retry_count: Mapped[int | None] = mapped_column(Integer)
    attributes_digest: Mapped[str | None] = mapped_column(String(64))
    local_workflow_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    parent_id: Mapped[uuid.UUID | None] = mapped_column(GUID())

    uow: Mapped[UnitsOfWork] = relationship(back_populates="history", viewonly=True)


class LedgerKeyEvent(Base):
    """The key ledger: row 0 seals the unkeyed rows, each later one makes a key current."""

    __tablename__ = "ledger_keys"

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key_id: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    legacy_history_rows: Mapped[int | None] = mapped_column(Integer)
    legacy_attribute_rows: Mapped[int | None] = mapped_column(Integer)
    legacy_digest: Mapped[str | None] = mapped_column(String(64))
    link_version: Mapped[int] = mapped_column(Integer)
    chain_hash: Mapped[str] = mapped_column(String(64))


class InteractionLog(Base):
    """The telemetry and audit stream; ids carry no foreign keys so a flush never fails on them."""

    __tablename__ = "interaction_logs"
    __table_args__ = (Index("ix_interaction_logs_type_time", "log_type", "timestamp"),)

    log_id: Mapped[uuid.UUID] = _pk()
    instance_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), index=True)
    uow_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), index=True)
    role_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), index=True)
    interaction_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), index=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), index=True, default=utcnow)
    log_type: Mapped[LogType] = mapped_column(_enum(LogType, "log_type"))
    event_details: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    error_metadata: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    # The writer's stream (NULL only on rows written before streams, sealed by migration 0006).
    stream_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    stream_seq: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    key_id: Mapped[str | None] = mapped_column(String(64))
    chain_hash: Mapped[str | None] = mapped_column(String(64))


class AdminEvent(Base):
    """The admin ledger: who set up or changed what outside the flow of work; append-only.

    Rows run 1..n with no gap; each links to the one before it with a MAC under the ledger
    key (``admin_ledger``), like history rows do.
    """

    __tablename__ = "admin_events"

    sequence: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    principal: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    action: Mapped[str] = mapped_column(String(40))
    instance_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    subject_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    key_id: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))


class Redaction(Base):
    """A row whose value columns a redaction rewrote; written with the redaction, append-only.

    The append-only UPDATE trigger of the row's table lets the rewrite through only when
    a record names the row (on PostgreSQL: written in the same transaction, ``txid``).
    What was erased and the digests verification needs live in the admin-ledger row
    (``admin_sequence``), under the ledger key.
    """

    __tablename__ = "redactions"
    __table_args__ = (Index("ix_redactions_row", "table_name", "row_id"),)

    redaction_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    admin_sequence: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    table_name: Mapped[str] = mapped_column(String(40))
    row_id: Mapped[str] = mapped_column(String(64))
    txid: Mapped[int | None] = mapped_column(BigInteger())


# The seed's spellings, kept so code written against the prototype still imports.
Instance_Context = InstanceContext
Local_Actors = LocalActor
UOW_Attributes = UOWAttribute
Interaction_Logs = InteractionLog
