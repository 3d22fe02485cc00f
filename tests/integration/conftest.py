"""Fixtures for persistence-level contract tests."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.testing import Playground, make_playground


@pytest.fixture
def service() -> UOWPersistenceService:
    """Return a persistence service on the real clock."""
    return UOWPersistenceService()


@pytest.fixture
def play(session: Session) -> Playground:
    """Create an instance, a workflow and three interactions, committed."""
    playground = make_playground(session)
    session.commit()
    return playground
