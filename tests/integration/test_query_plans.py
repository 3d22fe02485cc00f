"""The queue's claim and the reaper's sweep read their partial indexes on both back ends."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from chameleon_workflow.engine.lookups import Queue
from chameleon_workflow.engine.views import ActorFacts
from chameleon_workflow.errors import NotAuthorizedError
from chameleon_workflow.testing import Playground, make_uow

#: psycopg's named placeholders, as SQLAlchemy renders them.
_NAMED = re.compile(r"%\((\w+)\)s")


def _plan_of(engine: Engine, session: Session, run: Callable[[], Any]) -> str:
    """Run ``run``, catch its one SELECT on units_of_work and return that statement's plan."""
    seen: list[tuple[str, Any]] = []

    def catch(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "units_of_work" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", catch)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", catch)
    assert len(seen) == 1, seen
    statement, params = seen[0]
    conn = session.connection()
    raw: Any = conn.connection.driver_connection
    if engine.dialect.name == "sqlite":
        rows = raw.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
        return " | ".join(str(r[-1]) for r in rows)
    # A test database is tiny: without this the planner would rightly scan the table.
    # The plan shown is the generic one, made without the parameters' values, as
    # PostgreSQL uses once a statement has been prepared and run a few times.
    raw.execute("SET LOCAL enable_seqscan = off")
    raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    names: list[str] = []

    def number(found: re.Match[str]) -> str:
        if found.group(1) not in names:
            names.append(found.group(1))
        return f"${names.index(found.group(1)) + 1}"

    numbered = _NAMED.sub(number, statement)
    raw.execute(f"PREPARE planned AS {numbered}")
    values = ", ".join(f"'{params[name]}'" for name in names)
    rows = raw.execute(f"EXPLAIN EXECUTE planned({values})").fetchall()
    raw.execute("DEALLOCATE planned")
    return " | ".join(str(r[0]) for r in rows)


def test_claim_next_reads_the_partial_queue_index(
    engine: Engine, session: Session, play: Playground
) -> None:
    """The claim walks ix_units_of_work_queue in claim order: no scan of the table, no sort."""
    for _ in range(3):
        make_uow(session, play)
    queue = Queue.for_engine(engine)
    found: list[Any] = []
    plan = _plan_of(
        engine, session, lambda: found.append(queue.claim_next(session, [play.interactions[0]]))
    )
    assert found[0] is not None
    _assert_walks_the_queue_index(plan)
    session.rollback()


def _assert_walks_the_queue_index(plan: str) -> None:
    """The plan reads ix_units_of_work_queue in claim order: no scan, no sort."""
    assert "ix_units_of_work_queue" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    assert "Sort" not in plan, plan


def test_the_checked_claim_reads_the_partial_queue_index(
    engine: Engine, session: Session, play: Playground
) -> None:
    """The first claim of a checkout, with the grant and the pause, still walks the index."""
    for _ in range(3):
        make_uow(session, play)
    queue = Queue.for_engine(engine)
    nobody = ActorFacts(uuid.uuid4(), play.instance_id, "nobody", "AI_AGENT")
    refused: list[Exception] = []

    def claim() -> None:
        try:
            queue.checked_claim(session, nobody, uuid.uuid4(), "r", [play.interactions[0]])
        except NotAuthorizedError as exc:
            refused.append(exc)

    plan = _plan_of(engine, session, claim)
    assert refused, "an actor without the role is refused"
    _assert_walks_the_queue_index(plan)
    session.rollback()


def test_the_sweep_reads_the_partial_stale_index(
    engine: Engine, session: Session, play: Playground
) -> None:
    """The reaper's sweep of ACTIVE UOWs by heartbeat reads ix_units_of_work_stale."""
    make_uow(session, play)
    queue = Queue.for_engine(engine)
    now = datetime.now(UTC)
    plan = _plan_of(engine, session, lambda: queue.stale_uow_ids(session, now))
    assert "ix_units_of_work_stale" in plan, plan
    session.rollback()
