"""Redaction erases one attribute value everywhere; the ledger, its streams and checkpoints
still verify; any other change to a redacted row or its neighbours is still found."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from test_legacy_links import ATTRIBUTES, legacy_playground, write_legacy_uow

from chameleon_workflow.audit.verify import verify
from chameleon_workflow.checkpoints import create_signing_key, seal, verify_checkpoint
from chameleon_workflow.db import translated_errors
from chameleon_workflow.demo import run_demo
from chameleon_workflow.erasure import redact_value
from chameleon_workflow.errors import AppendOnlyViolationError, InvalidValueError
from chameleon_workflow.models import AdminEvent, Base, InteractionLog, UnitsOfWork, UOWAttribute
from chameleon_workflow.states import UOWStatus
from chameleon_workflow.testing import append_only_disabled


def _target(session: Session) -> tuple[uuid.UUID, str]:
    """Return (UOW, vendor) of a UOW whose vendor a log row quotes and no other UOW has."""
    rows = session.execute(
        select(UOWAttribute.uow_id, UOWAttribute.value).where(UOWAttribute.key == "vendor")
    ).all()
    done = set(
        session.scalars(select(UnitsOfWork.uow_id).where(UnitsOfWork.status == UOWStatus.COMPLETED))
    )
    counts: dict[str, int] = {}
    for _, value in rows:
        counts[value] = counts.get(value, 0) + 1
    quoted = {
        str(row.uow_id)
        for row in session.scalars(select(InteractionLog).where(InteractionLog.uow_id.is_not(None)))
        if "vendor" in str(row.event_details)
    }
    for uow_id, value in rows:
        if counts[value] == 1 and str(uow_id) in quoted and uow_id in done:
            return uow_id, value
    raise AssertionError("the demo left no UOW with a vendor of its own quoted in its logs")


@pytest.fixture
def demo(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """A database after a small demo run."""
    run_demo(session_factory, uows=12, seed=3)
    return session_factory


def _redact(factory: sessionmaker[Session], uow_id: uuid.UUID, key: str) -> None:
    with factory.begin() as session:
        redact_value(session, uow_id, key, "erasure request 42")


def _holding(engine: Engine, value: str) -> list[str]:
    """Return the tables with a row whose text holds ``value``."""
    found = []
    with engine.connect() as conn:
        for name, table in Base.metadata.tables.items():
            cast = "CAST(t.* AS text)" if engine.dialect.name == "postgresql" else None
            if cast is None:
                columns = " || '|' || ".join(
                    f"COALESCE(CAST({c.name} AS TEXT), '')" for c in table.c
                )
                query = f"SELECT COUNT(*) FROM {name} WHERE ({columns}) LIKE :v"
            else:
                query = f"SELECT COUNT(*) FROM {name} t WHERE {cast} LIKE :v"
            if conn.execute(text(query), {"v": f"%{value}%"}).scalar_one():
                found.append(name)
    return found


def test_redaction_erases_the_value_and_verification_notes_it(
    demo: sessionmaker[Session], engine: Engine, database_url: str
) -> None:
    """Gone from every table (and the SQLite file); verify is clean and names the redaction."""
    with demo() as session:
        uow_id, value = _target(session)
    assert "uow_attributes" in _holding(engine, value)
    _redact(demo, uow_id, "vendor")
    assert _holding(engine, value) == []
    if database_url.startswith("sqlite"):
        engine.dispose()
        path = Path(database_url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                assert value.encode() not in file.read_bytes()
    with demo() as session:
        report = verify(session)
        event = session.scalars(select(AdminEvent).order_by(AdminEvent.sequence.desc())).first()
    assert report.findings == ()
    assert f"uow {uow_id}: attribute 'vendor' version 1 was redacted" in "\n".join(report.notices)
    assert any("a value was redacted" in n for n in report.notices)
    assert event is not None
    assert (event.action, event.subject_id, event.details["reason"]) == (
        "VALUE_REDACTED",
        str(uow_id),
        "erasure request 42",
    )
    assert value not in str(event.details)


def test_checkpoints_sealed_before_and_after_still_verify(
    demo: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    """Checkpoints signed before, between and after two redactions of one UOW verify clean.

    The second redaction rewrites again the history row that recorded both keys.
    """
    signer = create_signing_key(tmp_path / "signing-key.pem")
    before = seal(engine, signer).checkpoint
    with demo() as session:
        uow_id, _ = _target(session)
    _redact(demo, uow_id, "vendor")
    between = seal(engine, signer).checkpoint
    _redact(demo, uow_id, "amount")
    after = seal(engine, signer).checkpoint
    assert before is not None
    assert between is not None
    assert after is not None
    with demo() as session:
        history = session.scalars(
            select(AdminEvent.details).where(AdminEvent.action == "VALUE_REDACTED")
        ).all()
    rewritten = [{r["row_id"] for r in d["rows"] if r["table"] == "uow_history"} for d in history]
    assert rewritten[0] & rewritten[1]
    with engine.connect() as connection:
        for checkpoint in (before, between, after):
            report = verify_checkpoint(connection, checkpoint, signer.public_key)
            assert report.findings == ()


def test_other_changes_to_redacted_rows_and_neighbours_are_found(
    demo: sessionmaker[Session], engine: Engine
) -> None:
    """Restoring a value, editing a redacted log row or a neighbouring value: each found."""
    with demo() as session:
        uow_id, _ = _target(session)
        log_id = session.scalars(
            select(InteractionLog.log_id).where(
                InteractionLog.uow_id == uow_id, InteractionLog.event_details.is_not(None)
            )
        ).first()
    _redact(demo, uow_id, "vendor")
    with demo() as session:
        quoted = next(
            row.log_id
            for row in session.scalars(
                select(InteractionLog).where(InteractionLog.uow_id == uow_id)
            )
            if "[redacted]" in str(row.event_details)
        )
    assert log_id is not None
    ident = str(uow_id)
    with append_only_disabled(engine), engine.begin() as conn:
        conn.execute(
            text("UPDATE uow_attributes SET value = :v WHERE uow_id = :u AND key = 'vendor'"),
            {"v": '"Forged Ltd"', "u": ident},
        )
        conn.execute(
            text("UPDATE uow_attributes SET value = :v WHERE uow_id = :u AND key = 'invoice_id'"),
            {"v": '"INV-999999"', "u": ident},
        )
        conn.execute(
            text("UPDATE interaction_logs SET actor_id = NULL WHERE log_id = :l"),
            {"l": str(quoted)},
        )
    with demo() as session:
        report = verify(session)
    found = {(f.kind, f.detail) for f in report.findings if f.uow_id in {"", str(uow_id)}}
    assert (
        "ATTRIBUTE_MISMATCH",
        "attribute 'vendor' version 1: the value does not match its value_digest",
    ) in found
    assert (
        "ATTRIBUTE_MISMATCH",
        "attribute 'invoice_id' version 1: the value does not match its value_digest",
    ) in found
    assert any(kind == "LOG_STREAM" and "chain_hash does not match" in d for kind, d in found)


def test_the_triggers_admit_only_a_recorded_redaction(
    demo: sessionmaker[Session], engine: Engine
) -> None:
    """Writing the marker without a record, or changing another column, is refused."""
    with demo() as session:
        uow_id, _ = _target(session)
    attempts = [
        "UPDATE uow_attributes SET value = '\"[redacted]\"' WHERE uow_id = :u",
        "UPDATE uow_history SET changes = NULL WHERE uow_id = :u",
    ]
    for statement in attempts:
        with pytest.raises(AppendOnlyViolationError), translated_errors(), engine.begin() as conn:
            conn.execute(text(statement), {"u": str(uow_id)})
    _redact(demo, uow_id, "vendor")
    after = [
        "UPDATE uow_attributes SET reasoning = 'x' WHERE uow_id = :u AND key = 'vendor'",
        "UPDATE uow_attributes SET value = '\"other\"' WHERE uow_id = :u AND key = 'vendor'",
        "DELETE FROM uow_attributes WHERE uow_id = :u AND key = 'vendor'",
    ]
    with demo() as session:
        busy = session.scalars(
            select(UnitsOfWork.uow_id).where(UnitsOfWork.status != UOWStatus.COMPLETED)
        ).first()
        assert busy is not None
        with pytest.raises(InvalidValueError, match="only a finished UOW"):
            redact_value(session, busy, "vendor", "erasure request 42")
    for statement in after:
        with pytest.raises(AppendOnlyViolationError), translated_errors(), engine.begin() as conn:
            conn.execute(text(statement), {"u": str(uow_id)})


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_wants_the_record_in_the_same_transaction(
    demo: sessionmaker[Session], engine: Engine
) -> None:
    """A redactions row written by an earlier transaction does not open the row to an UPDATE."""
    with demo() as session:
        uow_id, _ = _target(session)
        attribute = session.scalars(
            select(UOWAttribute.attribute_id).where(
                UOWAttribute.uow_id == uow_id, UOWAttribute.key == "vendor"
            )
        ).one()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO redactions (admin_sequence, table_name, row_id, txid) "
                "VALUES (1, 'uow_attributes', :r, txid_current())"
            ),
            {"r": str(attribute)},
        )
    marker = "UPDATE uow_attributes SET value = '\"[redacted]\"' WHERE attribute_id = :a"
    with pytest.raises(AppendOnlyViolationError), translated_errors(), engine.begin() as conn:
        conn.execute(text(marker), {"a": attribute})


def test_a_value_in_format_1_rows_is_refused(session: Session) -> None:
    """Rows written before keyed links hash the value itself: refused, nothing rewritten."""
    uow_id = write_legacy_uow(session, legacy_playground(session))
    session.execute(
        update(UnitsOfWork).where(UnitsOfWork.uow_id == uow_id).values(status="COMPLETED")
    )
    session.commit()
    key = next(iter(ATTRIBUTES))
    with pytest.raises(InvalidValueError, match="written before keyed links"):
        redact_value(session, uow_id, key, "erasure request 42")
    session.rollback()
    values = session.scalars(
        select(UOWAttribute.value).where(UOWAttribute.uow_id == uow_id, UOWAttribute.key == key)
    ).all()
    assert values == [ATTRIBUTES[key]]
