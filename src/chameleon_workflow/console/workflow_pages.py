"""The workflow pages: the imported workflows, and one version drawn with its live counts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from chameleon_workflow.console.drawing import Drawing, draw
from chameleon_workflow.console.web import ConsoleDep, SessionDep
from chameleon_workflow.engine import listing
from chameleon_workflow.engine.paging import PAGE_DEFAULT
from chameleon_workflow.errors import NotAuthorizedError

router = APIRouter()


@router.get("/workflows")
def workflows(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """List the workflows the viewer may read, oldest first."""
    page = console.backend.engine.read(
        lambda db: listing.list_workflows(db, session.viewer.scope, cursor or None, PAGE_DEFAULT)
    )
    return console.render(request, "workflows.html", {"page": page}, session)


@router.get("/workflows/{workflow_id}")
def workflow(
    workflow_id: uuid.UUID, request: Request, console: ConsoleDep, session: SessionDep
) -> Response:
    """Draw one workflow version with how many UOWs wait at each interaction."""

    def query(db: Session) -> tuple[listing.WorkflowView, Drawing]:
        found = listing.get_workflow(db, workflow_id)
        if not session.viewer.may_read(found.instance_id):
            raise NotAuthorizedError(f"workflow {workflow_id} belongs to another instance")
        return found, draw(db, workflow_id)

    found, drawing = console.backend.engine.read(query)
    context = {"workflow": found, "drawing": drawing}
    return console.render(request, "workflow.html", context, session)
