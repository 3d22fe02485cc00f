"""A database written before keyed links keeps verifying after the upgrade, and links on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from chameleon_workflow.chain import LedgerRecord, attribute_diff
from chameleon_workflow.db import make_engine
from chameleon_workflow.hashing import content_hash, format_timestamp
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import (
    InstanceContext,
    LedgerKeyEvent,
    LocalInteraction,
    LocalWorkflow,
    UnitsOfWork,
    UnitsOfWorkHistory,
    UOWAttribute,
)
from chameleon_workflow.schema import upgrade_database
from chameleon_workflow.testing import Playground

ATTRIBUTES = {"amount": 100, "owner": "ann"}
CREATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _record(uow_id: uuid.UUID, play: Playground, sequence: int, **fields: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "history_id": str(uuid.uuid4()),
        "instance_id": str(play.instance_id),
        "uow_id": str(uow_id),
        "sequence": sequence,
        "previous_state_hash": content_hash(ATTRIBUTES),
        "new_state_hash": content_hash(ATTRIBUTES),
        "previous_interaction_id": str(play.interactions[0]),
        "new_interaction_id": str(play.interactions[0]),
        "actor_id": None,
        "reasoning": None,
        "transition_metadata": None,
        "changes": None,
    }
    return LedgerRecord(**(values | fields))


def _history_values(record: LedgerRecord, link: str) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in record.hash_input()}
    for name in ("history_id", "instance_id", "uow_id", "previous_interaction_id"):
        values[name] = None if values[name] is None else uuid.UUID(values[name])
    values["new_interaction_id"] = uuid.UUID(record.new_interaction_id or "")
    values["transition_timestamp"] = datetime.strptime(
        record.transition_timestamp, "%Y-%m-%dT%H:%M:%S.%fZ"
    ).replace(tzinfo=UTC)
    return values | {"chain_hash": link}


def write_legacy_uow(session: Session, play: Playground) -> uuid.UUID:
    """Write a UOW as revision 0002 did: two format-1 rows, two undigested attribute rows."""
    uow_id = uuid.uuid4()
    first = _record(
        uow_id,
        play,
        1,
        event_type="CREATED",
        previous_status=None,
        new_status="PENDING",
        previous_state_hash=None,
        previous_interaction_id=None,
        transition_timestamp=format_timestamp(CREATED),
        reasoning="created",
        changes=attribute_diff({}, ATTRIBUTES),
    )
    second = _record(
        uow_id,
        play,
        2,
        event_type="TRANSITION",
        previous_status="PENDING",
        new_status="ACTIVE",
        transition_timestamp=format_timestamp(CREATED.replace(minute=1)),
        reasoning="claimed",
    )
    links = [first.link(None)]
    links.append(second.link(links[0]))
    uows = UnitsOfWork.__table__
    session.execute(
        insert(uows).values(
            uow_id=uow_id,
            instance_id=play.instance_id,
            local_workflow_id=play.workflow_id,
            current_interaction_id=play.interactions[0],
            status="ACTIVE",
            content_hash=content_hash(ATTRIBUTES),
            version=2,
            history_sequence=2,
            chain_head=links[1],
            retry_count=0,
            created_at=CREATED,
            updated_at=CREATED,
        )
    )
    for record, link in zip((first, second), links, strict=True):
        session.execute(insert(UnitsOfWorkHistory.__table__).values(_history_values(record, link)))
    for key, value in ATTRIBUTES.items():
        session.execute(
            insert(UOWAttribute.__table__).values(
                uow_id=uow_id,
                instance_id=play.instance_id,
                key=key,
                version=1,
                value=value,
                is_deleted=False,
                created_at=CREATED,
            )
        )
    return uow_id


def legacy_playground(session: Session) -> Playground:
    """Create an instance, a workflow and one interaction with revision 0002's columns only."""
    instance_id, workflow_id, interaction_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    session.execute(insert(InstanceContext.__table__).values(instance_id=instance_id, name="old"))
    session.execute(
        insert(LocalWorkflow.__table__).values(
            local_workflow_id=workflow_id,
            instance_id=instance_id,
            name="playground",
            version="1",
            created_at=CREATED,
        )
    )
    session.execute(
        insert(LocalInteraction.__table__).values(
            interaction_id=interaction_id,
            instance_id=instance_id,
            local_workflow_id=workflow_id,
            name="step-0",
        )
    )
    return Playground(instance_id, workflow_id, (interaction_id,))


@pytest.fixture
def legacy(empty_database_url: str) -> Iterator[tuple[Engine, Playground, list[uuid.UUID]]]:
    """A database at revision 0002 with two UOWs written then, upgraded to the newest."""
    engine = make_engine(empty_database_url)
    upgrade_database(engine, "0002")
    with Session(engine) as session:
        play = legacy_playground(session)
        ids = [write_legacy_uow(session, play), write_legacy_uow(session, play)]
        session.commit()
    upgrade_database(engine)
    yield engine, play, ids
    engine.dispose()


def test_an_upgraded_database_verifies_and_is_sealed(legacy: Any) -> None:
    """Rows written before keyed links verify as before; the seal counts them."""
    engine, _, _ = legacy
    with Session(engine) as session:
        assert UOWPersistenceService().verify_database(session).findings == ()
        seal = session.scalars(select(LedgerKeyEvent)).one()
    assert (seal.sequence, seal.key_id, seal.link_version) == (0, None, 1)
    assert (seal.legacy_history_rows, seal.legacy_attribute_rows) == (4, 4)


def test_new_rows_link_on_from_old_ones(legacy: Any) -> None:
    """A save and an attribute change on an old UOW add keyed rows; everything verifies."""
    engine, _, ids = legacy
    service = UOWPersistenceService()
    with Session(engine) as session:
        uow = service.get_uow(session, ids[0])
        service.save_uow(session, uow, "PENDING", reasoning="handed back", holder=None)
        service.set_attributes(session, uow, {"amount": 120}, None, "adjusted")
        session.commit()
        rows = service.get_uow_history(session, ids[0])
        assert [(r.sequence, r.link_version) for r in rows] == [(1, 1), (2, 1), (3, 2), (4, 2)]
        assert rows[3].changes == {
            "added": {},
            "removed": {},
            "changed": {"amount": {"old": 100, "new": 120}},
        }
        report = service.verify_database(session)
    assert (report.findings, report.history_rows_checked) == ((), 6)


def test_a_row_appended_in_the_old_format_is_found(legacy: Any) -> None:
    """An unkeyed row appended to an old, all-unkeyed UOW is caught by the seal alone."""
    engine, play, ids = legacy
    service = UOWPersistenceService()
    with Session(engine) as session:
        head = service.get_uow(session, ids[1]).chain_head
        forged = _record(
            ids[1],
            play,
            3,
            event_type="TRANSITION",
            previous_status="ACTIVE",
            new_status="COMPLETED",
            transition_timestamp=format_timestamp(CREATED.replace(minute=2)),
            reasoning="approved",
        )
        link = forged.link(head)
        session.execute(insert(UnitsOfWorkHistory.__table__).values(_history_values(forged, link)))
        session.execute(
            text(
                "UPDATE units_of_work SET status = 'COMPLETED', history_sequence = 3, "
                "version = 3, chain_head = :c WHERE uow_id = :u"
            ),
            {"c": link, "u": str(ids[1]) if engine.dialect.name == "sqlite" else ids[1]},
        )
        session.commit()
        findings = service.verify_database(session).findings
    assert [(f.kind.value, f.sequence) for f in findings] == [("KEY_LEDGER", 0)]
    assert findings[0].detail.startswith("5 history rows are in the unkeyed link format; the seal")
