"""HTTP routes for pilot oversight: the pilot's queue and what a pilot (or a holder) does.

A pilot is an actor of type PILOT, calling with its bearer token: it reads the queue of
UOWs waiting for it, approves or rejects held moves, answers questions, waives guardian
refusals and pauses or resumes its instance. A holder asks its question through
``POST /uows/{id}/clarification``. Every action is one engine transaction and one
history row per UOW naming the caller; errors are problem documents like everywhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from chameleon_workflow.engine.views import ParkedUOW
from chameleon_workflow.server import schemas as s
from chameleon_workflow.server.dependencies import ActorId, Svc
from chameleon_workflow.server.problems import error_responses

E = error_responses
router = APIRouter(tags=["oversight"])
#: What an oversight action on a UOW may answer besides 200.
ACTION = E(400, 401, 403, 404, 409, 413, 422, 503)
#: What a pause or resume may answer besides 200. Neither it nor the queue answers 404:
#: the path's instance is the pilot's own (which exists) or another one (403), and every
#: UOW a pause moves sits in an interaction some role consumes (the importer refuses a
#: workflow where one does not).
SWITCH = E(400, 401, 403, 409, 413, 422, 503)


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reasoning(_Body):
    """Why the pilot approves, pauses or resumes."""

    reasoning: s.Text = Field(min_length=1)


class Rejection(_Body):
    """Why the pilot refuses a held move, and optionally where the UOW goes instead."""

    reason: s.Text = Field(min_length=1)
    to_interaction: s.Text | None = Field(default=None, max_length=s.NAME_MAX)


class Waiver(_Body):
    """The written justification for overruling a guardian's refusal."""

    justification: s.Text = Field(min_length=1)


class Question(_Body):
    """A holder's question for a pilot."""

    question: s.Text = Field(min_length=1)


class Answer(_Body):
    """A pilot's answer to a holder's question."""

    answer: s.Text = Field(min_length=1)


class Parked(_Body):
    """A UOW waiting for a pilot: an approval (rule, intended status) or a question."""

    uow_id: uuid.UUID
    workflow: str
    interaction: str | None
    kind: str
    rule: str | None
    role: str | None
    intended_status: str | None
    question: str | None
    asked_by: uuid.UUID | None
    since: datetime
    attributes: dict[str, Any]

    @classmethod
    def of(cls, parked: ParkedUOW) -> Parked:
        """Render an engine view of a parked UOW."""
        return cls(**{name: getattr(parked, name) for name in cls.model_fields})


class Switched(_Body):
    """An instance paused or resumed, and how many UOWs that moved."""

    instance_id: uuid.UUID
    status: str
    uows: int


@router.get("/instances/{instance_id}/pilot-queue", responses=E(401, 403, 422, 503))
def pilot_queue(instance_id: uuid.UUID, svc: Svc, actor_id: ActorId) -> list[Parked]:
    """List the instance's UOWs waiting for a pilot, oldest first (pilots of the instance)."""
    return [Parked.of(p) for p in svc.engine.oversight.queue(actor_id, instance_id)]


@router.post("/uows/{uow_id}/approve", responses=ACTION)
def approve(uow_id: uuid.UUID, body: Reasoning, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Approve a held move: it is made now, recorded as PILOT_APPROVAL."""
    return s.UOW.of(svc.engine.oversight.approve(actor_id, uow_id, body.reasoning))


@router.post("/uows/{uow_id}/reject", responses=ACTION)
def reject(uow_id: uuid.UUID, body: Rejection, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Refuse a held move: to the rule's (or the given) interaction, else FAILED."""
    view = svc.engine.oversight.reject(actor_id, uow_id, body.reason, body.to_interaction)
    return s.UOW.of(view)


@router.post("/uows/{uow_id}/waive", responses=ACTION)
def waive(uow_id: uuid.UUID, body: Waiver, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Overrule the guardian that refused a UOW, with a written justification."""
    return s.UOW.of(svc.engine.oversight.waive(actor_id, uow_id, body.justification))


@router.post("/uows/{uow_id}/clarification", responses=ACTION)
def ask(uow_id: uuid.UUID, body: Question, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Ask a pilot a question about a UOW the caller holds; it waits for the answer."""
    return s.UOW.of(svc.engine.oversight.ask(actor_id, uow_id, body.question))


@router.post("/uows/{uow_id}/answer", responses=ACTION)
def answer(uow_id: uuid.UUID, body: Answer, svc: Svc, actor_id: ActorId) -> s.UOW:
    """Answer a holder's question: the UOW goes back to it with ``clarification`` set."""
    return s.UOW.of(svc.engine.oversight.answer(actor_id, uow_id, body.answer))


@router.post("/instances/{instance_id}/pause", responses=SWITCH)
def pause(instance_id: uuid.UUID, body: Reasoning, svc: Svc, actor_id: ActorId) -> Switched:
    """Pause an instance: no checkout until resumed; its waiting UOWs become PAUSED."""
    moved = svc.engine.oversight.pause(actor_id, instance_id, body.reasoning)
    return Switched(instance_id=instance_id, status="PAUSED", uows=moved)


@router.post("/instances/{instance_id}/resume", responses=SWITCH)
def resume(instance_id: uuid.UUID, body: Reasoning, svc: Svc, actor_id: ActorId) -> Switched:
    """Resume a paused instance: its PAUSED UOWs wait again (PENDING)."""
    moved = svc.engine.oversight.resume(actor_id, instance_id, body.reasoning)
    return Switched(instance_id=instance_id, status="ACTIVE", uows=moved)
