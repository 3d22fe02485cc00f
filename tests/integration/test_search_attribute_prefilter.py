"""An attribute filter narrowed in SQL still matches exactly as canonical JSON does.

The SQL narrowing (strings, booleans, exact integers) is only a superset: a value the
UOW held before, ``true`` against ``1`` and ``"1"`` against ``1`` must still be told
apart by the canonical check, on both back ends.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from chameleon_workflow.engine import search
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.testing import Playground, make_playground, make_uow


def _found(session: Session, play: Playground, *wanted: str) -> set[uuid.UUID]:
    filters = tuple(search.parse_attribute_filter(text) for text in wanted)
    where = search.UOWFilter(play.instance_id, attributes=filters)
    found: set[uuid.UUID] = set()
    cursor = None
    while True:
        page = search.list_uows(session, where, cursor, 2)
        found.update(view.uow_id for view in page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def test_attribute_filter_matches_canonically(session: Session) -> None:
    """Values compare as canonical JSON; an old or removed value no longer matches."""
    play = make_playground(session)
    session.commit()

    def uow(**attributes: Any) -> uuid.UUID:
        return make_uow(session, play, attributes=attributes).uow_id

    one_int, one_float, one_true, one_text = uow(n=1), uow(n=1.0), uow(n=True), uow(n="1")
    accented = uow(name="Zoë <b>")
    half = uow(n=0.5)
    moved = make_uow(session, play, attributes={"customer": "c7"})
    removed = make_uow(session, play, attributes={"customer": "c7"})
    kept = uow(customer="c7", n=1)
    service = UOWPersistenceService()
    service.set_attributes(session, moved, {"customer": "c8"}, None)
    service.set_attributes(session, removed, {}, None, remove=["customer"])
    session.commit()

    assert _found(session, play, "n=1") == {one_int, one_float, kept}
    assert _found(session, play, "n=1.0") == {one_int, one_float, kept}
    assert _found(session, play, "n=true") == {one_true}
    assert _found(session, play, 'n="1"') == {one_text}
    assert _found(session, play, "name=Zoë <b>") == {accented}
    assert _found(session, play, "n=0.5") == {half}
    assert _found(session, play, "customer=c7") == {kept}
    assert _found(session, play, "customer=c8") == {moved.uow_id}
    assert _found(session, play, "customer=c7", "n=1") == {kept}
    assert _found(session, play, "customer=c9") == set()
