"""``POST /uows/{uow_id}/redactions``: the admin erases one attribute value (see ``erasure``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from chameleon_workflow.db import translated_errors
from chameleon_workflow.erasure import (
    REASON_MAX,
    RedactionResult,
    archived_in,
    redact_archived,
    redact_value,
    writing,
)
from chameleon_workflow.server import schemas as s
from chameleon_workflow.server.archive_routes import archive_of
from chameleon_workflow.server.dependencies import Admin, Svc
from chameleon_workflow.server.problems import error_responses

router = APIRouter(tags=["audit"])


class RedactionRequest(BaseModel):
    """Which attribute of the UOW to erase, and why (recorded in the admin ledger)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: s.Text = Field(min_length=1, max_length=s.NAME_MAX)
    reason: s.Text = Field(min_length=1, max_length=REASON_MAX)


class RedactionDone(BaseModel):
    """What the redaction rewrote, and the admin-ledger row recording it."""

    admin_sequence: int
    uow_id: uuid.UUID
    key: str
    attribute_rows: int
    history_rows: int
    log_rows: int
    #: An archived UOW: the segments restored, and those its UOWs were archived to again.
    restored_segments: list[str] = []
    archived_segments: list[str] = []


@router.post(
    "/uows/{uow_id}/redactions",
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 413, 422, 503),
)
def redact(uow_id: uuid.UUID, body: RedactionRequest, svc: Svc, _: Admin) -> RedactionDone:
    """Erase one attribute value of a UOW everywhere; verification notes it as redacted.

    An archived UOW, when the server has an archive directory: its segment is restored,
    the value redacted and its UOWs archived again (``erasure.redact_archived``).
    """
    with translated_errors():
        if svc.settings.archive_dir:
            with svc.engine.engine.connect() as connection:
                archived = bool(archived_in(connection, uow_id))
            if archived:
                store, signer = archive_of(svc)
                again = redact_archived(
                    svc.session_factory, store, signer, uow_id, body.key, body.reason
                )
                return _done(again.redaction, again.restored, again.archived.segments)
        with writing(svc.session_factory).begin() as session:
            done = redact_value(session, uow_id, body.key, body.reason)
    return _done(done, [], [])


def _done(done: RedactionResult, restored: list[str], archived: list[str]) -> RedactionDone:
    return RedactionDone(
        admin_sequence=done.admin_sequence,
        uow_id=done.uow_id,
        key=done.key,
        attribute_rows=done.attribute_rows,
        history_rows=done.history_rows,
        log_rows=done.log_rows,
        restored_segments=restored,
        archived_segments=archived,
    )
