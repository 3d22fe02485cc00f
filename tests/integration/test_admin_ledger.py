"""The admin ledger on both back ends: every admin action recorded, chained, keyed, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.audit.report import FindingKind, VerificationReport
from chameleon_workflow.audit.verify import verify
from chameleon_workflow.checkpoints import create_signing_key, seal, verify_checkpoint
from chameleon_workflow.db import translated_errors
from chameleon_workflow.demo import run_demo
from chameleon_workflow.errors import AppendOnlyViolationError
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.models import AdminEvent
from chameleon_workflow.server.auth import issue_token
from chameleon_workflow.testing import append_only_disabled


def _events(factory: sessionmaker[Session]) -> list[AdminEvent]:
    with factory() as session:
        return list(session.scalars(select(AdminEvent).order_by(AdminEvent.sequence)))


def _report(factory: sessionmaker[Session]) -> VerificationReport:
    with factory() as session:
        return verify(session)


def _raw(engine: Engine, sql: str, **params: Any) -> None:
    with translated_errors(), engine.begin() as conn:
        conn.execute(text(sql), params)


@pytest.fixture
def demo_ran(session_factory: sessionmaker[Session]) -> list[AdminEvent]:
    """Run a small demo (set-up, work, remediation) and return the admin ledger it left."""
    run_demo(session_factory, uows=40)
    return _events(session_factory)


def test_every_admin_action_of_a_run_is_recorded_in_order(
    session_factory: sessionmaker[Session], demo_ran: list[AdminEvent]
) -> None:
    """Instance, import, actors, grants, remediations: each a row, 1..n, linked; verify is clean."""
    actions = [event.action for event in demo_ran]
    assert [event.sequence for event in demo_ran] == list(range(1, len(demo_ran) + 1))
    assert actions[:2] == ["INSTANCE_CREATED", "WORKFLOW_IMPORTED"]
    assert {"ACTOR_REGISTERED", "ROLE_GRANTED", "UOW_REMEDIATED"} <= set(actions)
    remediation = next(e for e in demo_ran if e.action == "UOW_REMEDIATED")
    assert (remediation.principal, remediation.actor_id is not None) == ("actor", True)
    created = demo_ran[0]
    assert (created.principal, created.subject_id) == ("admin", str(created.instance_id))
    report = _report(session_factory)
    assert (report.ok, report.admin_events_checked) == (True, len(demo_ran))


def test_issuing_a_token_is_recorded(
    session_factory: sessionmaker[Session], demo_ran: list[AdminEvent]
) -> None:
    """A token issued to an actor is an admin event naming the actor (never the token)."""
    actor = next(e for e in demo_ran if e.action == "ACTOR_REGISTERED")
    token = issue_token(session_factory, actor.subject_id)  # type: ignore[arg-type]
    last = _events(session_factory)[-1]
    assert (last.action, last.subject_id, last.sequence) == (
        "TOKEN_ISSUED",
        actor.subject_id,
        len(demo_ran) + 1,
    )
    assert token not in str(last.details)
    assert _report(session_factory).ok


@pytest.mark.parametrize(
    ("attack", "at"),
    [
        ("UPDATE admin_events SET principal = 'system' WHERE sequence = 2", 2),
        ("DELETE FROM admin_events WHERE sequence = 3", 4),
        ("UPDATE admin_events SET subject_id = NULL WHERE sequence = 1", 1),
    ],
    ids=["edit", "delete", "erase-subject"],
)
def test_owner_edits_of_the_admin_ledger_are_found(
    session_factory: sessionmaker[Session],
    engine: Engine,
    demo_ran: list[AdminEvent],
    attack: str,
    at: int,
) -> None:
    """An edited or deleted admin row breaks the chain where it was."""
    with append_only_disabled(engine):
        _raw(engine, attack)
    findings = [(f.kind, f.sequence) for f in _report(session_factory).findings]
    assert (FindingKind.ADMIN_LEDGER, at) in findings


def test_a_forged_admin_row_is_found_and_ordinary_writers_cannot_edit(
    session_factory: sessionmaker[Session], engine: Engine, demo_ran: list[AdminEvent]
) -> None:
    """No bypass is needed to append; the made-up link gives it away. UPDATE is refused."""
    last = demo_ran[-1]
    at: Any = last.recorded_at
    if engine.dialect.name == "sqlite":
        at = format_timestamp(at)
    params = {"seq": last.sequence + 1, "at": at, "key": last.key_id}
    _raw(
        engine,
        "INSERT INTO admin_events (sequence, recorded_at, principal, action, key_id, chain_hash) "
        "VALUES (:seq, :at, 'admin', 'ROLE_GRANTED', :key, :link)",
        link="f" * 64,
        **params,
    )
    findings = [(f.kind, f.sequence) for f in _report(session_factory).findings]
    assert findings == [(FindingKind.ADMIN_LEDGER, last.sequence + 1)]
    with pytest.raises(AppendOnlyViolationError, match="append-only"):
        _raw(engine, "UPDATE admin_events SET action = 'X'")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # PostgreSQL checks types
def test_a_malformed_stored_value_is_reported_not_a_crash(
    session_factory: sessionmaker[Session], engine: Engine, demo_ran: list[AdminEvent]
) -> None:
    """Text that is no time, or details that are no JSON, break the row's link; nothing raises."""
    with append_only_disabled(engine):
        _raw(engine, "UPDATE admin_events SET recorded_at = 'yesterday' WHERE sequence = 2")
        _raw(engine, "UPDATE admin_events SET details = '{not json' WHERE sequence = 3")
    findings = [(f.kind, f.sequence) for f in _report(session_factory).findings]
    assert findings[:2] == [(FindingKind.ADMIN_LEDGER, 2), (FindingKind.ADMIN_LEDGER, 3)]


def test_a_deleted_tail_needs_a_checkpoint_and_is_caught_by_one(
    session_factory: sessionmaker[Session],
    engine: Engine,
    demo_ran: list[AdminEvent],
    tmp_path: Path,
) -> None:
    """Deleting the newest admin rows leaves a shorter, valid chain: only a checkpoint shows it.

    The newest rows are the demo's last action, covered by the checkpoint, and the record of
    that seal, written after it.
    """
    signer = create_signing_key(tmp_path / "key.pem")
    head = seal(engine, signer).checkpoint
    assert head is not None
    with append_only_disabled(engine):
        _raw(engine, "DELETE FROM admin_events WHERE sequence >= :seq", seq=demo_ran[-1].sequence)
    assert _report(session_factory).ok  # the threat model says so: a tail cut needs a checkpoint
    with engine.connect() as connection:
        against = verify_checkpoint(connection, head, signer.public_key)
    assert not against.ok


def test_a_seal_is_recorded_once_and_an_idle_ledger_settles(
    session_factory: sessionmaker[Session],
    engine: Engine,
    demo_ran: list[AdminEvent],
    tmp_path: Path,
) -> None:
    """Seal 1 records itself; seal 2 covers only that record and records nothing; seal 3 idles."""
    signer = create_signing_key(tmp_path / "key.pem")
    first = seal(engine, signer)
    recorded = _events(session_factory)[-1]
    assert first.checkpoint is not None
    assert (recorded.action, recorded.principal, recorded.details["tree_size"]) == (
        "CHECKPOINT_SEALED",
        "system",
        first.checkpoint.tree_size,
    )
    second = seal(engine, signer)
    assert second.new_leaves == 1
    assert _events(session_factory)[-1].sequence == recorded.sequence
    assert seal(engine, signer).new_leaves == 0
    assert _report(session_factory).ok
