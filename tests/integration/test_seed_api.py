"""The seed's 15 tests, ported: its call forms run unchanged on both back ends.

The seed called ``UOWPersistenceService`` on the class, ``reset_telemetry_buffer()`` for a
fresh buffer, and the adapter's capture methods with keywords. What differs is what this
ledger adds: a UOW is created through the service with a CREATED history row, and an
attribute can only be edited behind the service's back with the append-only triggers lifted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from chameleon_workflow import (
    Interaction_Logs,
    Local_Actors,
    ShadowLoggerTelemetryAdapter,
    TelemetryBuffer,
    TelemetryEntry,
    UnitsOfWork,
    UnitsOfWorkHistory,
    UOWPersistenceService,
    UOWStateTransition,
    get_telemetry_buffer,
    reset_telemetry_buffer,
)
from chameleon_workflow.states import ActorType, UOWStatus
from chameleon_workflow.testing import Playground, append_only_disabled, make_playground, make_uow


@pytest.fixture
def db(session: Session) -> Session:
    """The seed's session fixture: the test's own database, either back end."""
    return session


@pytest.fixture
def instance_context(db: Session) -> Playground:
    """An instance with a workflow and its interactions."""
    playground = make_playground(db)
    db.commit()
    return playground


@pytest.fixture
def actor(db: Session, instance_context: Playground) -> Local_Actors:
    """A human actor of the instance."""
    row = Local_Actors(
        actor_id=uuid.uuid4(),
        instance_id=instance_context.instance_id,
        identity_key="test-actor",
        name="Test Actor",
        actor_type=ActorType.HUMAN,
    )
    db.add(row)
    db.commit()
    return row


@pytest.fixture
def uow(db: Session, instance_context: Playground) -> UnitsOfWork:
    """A PENDING UOW with attributes, created through the service."""
    return make_uow(db, instance_context, attributes={"amount": 100000, "priority": 5})


@pytest.fixture(autouse=True)
def fresh_buffer() -> Iterator[None]:
    """Leave no process-wide buffer behind for other tests."""
    yield
    reset_telemetry_buffer()


def _transitions(db: Session, uow_id: uuid.UUID) -> list[UnitsOfWorkHistory]:
    query = select(UnitsOfWorkHistory).where(
        UnitsOfWorkHistory.uow_id == uow_id, UnitsOfWorkHistory.event_type == "TRANSITION"
    )
    return list(db.scalars(query.order_by(UnitsOfWorkHistory.sequence)))


def _entry(instance_id: uuid.UUID | None = None) -> TelemetryEntry:
    return TelemetryEntry(
        instance_id=instance_id or uuid.uuid4(),
        uow_id=uuid.uuid4(),
        actor_id=uuid.uuid4(),
        role_id=uuid.uuid4(),
        interaction_id=uuid.uuid4(),
    )


def _log_count(db: Session) -> int:
    """Count the TELEMETRY rows (a writer's stream also opens with a row of its own)."""
    db.expire_all()
    query = select(func.count()).where(Interaction_Logs.log_type == "TELEMETRY")
    return int(db.scalar(query) or 0)


# ------------------------------------------------------------ UOWPersistenceService


def test_save_uow_with_attributes(db: Session, uow: UnitsOfWork, actor: Local_Actors) -> None:
    """Saving on the class keeps the attributes' hash, stamps the heartbeat, moves the status."""
    updated_uow = UOWPersistenceService.save_uow(
        session=db,
        uow=uow,
        new_status=UOWStatus.ACTIVE.value,
        actor_id=actor.actor_id,
        reasoning="Starting processing",
    )
    db.commit()
    assert updated_uow.content_hash == uow.content_hash
    assert len(updated_uow.content_hash) == 64
    assert updated_uow.last_heartbeat_at is not None
    assert updated_uow.status == UOWStatus.ACTIVE.value


def test_save_uow_creates_history(db: Session, uow: UnitsOfWork, actor: Local_Actors) -> None:
    """A status change appends one history row with both statuses and the reasoning."""
    UOWPersistenceService.save_uow(
        session=db,
        uow=uow,
        new_status=UOWStatus.ACTIVE.value,
        actor_id=actor.actor_id,
        reasoning="Test transition",
    )
    db.commit()
    history = _transitions(db, uow.uow_id)
    assert len(history) == 1
    assert history[0].previous_status == UOWStatus.PENDING.value
    assert history[0].new_status == UOWStatus.ACTIVE.value
    assert history[0].reasoning == "Test transition"
    transition = UOWStateTransition.from_history(history[0])
    assert (transition.instance_id, transition.metadata) == (uow.instance_id, None)


def test_save_uow_no_history_without_change(
    db: Session, uow: UnitsOfWork, actor: Local_Actors
) -> None:
    """A save that changes nothing (a heartbeat) appends no transition."""
    UOWPersistenceService.save_uow(session=db, uow=uow, actor_id=actor.actor_id)
    db.commit()
    assert _transitions(db, uow.uow_id) == []
    assert uow.last_heartbeat_at is not None


def test_get_uow_history_chronological(db: Session, uow: UnitsOfWork, actor: Local_Actors) -> None:
    """History called on the class comes back in the order of record."""
    statuses = [UOWStatus.ACTIVE.value, UOWStatus.COMPLETED.value]
    for status in statuses:
        UOWPersistenceService.save_uow(
            session=db, uow=uow, new_status=status, actor_id=actor.actor_id
        )
    db.commit()
    history = UOWPersistenceService.get_uow_history(db, uow.uow_id)
    assert [h.new_status for h in history] == [UOWStatus.PENDING.value, *statuses]


def test_verify_state_hash_valid(db: Session, uow: UnitsOfWork, actor: Local_Actors) -> None:
    """A saved UOW's stored hash matches its attributes."""
    UOWPersistenceService.save_uow(db, uow, actor_id=actor.actor_id)
    db.commit()
    assert UOWPersistenceService.verify_state_hash(db, uow) is True


def test_verify_state_hash_drift_detection(
    db: Session, engine: Engine, uow: UnitsOfWork, actor: Local_Actors
) -> None:
    """An attribute edited behind the service's back no longer matches the stored hash."""
    UOWPersistenceService.save_uow(db, uow, actor_id=actor.actor_id)
    db.commit()
    with append_only_disabled(engine), engine.begin() as conn:
        conn.execute(
            text("UPDATE uow_attributes SET value = '60000' WHERE key = 'amount'"),
        )
    db.expire_all()
    assert UOWPersistenceService.verify_state_hash(db, uow) is False


# ------------------------------------------------------------------ TelemetryBuffer


def test_record_entry() -> None:
    """Recording an entry is accepted and counted."""
    buffer = TelemetryBuffer(batch_size=10)
    assert buffer.record(_entry()) is True
    assert buffer.get_pending_count() == 1


def test_pending_count() -> None:
    """The pending count follows what was recorded."""
    buffer = TelemetryBuffer()
    assert buffer.get_pending_count() == 0
    for _ in range(5):
        buffer.record(_entry())
    assert buffer.get_pending_count() == 5


def test_flush_writes_to_database(db: Session, instance_context: Playground) -> None:
    """A flush writes the buffered entries as interaction-log rows."""
    buffer = TelemetryBuffer(batch_size=100)
    for _ in range(3):
        buffer.record(_entry(instance_context.instance_id))
    assert buffer.flush(db) == 3
    assert _log_count(db) == 3


def test_flush_respects_batch_size(db: Session, instance_context: Playground) -> None:
    """Each flush writes at most one batch."""
    buffer = TelemetryBuffer(batch_size=2)
    for _ in range(5):
        buffer.record(_entry(instance_context.instance_id))
    assert [buffer.flush(db), buffer.flush(db), buffer.flush(db)] == [2, 2, 1]
    assert _log_count(db) == 5


def test_flush_all(db: Session, instance_context: Playground) -> None:
    """flush_all drains the buffer batch after batch."""
    buffer = TelemetryBuffer(batch_size=2)
    for _ in range(5):
        buffer.record(_entry(instance_context.instance_id))
    assert buffer.flush_all(db) == 5
    assert buffer.get_pending_count() == 0


# ------------------------------------------------------------ the adapter and the singleton


def test_capture_shadow_log_error(instance_context: Playground) -> None:
    """The adapter records an expression error into the buffer reset returned."""
    buffer = reset_telemetry_buffer()
    adapter = ShadowLoggerTelemetryAdapter(buffer, instance_context.instance_id)
    recorded = adapter.capture_shadow_log_error(
        uow_id=uuid.uuid4(),
        role_id=uuid.uuid4(),
        interaction_id=uuid.uuid4(),
        actor_id=uuid.uuid4(),
        error_message="Undefined variable: x",
        condition="x > 10",
        variables={"y": 5},
    )
    assert recorded is True
    assert buffer.get_pending_count() == 1
    ids = (uuid.uuid4(), None, None, None)
    assert adapter.capture_shadow_log_error(*ids, error_message="no condition given") is True
    assert buffer.get_pending_count() == 2


def test_capture_guardian_decision(instance_context: Playground) -> None:
    """The adapter records a routing decision; the branch index may be left out."""
    buffer = reset_telemetry_buffer()
    adapter = ShadowLoggerTelemetryAdapter(buffer, instance_context.instance_id)
    recorded = adapter.capture_guardian_decision(
        uow_id=uuid.uuid4(),
        role_id=uuid.uuid4(),
        interaction_id=uuid.uuid4(),
        actor_id=uuid.uuid4(),
        guardian_name="RiskRouter",
        condition="amount > 50000",
        decision="HighValueProcessing",
        matched_branch_index=0,
    )
    assert recorded is True
    ids = (uuid.uuid4(), None, None, None)
    assert adapter.capture_guardian_decision(*ids, "RiskRouter", "amount > 5", "LOW") is True
    assert buffer.get_pending_count() == 2


def test_get_telemetry_buffer() -> None:
    """The process-wide buffer exists and stays the same object."""
    buffer = get_telemetry_buffer()
    assert isinstance(buffer, TelemetryBuffer)
    assert get_telemetry_buffer() is buffer


def test_reset_telemetry_buffer() -> None:
    """Reset returns a new, empty buffer that get_telemetry_buffer then returns."""
    reset_telemetry_buffer()
    current = get_telemetry_buffer()
    current.record(_entry())
    assert current.get_pending_count() == 1
    new_buffer = reset_telemetry_buffer()
    assert new_buffer.get_pending_count() == 0
    assert new_buffer is not current
    assert get_telemetry_buffer() is new_buffer
