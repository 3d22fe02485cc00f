"""The engine's Core-read UOW rows behave as ORM loads of the same rows."""

from __future__ import annotations

import uuid

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.engine.lookups import Queue, uow_with_role_ids
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.testing import Playground, make_uow


def test_a_claimed_row_is_the_orm_load_of_it(
    session_factory: sessionmaker[Session], play: Playground
) -> None:
    """Same column values and types, persistent in the Session, nothing pending."""
    with session_factory() as setup:
        uow_id = make_uow(setup, play).uow_id
    queue = Queue.for_engine(session_factory.kw["bind"])
    with session_factory() as mine, session_factory() as orm:
        claimed = queue.claim_next(mine, [play.interactions[0]])
        loaded = orm.get(UnitsOfWork, uow_id)
        assert claimed is not None
        assert loaded is not None
        assert claimed.uow_id == uow_id
        for column in UnitsOfWork.__table__.c:
            key = sa_inspect(UnitsOfWork).get_property_by_column(column).key
            mine_value, orm_value = getattr(claimed, key), getattr(loaded, key)
            assert mine_value == orm_value, key
            assert type(mine_value) is type(orm_value), key
        state = sa_inspect(claimed)
        assert state.persistent
        assert not state.modified
        assert claimed in mine
        assert not mine.dirty
        assert not mine.new
        # The Session hands back the very object for the same id, as after an ORM load.
        assert mine.get(UnitsOfWork, uow_id) is claimed


def test_a_row_the_session_holds_is_returned_unchanged(session: Session, play: Playground) -> None:
    """Reading a UOW the Session already holds gives that object, not a second copy."""
    uow = make_uow(session, play)
    held = session.scalars(select(UnitsOfWork).where(UnitsOfWork.uow_id == uow.uow_id)).one()
    again, roles = uow_with_role_ids(session, uow.uow_id, uuid.uuid4())
    assert again is held
    assert roles == frozenset()
    session.rollback()
