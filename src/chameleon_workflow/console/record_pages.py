"""The overview, the interaction log and the admin ledger, for the admin and the auditor.

The overview refreshes itself every few seconds (a meta refresh: no script needed);
the two lists take their filters from a GET form and page by offset.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from chameleon_workflow.console import data, records
from chameleon_workflow.console.backend import Viewer
from chameleon_workflow.console.uow_pages import moment, readable_instance
from chameleon_workflow.console.web import ConsoleDep, SessionDep
from chameleon_workflow.errors import InvalidValueError, NotAuthorizedError
from chameleon_workflow.states import AdminAction, LogType

router = APIRouter()
Text = Annotated[str | None, Query(max_length=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
#: Seconds between the overview's refreshes.
OVERVIEW_REFRESH_S = 5


def require_reader(viewer: Viewer) -> None:
    """Refuse an actor: the logs and the admin ledger span every instance."""
    if not viewer.reads_everything:
        raise NotAuthorizedError("this page needs the admin token or the auditor token")


def an_id(value: str | None, name: str) -> uuid.UUID | None:
    """Parse an id filter; None when left empty."""
    if not value:
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError as exc:
        raise InvalidValueError(f"{name}: {value!r} is not an id") from exc


def log_filter(
    db: Session, viewer: Viewer, kind: str | None, given: dict[str, str | None]
) -> records.LogFilter:
    """Build a filter from a form's fields (empty fields filter nothing)."""
    return records.LogFilter(
        log_type=kind,
        instance_id=readable_instance(db, viewer, given["instance"]),
        uow_id=an_id(given["uow"], "UOW"),
        actor_id=an_id(given["actor"], "actor"),
        since=moment(given["since"], "since"),
        until=moment(given["until"], "until"),
    )


@router.get("/overview")
def overview(request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    """Show UOWs by status, the recent pace, the telemetry buffer and the background services."""
    require_reader(session.viewer)
    now = datetime.now(UTC)

    def query(db: Session) -> tuple[dict[str, int], float]:
        return data.status_counts(db, None, None), records.transitions_per_minute(db, now)

    counts, pace = console.backend.engine.read(query)
    context = {
        "counts": counts,
        "pace": pace,
        "vitals": console.backend.vitals(),
        "refresh": OVERVIEW_REFRESH_S,
        "now": now,
    }
    return console.render(request, "overview.html", context, session)


@router.get("/logs")
def logs(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    log_type: Annotated[str | None, Query(alias="type", max_length=200)] = None,
    instance: Text = None,
    uow: Text = None,
    actor: Text = None,
    since: Text = None,
    until: Text = None,
    offset: Offset = 0,
) -> Response:
    """List interaction-log rows, newest first, by type, instance, UOW, actor and time."""
    require_reader(session.viewer)
    given = {"instance": instance, "uow": uow, "actor": actor, "since": since, "until": until}
    kind = records.log_type_of(log_type)
    rows = console.backend.engine.read(
        lambda db: records.logs(db, log_filter(db, session.viewer, kind, given), offset)
    )
    context = {
        "rows": rows,
        "filters": {**{k: v or "" for k, v in given.items()}, "type": log_type or ""},
        "kinds": [k.value for k in LogType],
        "offset": offset,
        "page": records.RECORDS_PAGE,
    }
    return console.render(request, "logs.html", context, session)


@router.get("/admin-events")
def admin_events(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    action: Text = None,
    instance: Text = None,
    actor: Text = None,
    since: Text = None,
    until: Text = None,
    offset: Offset = 0,
) -> Response:
    """List admin-ledger rows, newest first, by action, instance, actor and time."""
    require_reader(session.viewer)
    given = {"instance": instance, "uow": None, "actor": actor, "since": since, "until": until}
    kind = records.admin_action_of(action)
    rows = console.backend.engine.read(
        lambda db: records.admin_events(db, log_filter(db, session.viewer, kind, given), offset)
    )
    context = {
        "rows": rows,
        "filters": {**{k: v or "" for k, v in given.items()}, "action": action or ""},
        "kinds": [k.value for k in AdminAction],
        "offset": offset,
        "page": records.RECORDS_PAGE,
    }
    return console.render(request, "admin_events.html", context, session)
