"""The verification pages: start a run (one UOW, one instance, everything), watch it, read it.

Starting a run is a POST (with the session's CSRF token); its page refreshes itself
while the run lasts, then lists the findings by kind, each linking to the row it names,
and the latest checkpoint with whether the database still extends it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from chameleon_workflow.console import data
from chameleon_workflow.console.backend import Viewer
from chameleon_workflow.console.uow_pages import readable_instance, require_uow
from chameleon_workflow.console.verification import Target
from chameleon_workflow.console.web import ConsoleDep, FormDep, SessionDep, checked_form, prefix
from chameleon_workflow.errors import InvalidValueError, NotFoundError

router = APIRouter()


def target_of(db: Session, viewer: Viewer, scope: str, ref: str) -> tuple[Target, int]:
    """Return what a run covers and how many UOWs that is, refusing what the viewer may not read."""
    if scope == "uow":
        try:
            uow_id = uuid.UUID(ref.strip())
        except ValueError as exc:
            raise InvalidValueError(f"{ref!r} is not a UOW id") from exc
        require_uow(db, viewer, uow_id)
        return Target(uow_id=uow_id), 1
    if scope == "instance":
        if not ref.strip():
            raise InvalidValueError("name the instance to verify")
        instance_id = readable_instance(db, viewer, ref.strip())
        return Target(instance_id=instance_id), sum(
            data.status_counts(db, instance_id, None).values()
        )
    if scope == "all":
        if viewer.scope is not None:  # an actor verifies its own instance, never all of them
            return Target(instance_id=viewer.scope), sum(
                data.status_counts(db, viewer.scope, None).values()
            )
        return Target(), sum(data.status_counts(db, None, None).values())
    raise InvalidValueError(f"unknown scope {scope!r} (uow, instance or all)")


@router.get("/verify")
def verify_page(request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    """Show the verification form and the latest checkpoint."""
    head = console.backend.engine.read(data.latest_checkpoint)
    age = None if head is None else data.checkpoint_age_s(head, datetime.now(UTC))
    context = {"checkpoint": head, "age": age}
    return console.render(request, "verify.html", context, session)


@router.post("/verify")
def start_verification(
    request: Request, console: ConsoleDep, session: SessionDep, form: FormDep
) -> Response:
    """Start a verification run and go to its page."""
    checked_form(session, form)
    scope, ref = form.get("scope", "all"), form.get("ref", "")
    target, total = console.backend.engine.read(
        lambda db: target_of(db, session.viewer, scope, ref)
    )
    run = console.runs.start(session.session_id, target, total)
    return RedirectResponse(f"{prefix(request)}/verify/runs/{run.run_id}", 303)


@router.get("/verify/runs/{run_id}")
def run_page(run_id: str, request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    """Show a run: its progress while it lasts, then its findings and the checkpoint."""
    run = console.runs.find(session.session_id, run_id)
    if run is None:
        raise NotFoundError("no such verification run in this session")
    head = console.backend.engine.read(data.latest_checkpoint) if run.done else None
    context = {
        "run": run,
        "grouped": data.findings_by_kind(run.report.findings) if run.report else {},
        "checkpoint": head,
        "age": None if head is None else data.checkpoint_age_s(head, datetime.now(UTC)),
    }
    return console.render(request, "run.html", context, session)
