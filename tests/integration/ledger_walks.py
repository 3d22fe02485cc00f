"""A UOW walked through five history rows, for the tests that then tamper with it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.testing import Playground, make_uow


def walked(
    service: UOWPersistenceService, session: Session, play: Playground, metadata: Any = None
) -> UnitsOfWork:
    """Create a UOW, then claim (with ``metadata``), adjust, submit, claim again; commit.

    History sequences: 1 CREATED, 2 ACTIVE, 3 ATTRIBUTES, 4 PENDING elsewhere, 5 ACTIVE.
    """
    attributes = {"amount": 100, "owner": "ann"}
    uow = make_uow(session, play, attributes=attributes, service=service, commit=False)
    service.save_uow(session, uow, "ACTIVE", reasoning="claim", metadata=metadata)
    service.set_attributes(session, uow, {"amount": 120}, None, "adjust")
    service.save_uow(session, uow, "PENDING", play.interactions[1], reasoning="submit")
    service.save_uow(session, uow, "ACTIVE", reasoning="claim again")
    session.commit()
    return uow
