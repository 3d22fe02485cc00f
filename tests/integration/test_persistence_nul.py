"""NUL (U+0000) is refused the same way on SQLite and PostgreSQL, before anything is written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork, UnitsOfWorkHistory, UOWAttribute
from chameleon_workflow.testing import Playground, make_uow

NUL = "contains NUL (U+0000), which PostgreSQL text cannot store"


def _counts(session: Session) -> tuple[int, int, int]:
    session.commit()
    return (
        int(session.scalar(select(func.count()).select_from(UnitsOfWork)) or 0),
        int(session.scalar(select(func.count()).select_from(UnitsOfWorkHistory)) or 0),
        int(session.scalar(select(func.count()).select_from(UOWAttribute)) or 0),
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"note": "a\x00b"}, f"attributes.note: {NUL}"),
        ({"note": {"deep": ["ok", "\x00"]}}, f"attributes.note.deep[1]: {NUL}"),
        ({"note": {"k\x00": 1}}, f"attributes.note: key 'k\\x00' {NUL}"),
        ({"no\x00te": 1}, f"attribute key 'no\\x00te': {NUL}"),
    ],
)
def test_nul_attribute_is_refused_and_nothing_written(
    service: UOWPersistenceService,
    session: Session,
    play: Playground,
    changes: dict[str, Any],
    message: str,
) -> None:
    """Setting or creating with a NUL in an attribute raises InvalidValueError, writes nothing."""
    uow = make_uow(session, play, interaction=None, service=service, commit=False)
    assert _counts(session) == (1, 1, 0)
    with pytest.raises(InvalidValueError) as on_set:
        service.set_attributes(session, uow, changes, None)
    with pytest.raises(InvalidValueError) as on_create:
        service.create_uow(
            session,
            instance_id=play.instance_id,
            local_workflow_id=play.workflow_id,
            attributes=changes,
        )
    assert (str(on_set.value), str(on_create.value)) == (message, message)
    assert _counts(session) == (1, 1, 0)
    assert (uow.version, service.get_attributes(session, uow.uow_id)) == (1, {})


@pytest.mark.parametrize(
    ("reasoning", "metadata", "message"),
    [
        ("why\x00", None, f"reasoning: {NUL}"),
        (None, {"source": "x\x00"}, f"transition_metadata.source: {NUL}"),
    ],
)
def test_nul_in_reasoning_or_metadata_is_refused_and_nothing_written(
    service: UOWPersistenceService,
    session: Session,
    play: Playground,
    reasoning: str | None,
    metadata: Any,
    message: str,
) -> None:
    """NUL in a transition's reasoning or metadata raises InvalidValueError, writes nothing."""
    uow = make_uow(session, play, interaction=None, service=service, commit=False)
    assert _counts(session) == (1, 1, 0)
    with pytest.raises(InvalidValueError) as info:
        service.save_uow(session, uow, "ACTIVE", reasoning=reasoning, metadata=metadata)
    assert str(info.value) == message
    assert _counts(session) == (1, 1, 0)
    session.expire_all()
    stored = session.get(UnitsOfWork, uow.uow_id)
    assert stored is not None
    assert (stored.status, stored.version) == ("PENDING", 1)
