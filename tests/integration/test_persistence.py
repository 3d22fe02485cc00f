"""UOWPersistenceService contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from chameleon_workflow.errors import (
    ConcurrencyError,
    InvalidTransitionError,
    InvalidValueError,
    NotFoundError,
)
from chameleon_workflow.ledger.service import UOWPersistenceService, UOWStateTransition
from chameleon_workflow.models import UnitsOfWork, UnitsOfWorkHistory, UOWAttribute
from chameleon_workflow.testing import FixedClock, make_uow

HEX64 = re.compile(r"[0-9a-f]{64}")


def _history_count(session: Session, uow_id: uuid.UUID) -> int:
    query = select(func.count()).where(UnitsOfWorkHistory.uow_id == uow_id)
    return int(session.scalar(query) or 0)


def test_save_uow_with_attributes_sets_content_hash(service, session, play) -> None:
    """Creating a UOW stores a 64-hex content hash of its attributes."""
    uow = make_uow(session, play, attributes={"amount": 10, "who": "ann"}, service=service)
    assert HEX64.fullmatch(uow.content_hash)
    assert service.verify_state_hash(session, uow) is True
    assert service.get_attributes(session, uow.uow_id) == {"amount": 10, "who": "ann"}


def test_save_sets_heartbeat(session, play) -> None:
    """A save stamps last_heartbeat_at with the service clock (UTC)."""
    clock = FixedClock()
    service = UOWPersistenceService(clock)
    uow = make_uow(session, play, service=service)
    clock.advance(5)
    service.save_uow(session, uow, "ACTIVE")
    session.commit()
    session.expire_all()
    stored = session.get(UnitsOfWork, uow.uow_id)
    assert stored is not None
    assert stored.last_heartbeat_at == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)


def test_status_change_appends_history(service, session, play) -> None:
    """A status change appends one TRANSITION row with both statuses and the actor."""
    uow = make_uow(session, play, service=service)
    actor = uuid.uuid4()
    service.save_uow(session, uow, "ACTIVE", actor_id=actor, reasoning="claimed")
    session.commit()
    rows = service.get_uow_history(session, uow.uow_id)
    assert [(r.sequence, r.event_type, r.previous_status, r.new_status) for r in rows] == [
        (1, "CREATED", None, "PENDING"),
        (2, "TRANSITION", "PENDING", "ACTIVE"),
    ]
    assert rows[1].actor_id == actor
    assert rows[1].reasoning == "claimed"
    assert rows[1].chain_hash == uow.chain_head


def test_interaction_change_appends_history(service, session, play) -> None:
    """A move to another interaction is recorded even when the status stays."""
    uow = make_uow(session, play, service=service)
    service.save_uow(session, uow, new_interaction_id=play.interactions[1])
    session.commit()
    last = service.get_uow_history(session, uow.uow_id)[-1]
    assert (last.previous_interaction_id, last.new_interaction_id) == play.interactions[:2]
    assert (last.previous_status, last.new_status) == ("PENDING", "PENDING")


def test_no_history_without_change(service, session, play) -> None:
    """Saving with the same status and interaction writes no history row."""
    uow = make_uow(session, play, service=service)
    service.save_uow(session, uow, "PENDING", play.interactions[0])
    session.commit()
    assert _history_count(session, uow.uow_id) == 1


def test_history_is_in_order_of_record(service, session, play) -> None:
    """History comes back ordered by sequence, with every transition in it."""
    uow = make_uow(session, play, service=service)
    path = ["ACTIVE", "PENDING", "ACTIVE", "FAILED", "PENDING", "ACTIVE", "COMPLETED"]
    for status in path:
        service.save_uow(session, uow, status)
        session.commit()
    rows = service.get_uow_history(session, uow.uow_id)
    assert [r.sequence for r in rows] == list(range(1, 9))
    assert [r.new_status for r in rows] == ["PENDING", *path]
    transitions = [UOWStateTransition.from_history(r) for r in rows]
    assert transitions[-1].previous_status == "ACTIVE"
    assert transitions[-1].new_status == "COMPLETED"


def test_history_paging_and_time_range(session, play) -> None:
    """History pages by limit and keyset, and filters by a time range."""
    clock = FixedClock()
    service = UOWPersistenceService(clock)
    uow = make_uow(session, play, service=service)
    for status in ["ACTIVE", "PENDING", "ACTIVE", "PENDING"]:
        clock.advance(60)
        service.save_uow(session, uow, status)
    session.commit()
    first = service.get_uow_history(session, uow.uow_id, limit=2)
    assert [r.sequence for r in first] == [1, 2]
    rest = service.get_uow_history(session, uow.uow_id, limit=2, after_sequence=2)
    assert [r.sequence for r in rest] == [3, 4]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    window = service.get_uow_history(
        session,
        uow.uow_id,
        since=start + timedelta(seconds=60),
        until=start + timedelta(seconds=180),
    )
    assert [r.sequence for r in window] == [2, 3]


def test_metadata_round_trips(service, session, play) -> None:
    """transition_metadata is stored and read back exactly (the prototype dropped it)."""
    uow = make_uow(session, play, service=service)
    metadata = {"route": "manual", "score": 0.75, "tags": ["a", "ü", "😀"], "nested": {"n": None}}
    service.save_uow(session, uow, "ACTIVE", metadata=metadata)
    session.commit()
    session.expire_all()
    assert service.get_uow_history(session, uow.uow_id)[-1].transition_metadata == metadata


def test_set_attributes_records_diff_and_versions(service, session, play) -> None:
    """Attribute changes write new versions and a history row with the attribute-level diff."""
    uow = make_uow(
        session, play, attributes={"amount": 10, "who": "ann", "note": "x"}, service=service
    )
    actor = uuid.uuid4()
    service.set_attributes(
        session, uow, {"amount": 12.5, "who": "ann", "extra": [1]}, actor, "fix", remove=["note"]
    )
    session.commit()
    last = service.get_uow_history(session, uow.uow_id)[-1]
    assert last.event_type == "ATTRIBUTES"
    assert last.changes == {
        "added": {"extra": [1]},
        "removed": {"note": "x"},
        "changed": {"amount": {"old": 10, "new": 12.5}},
    }
    assert last.new_state_hash == uow.content_hash != last.previous_state_hash
    assert service.get_attributes(session, uow.uow_id) == {
        "amount": 12.5,
        "who": "ann",
        "extra": [1],
    }
    versions = session.execute(
        select(UOWAttribute.key, UOWAttribute.version, UOWAttribute.is_deleted)
        .where(UOWAttribute.uow_id == uow.uow_id)
        .order_by(UOWAttribute.key, UOWAttribute.version)
    ).all()
    assert [tuple(v) for v in versions] == [
        ("amount", 1, False),
        ("amount", 2, False),
        ("extra", 1, False),
        ("note", 1, False),
        ("note", 2, True),
        ("who", 1, False),
    ]
    assert service.verify_uow(session, uow.uow_id).ok


def test_unchanged_attributes_write_nothing(service, session, play) -> None:
    """Setting attributes to equal values (1 vs 1.0 included) writes no row."""
    uow = make_uow(session, play, attributes={"amount": 1}, service=service)
    service.set_attributes(session, uow, {"amount": 1.0}, None)
    session.commit()
    assert _history_count(session, uow.uow_id) == 1


@pytest.mark.parametrize(
    "bad",
    [float("nan"), float("inf"), {1, 2}, object(), b"raw", (1, 2), 2**60, {"k": {3: "x"}}],
)
def test_non_json_attribute_is_refused_and_nothing_written(service, session, play, bad) -> None:
    """A non-JSON value raises InvalidValueError when set and writes nothing."""
    uow = make_uow(session, play, attributes={"amount": 1}, service=service)
    with pytest.raises(InvalidValueError, match=r"attributes\.bad"):
        service.set_attributes(session, uow, {"bad": bad}, None)
    session.commit()
    assert _history_count(session, uow.uow_id) == 1
    assert service.get_attributes(session, uow.uow_id) == {"amount": 1}


def test_illegal_transition_raises_and_writes_nothing(service, session, play) -> None:
    """An illegal transition names both states and leaves UOW and history untouched."""
    uow = make_uow(session, play, service=service)
    with pytest.raises(InvalidTransitionError, match="PENDING -> COMPLETED"):
        service.save_uow(session, uow, "COMPLETED")
    session.commit()
    session.expire_all()
    stored = session.get(UnitsOfWork, uow.uow_id)
    assert stored is not None
    assert (stored.status, stored.version) == ("PENDING", 1)
    assert _history_count(session, uow.uow_id) == 1


def test_final_status_refuses_every_change(service, session, play) -> None:
    """Once ARCHIVED, neither a transition nor an attribute change is accepted."""
    uow = make_uow(session, play, service=service)
    for status in ["ACTIVE", "COMPLETED", "ARCHIVED"]:
        service.save_uow(session, uow, status)
    session.commit()
    with pytest.raises(InvalidTransitionError, match="ARCHIVED -> PENDING"):
        service.save_uow(session, uow, "PENDING")
    with pytest.raises(InvalidTransitionError, match="ARCHIVED -> ARCHIVED"):
        service.set_attributes(session, uow, {"a": 1}, None)


def test_stale_copy_gets_a_concurrency_error(service, session_factory, session, play) -> None:
    """Saving a copy read before someone else's save raises ConcurrencyError, writes nothing."""
    uow = make_uow(session, play, service=service)
    with session_factory() as other:
        stale = other.get(UnitsOfWork, uow.uow_id)
        assert stale is not None
        service.save_uow(session, uow, "ACTIVE")
        session.commit()
        with pytest.raises(ConcurrencyError, match="another writer"):
            service.save_uow(other, stale, "PAUSED")
        other.rollback()
    assert _history_count(session, uow.uow_id) == 2


def test_direct_orm_edits_are_refused(service, session, play) -> None:
    """Editing UOW columns on the ORM object and then saving is refused (one writer)."""
    uow = make_uow(session, play, service=service)
    uow.status = "COMPLETED"  # type: ignore[assignment]
    with pytest.raises(InvalidValueError, match=r"unsaved direct edits to \['status'\]"):
        service.save_uow(session, uow, "ACTIVE")
    session.rollback()


def test_unknown_uow_is_not_found(service, session) -> None:
    """Reading an unknown id raises NotFoundError naming it."""
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError, match=str(missing)):
        service.get_uow(session, missing)
    with pytest.raises(NotFoundError, match=str(missing)):
        service.verify_uow(session, missing)


def test_malformed_uow_id_is_not_found(service, session) -> None:
    """Text that is no UUID names no UOW: NotFoundError saying what it was meant to be."""
    with pytest.raises(NotFoundError, match=r"^UOW id 'INV-1' is not a valid id$"):
        service.get_uow(session, "INV-1")
    with pytest.raises(NotFoundError, match=r"^UOW id 'INV-1' is not a valid id$"):
        service.get_uow_history(session, "INV-1")


def test_failed_write_leaves_nothing_behind(service, engine: Engine, session, play) -> None:
    """When the history insert fails after the UOW update, neither survives the call."""
    uow = make_uow(session, play, service=service)
    # Occupy the next sequence number so the append collides after the compare-and-set.
    service_rows = service.get_uow_history(session, uow.uow_id)
    session.commit()
    with engine.begin() as conn:
        conn.execute(
            UnitsOfWorkHistory.__table__.insert().values(
                history_id=uuid.uuid4(),
                instance_id=uow.instance_id,
                uow_id=uow.uow_id,
                sequence=2,
                event_type="TRANSITION",
                previous_status="PENDING",
                new_status="PENDING",
                new_state_hash=uow.content_hash,
                transition_timestamp=datetime.now(UTC),
                chain_hash="0" * 64,
            )
        )
    with pytest.raises(Exception, match=r"UNIQUE|unique|duplicate|replace") as info:
        service.save_uow(session, uow, "ACTIVE")
    assert type(info.value).__module__ == "chameleon_workflow.errors"
    if engine.dialect.name == "sqlite":
        session.commit()  # whatever is left would be committed now
    else:
        session.rollback()  # PostgreSQL aborted the transaction at the failed statement
    session.expire_all()
    stored = session.get(UnitsOfWork, uow.uow_id)
    assert stored is not None
    assert (stored.status, stored.version) == ("PENDING", 1)
    assert len(service_rows) == 1


def test_equal_attributes_hash_equally_on_every_back_end(service, session, play) -> None:
    """The content hash survives a round trip through the database byte for byte."""
    attrs = {
        "amount": 1250.5,
        "currency": "EUR",
        "approved": False,
        "lines": [1, 2.0, 1e21],
        "note": "café ☕",
        "€": None,
    }
    uow = make_uow(session, play, attributes=attrs, service=service)
    session.expire_all()
    assert uow.content_hash == "264eea2221c5334cfbbc4a84665a0593226858b37df240b26916e5ccf6f7a171"
    assert service.verify_state_hash(session, uow) is True
    assert service.get_attributes(session, uow.uow_id) == attrs
