"""Revocation on both back ends: a role or token revoked by one engine holds in every other."""

from __future__ import annotations

from importlib.resources import files

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.audit.verify import verify
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import NotAuthorizedError, NotFoundError
from chameleon_workflow.models import AdminEvent, LocalActor
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

INVOICE = (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()


def test_revoked_role_holds_in_another_engine(session_factory: sessionmaker[Session]) -> None:
    """An engine that checked out for a role before is refused once another engine revokes it."""
    first = WorkflowEngine(session_factory, telemetry=TelemetryBuffer())
    second = WorkflowEngine(session_factory, telemetry=TelemetryBuffer())
    instance = first.create_instance("revocation")
    first.import_workflow(instance, INVOICE)
    bot = first.register_actor(instance, "bot", "Bot", "AI_AGENT")
    first.assign_role(bot, "triage")
    attributes = {"invoice_id": "I-1", "amount": 5}
    held = first.instantiate(instance, "invoice_approval", attributes)
    waiting = first.instantiate(instance, "invoice_approval", attributes)
    claimed = first.checkout(bot, "triage")
    assert claimed is not None
    assert claimed.uow_id == held
    second.revoke_role(bot, "triage")
    with pytest.raises(NotAuthorizedError, match="does not hold role 'triage'"):
        first.checkout(bot, "triage")
    with pytest.raises(NotAuthorizedError, match="holds no role"):
        first.submit(bot, held, {}, "too late")
    with pytest.raises(NotFoundError, match="does not hold role 'triage'"):
        second.revoke_role(bot, "triage")
    first.assign_role(bot, "triage")
    assert first.submit(bot, held).status == "PENDING"
    claimed_again = first.checkout(bot, "triage")
    assert claimed_again is not None
    assert claimed_again.uow_id == waiting
    with session_factory() as session:
        events = session.execute(
            select(AdminEvent.action, AdminEvent.subject_id).order_by(AdminEvent.sequence)
        ).all()
        report = verify(session)
    assert [action for action, _ in events][-3:] == ["ROLE_GRANTED", "ROLE_REVOKED", "ROLE_GRANTED"]
    assert events[-2][1] == str(bot)
    assert (report.ok, report.findings) == (True, ())


def test_revoked_token_is_forgotten(session_factory: sessionmaker[Session]) -> None:
    """Revoking a token clears its hash; an unknown actor is NotFoundError."""
    engine = WorkflowEngine(session_factory, telemetry=TelemetryBuffer())
    instance = engine.create_instance("tokens")
    bot = engine.register_actor(instance, "bot", "Bot", "AI_AGENT")
    with session_factory.begin() as session:
        session.get(LocalActor, bot).token_hash = "f" * 64  # type: ignore[union-attr]
    engine.revoke_token(bot)
    with session_factory() as session:
        stored = session.scalar(select(LocalActor.token_hash).where(LocalActor.actor_id == bot))
    assert stored is None
    with session_factory() as session:
        last = session.execute(
            select(AdminEvent.action, AdminEvent.subject_id).order_by(AdminEvent.sequence.desc())
        ).first()
    assert tuple(last or ()) == ("TOKEN_REVOKED", str(bot))
    with pytest.raises(NotFoundError, match="no actor with id"):
        engine.revoke_token(instance)
