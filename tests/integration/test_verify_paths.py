"""Verification of a whole database, an instance and one UOW reports every finding once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from ledger_walks import walked
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from chameleon_workflow import audit
from chameleon_workflow.audit.reader import VerifyReader
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.testing import append_only_disabled, make_playground

Found = list[tuple[str, str, int | None]]


def _tamper(engine: Engine, statements: list[tuple[str, str]]) -> None:
    with append_only_disabled(engine), engine.begin() as conn:
        for sql, uow_id in statements:
            conn.execute(text(sql), {"u": uow_id})


def _found(report: audit.VerificationReport) -> Found:
    return [(f.kind.value, f.uow_id, f.sequence) for f in report.findings]


@pytest.fixture
def tampered(engine: Engine, session: Session) -> tuple[Any, Found, dict[str, int]]:
    """Two instances of UOWs, one broken in each way verification names; expected findings."""
    service = UOWPersistenceService()
    plays = [make_playground(session), make_playground(session)]
    meta = {"b": 1, "a": [1.5]}
    ids = [str(walked(service, session, plays[i % 2], meta).uow_id) for i in range(16)]
    session.commit()
    drift, gap, hole, forged, head, bare, respelled = ids[:7]
    uow = "uow_id = :u"
    _tamper(
        engine,
        [
            (f"UPDATE uow_attributes SET value = '999' WHERE {uow} AND version = 2", drift),
            (f"UPDATE uow_attributes SET version = 3 WHERE {uow} AND version = 2", gap),
            (f"DELETE FROM uow_history WHERE {uow} AND sequence = 3", hole),
            (f"UPDATE uow_history SET reasoning = 'x' WHERE {uow} AND sequence = 2", forged),
            (f"UPDATE units_of_work SET status = 'COMPLETED' WHERE {uow}", head),
            (f"DELETE FROM uow_history WHERE {uow}", bare),
            (
                "UPDATE uow_history SET transition_metadata = "
                f'\'{{ "a" : [1.50], "b" : 1.0 }}\' WHERE {uow} AND sequence = 2',
                respelled,  # the same JSON value in another spelling: not a finding
            ),
        ],
    )
    expected = [
        ("ATTRIBUTE_MISMATCH", drift, 3),  # the value no longer matches its digest
        ("DRIFT", drift, None),
        ("ATTRIBUTE_MISMATCH", drift, 3),  # nor the change history row 3 records
        ("ATTRIBUTE_VERSION_GAP", gap, None),
        ("ATTRIBUTE_MISMATCH", gap, 3),  # row 3 committed to version 2
        ("SEQUENCE_GAP", hole, 4),
        ("CHAIN_BROKEN", hole, 4),
        ("DISCONTINUITY", hole, 4),
        ("ATTRIBUTE_MISMATCH", hole, 3),  # attribute rows name the deleted row 3
        ("CHAIN_BROKEN", forged, 2),
        ("HEAD_MISMATCH", head, 5),
        ("NO_HISTORY", bare, None),
    ]
    expected.sort(key=lambda f: f[1])  # reports run in uow_id order (a stable sort)
    instances = {str(p.instance_id): i for i, p in enumerate(plays)}
    owner = {u: i % 2 for i, u in enumerate(ids)}
    session.rollback()
    return instances, expected, owner


def test_every_finding_kind_in_one_process(session: Session, tampered: Any) -> None:
    """One process reports each broken UOW once, in uow_id order, and nothing else."""
    _, expected, _ = tampered
    report = audit.verify(session)
    assert _found(report) == expected
    assert (report.uows_checked, report.history_rows_checked) == (16, 16 * 5 - 1 - 5)
    assert report.attribute_rows_checked == 16 * 3


def test_an_instance_run_keeps_to_the_instance(session: Session, tampered: Any) -> None:
    """An instance-scoped run checks and reports that instance's UOWs only."""
    instances, expected, owner = tampered
    for instance, index in instances.items():
        report = audit.verify(session, instance_id=uuid.UUID(instance))
        session.rollback()
        assert _found(report) == [f for f in expected if owner[f[1]] == index]
        assert report.uows_checked == 8


def test_one_uow_is_checked_alone(session: Session, tampered: Any) -> None:
    """Asking for one UOW reads that UOW only."""
    _, expected, _ = tampered
    hole = expected[[f[0] for f in expected].index("SEQUENCE_GAP")][1]
    report = audit.verify(session, uow_id=uuid.UUID(hole))
    assert _found(report) == [f for f in expected if f[1] == hole]
    assert (report.uows_checked, report.history_rows_checked) == (1, 4)


def test_small_pages_find_the_same(
    session: Session, tampered: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 3 UOWs (SQLite instance runs read a page's rows by its ids) change nothing."""
    instances, expected, owner = tampered
    monkeypatch.setattr(VerifyReader.pages, "__defaults__", (None, 3))
    for instance, index in instances.items():
        report = audit.verify(session, instance_id=uuid.UUID(instance))
        session.rollback()
        assert _found(report) == [f for f in expected if owner[f[1]] == index]
        assert report.uows_checked == 8
    report = audit.verify(session)
    assert _found(report) == expected
    assert (report.uows_checked, report.history_rows_checked) == (16, 16 * 5 - 1 - 5)
