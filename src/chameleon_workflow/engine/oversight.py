"""Pilot oversight: people (PILOT actors) who approve high-risk moves and steer instances.

A move a workflow's high-risk rule names is held in PENDING_PILOT_APPROVAL (``Steps``);
from there only a pilot moves it: ``approve`` makes the move that was held, ``reject``
sends the UOW to the rule's ``reject_to`` interaction (or a named one) or to FAILED. A
holder stuck on a question ``ask``s; the UOW waits in PENDING_PILOT_APPROVAL until a
pilot ``answer``s, and goes back to its holder with the answer in its ``clarification``
attribute. ``pause`` stops checkouts in an instance and parks every PENDING UOW in it
(PAUSED; parents waiting at a join stay, since nobody checks those out); holders finish
or fail what they hold; ``resume`` puts the PAUSED UOWs back. ``waive`` sends a UOW a
guardian refused back to where it was refused, and that guardian lets it through there
from then on. Each is one transaction and one history row per UOW (PILOT_APPROVAL,
PILOT_REJECTION, PAUSE, RESUME, CLARIFICATION or WAIVER) naming the pilot as actor, with
the pilot's reasoning: the ledger covers them like every other row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from chameleon_workflow.engine.facts import KnownFacts
from chameleon_workflow.engine.limits import Limits
from chameleon_workflow.engine.lookups import get_uow_row, parked_note, require_holder
from chameleon_workflow.engine.setup import record_switch
from chameleon_workflow.engine.steps import Intent, Move, Steps
from chameleon_workflow.engine.txn import TxnLog
from chameleon_workflow.engine.views import ActorFacts, ParkedUOW, UOWView
from chameleon_workflow.errors import (
    InvalidValueError,
    NotAuthorizedError,
    NotFoundError,
)
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import InstanceContext, UnitsOfWork
from chameleon_workflow.states import ActorType, HistoryEvent, InstanceStatus, UOWStatus
from chameleon_workflow.workflow.importer import CompiledWorkflow

S = UOWStatus
E = HistoryEvent
T = TypeVar("T")
Write = Callable[[Callable[[Session, TxnLog], T]], T]
Read = Callable[[Callable[[Session], T]], T]


class Oversight:
    """The pilot's operations on an engine (``WorkflowEngine.oversight``)."""

    def __init__(
        self,
        write: Write[Any],
        read: Read[Any],
        known: KnownFacts,
        steps: Steps,
        persistence: UOWPersistenceService,
        limits: Limits,
        remediable: Callable[[Session, UnitsOfWork], None],
    ) -> None:
        """Share the engine's transactions, facts, steps and limits.

        ``remediable`` refuses to bring back a child its parent's join already counted.
        """
        self._write = write
        self._read = read
        self._known = known
        self._steps = steps
        self._persistence = persistence
        self._limits = limits
        self._remediable = remediable

    # ------------------------------------------------------------------ reads

    def queue(self, pilot_id: uuid.UUID, instance_id: uuid.UUID) -> list[ParkedUOW]:
        """Return the UOWs of an instance waiting for a pilot, oldest first (pilots only)."""

        def query(session: Session) -> list[ParkedUOW]:
            self._pilot(session, pilot_id, instance_id)
            rows = session.scalars(
                select(UnitsOfWork)
                .where(
                    UnitsOfWork.instance_id == instance_id,
                    UnitsOfWork.status == S.PENDING_PILOT_APPROVAL,
                )
                .order_by(UnitsOfWork.updated_at, UnitsOfWork.uow_id)
            ).all()
            return [self._parked(session, uow) for uow in rows]

        result: list[ParkedUOW] = self._read(query)
        return result

    def _parked(self, session: Session, uow: UnitsOfWork) -> ParkedUOW:
        compiled = self._known.workflow(session, uow.local_workflow_id)
        note, actor, since = parked_note(session, uow.uow_id)
        held = note.get("parked") or {}
        asked = note.get("clarification") or {}
        iid = uow.current_interaction_id
        return ParkedUOW(
            uow_id=uow.uow_id,
            workflow=compiled.name,
            interaction=compiled.interaction_name(iid) if iid else None,
            kind="clarification" if asked else "approval",
            rule=held.get("rule"),
            role=held.get("role"),
            intended_status=held.get("status"),
            question=asked.get("question"),
            asked_by=actor if asked else None,
            since=since,
            attributes=self._persistence.get_attributes(session, uow.uow_id),
        )

    # ----------------------------------------------------------- approvals

    def approve(self, pilot_id: uuid.UUID, uow_id: uuid.UUID, reasoning: str) -> UOWView:
        """Make the move a high-risk rule held (completing, routing or failing the UOW)."""
        self._limits.check_reasoning(reasoning)

        def work(session: Session, txn: TxnLog) -> UOWView:
            pilot, uow, compiled, held = self._held_for(session, txn, pilot_id, uow_id)
            role = compiled.role(held["role"])
            note = {"pilot": pilot.identity_key, "rule": held.get("rule")}
            why = _required(reasoning, "an approval needs the pilot's reasoning")
            if held["status"] == S.FAILED:
                reason = f"{held.get('reason')} (approved: {why})"
                self._steps.to_epsilon(
                    session, txn, compiled, uow, pilot.actor_id, role, reason, note,
                    E.PILOT_APPROVAL,
                )  # fmt: skip
            else:
                target = held.get("to")
                intent = Intent(
                    held["status"],
                    uuid.UUID(target) if target else None,
                    held.get("route"),
                    compiled.interaction_name(uuid.UUID(target)) if target else None,
                )
                attrs = self._persistence.get_attributes(session, uow.uow_id)
                self._steps.carry_out(
                    session, txn, role, uow, pilot.actor_id, why, intent, attrs,
                    E.PILOT_APPROVAL, note,
                )  # fmt: skip
            return self._steps.view(session, compiled, uow)

        result: UOWView = self._write(work)
        return result

    def reject(
        self,
        pilot_id: uuid.UUID,
        uow_id: uuid.UUID,
        reason: str,
        to_interaction: str | None = None,
    ) -> UOWView:
        """Refuse a held move: back to an interaction (the rule's reject_to) or FAILED.

        Naming the failed queue (EPSILON's inbound interaction) also means FAILED.
        """
        self._limits.check_reasoning(reason, "reason")

        def work(session: Session, txn: TxnLog) -> UOWView:
            pilot, uow, compiled, held = self._held_for(session, txn, pilot_id, uow_id)
            role = compiled.role(held["role"])
            why = _required(reason, "a rejection needs the pilot's reason")
            rule = next((r for r in compiled.high_risk if r.name == held.get("rule")), None)
            target = to_interaction or (rule.reject_to if rule is not None else None)
            note = {"pilot": pilot.identity_key, "rule": held.get("rule")}
            failed_queue = compiled.epsilon_inbound_interaction_id
            if target is None or _interaction(compiled, target) == failed_queue:
                self._steps.to_epsilon(
                    session, txn, compiled, uow, pilot.actor_id, role, why, note,
                    E.PILOT_REJECTION,
                )  # fmt: skip
            else:
                iid = _interaction(compiled, target)
                move = Move(
                    S.PENDING, pilot.actor_id, why, role.role_id, iid, note, None,
                    event=E.PILOT_REJECTION,
                )  # fmt: skip
                self._steps.move(session, txn, uow, move)
            return self._steps.view(session, compiled, uow)

        result: UOWView = self._write(work)
        return result

    # -------------------------------------------------------- clarification

    def ask(self, actor_id: uuid.UUID, uow_id: uuid.UUID, question: str) -> UOWView:
        """Let the holder of a UOW ask a pilot; the UOW waits (still its) for the answer."""
        self._limits.check_reasoning(question, "question")

        def work(session: Session, txn: TxnLog) -> UOWView:
            actor = self._known.actor(session, actor_id)
            uow = get_uow_row(session, uow_id)
            require_holder(uow, actor)
            compiled = self._known.workflow(session, uow.local_workflow_id)
            txn.instance_id = uow.instance_id
            text = _required(question, "a clarification request needs a question")
            role = self._role_at(compiled, uow)
            note = {"clarification": {"question": text}}
            move = Move(
                S.PENDING_PILOT_APPROVAL, actor.actor_id, text, role, None, note,
                event=E.CLARIFICATION,
            )  # fmt: skip
            self._steps.move(session, txn, uow, move)
            return self._steps.view(session, compiled, uow)

        result: UOWView = self._write(work)
        return result

    def answer(self, pilot_id: uuid.UUID, uow_id: uuid.UUID, answer: str) -> UOWView:
        """Answer a holder's question: the UOW goes back to it with ``clarification`` set."""
        self._limits.check_reasoning(answer, "answer")

        def work(session: Session, txn: TxnLog) -> UOWView:
            pilot, uow, compiled, note = self._parked_for(session, txn, pilot_id, uow_id)
            asked = note.get("clarification")
            if not asked:
                raise InvalidValueError(f"UOW {uow_id} waits for an approval, not an answer")
            text = _required(answer, "an answer cannot be empty")
            value = {"question": asked["question"], "answer": text, "pilot": pilot.identity_key}
            self._persistence.set_attributes(
                session, uow, {"clarification": value}, pilot.actor_id, text
            )
            role = self._role_at(compiled, uow)
            move = Move(
                S.ACTIVE, pilot.actor_id, text, role, None, {"clarification": value},
                event=E.CLARIFICATION,
            )  # fmt: skip
            self._steps.move(session, txn, uow, move)
            return self._steps.view(session, compiled, uow)

        result: UOWView = self._write(work)
        return result

    # -------------------------------------------------------- pause, resume

    def pause(self, pilot_id: uuid.UUID, instance_id: uuid.UUID, reasoning: str) -> int:
        """Stop checkouts in an instance and park its PENDING UOWs; return how many."""
        return self._switch(pilot_id, instance_id, reasoning, pause=True)

    def resume(self, pilot_id: uuid.UUID, instance_id: uuid.UUID, reasoning: str) -> int:
        """Let an instance run again: its PAUSED UOWs are PENDING again; return how many."""
        return self._switch(pilot_id, instance_id, reasoning, pause=False)

    def _switch(
        self, pilot_id: uuid.UUID, instance_id: uuid.UUID, reasoning: str, *, pause: bool
    ) -> int:
        self._limits.check_reasoning(reasoning)
        what = "pause" if pause else "resume"

        def work(session: Session, txn: TxnLog) -> int:
            pilot = self._pilot(session, pilot_id, instance_id)
            why = _required(reasoning, f"a {what} needs the pilot's reasoning")
            instance = session.scalars(
                select(InstanceContext)
                .where(InstanceContext.instance_id == instance_id)
                .with_for_update()
            ).one()
            wanted = InstanceStatus.PAUSED if pause else InstanceStatus.ACTIVE
            if instance.status == wanted:
                raise InvalidValueError(f"instance {instance_id} is already {wanted}")
            if instance.status == InstanceStatus.ARCHIVED:
                raise InvalidValueError(f"instance {instance_id} is archived")
            instance.status = wanted
            txn.instance_id = instance_id
            source = S.PENDING if pause else S.PAUSED
            rows = session.scalars(
                select(UnitsOfWork)
                .where(UnitsOfWork.instance_id == instance_id, UnitsOfWork.status == source)
                .order_by(UnitsOfWork.created_at, UnitsOfWork.uow_id)
                .with_for_update(skip_locked=True)
            ).all()
            moved = 0
            for uow in rows:
                compiled = self._known.workflow(session, uow.local_workflow_id)
                iid = uow.current_interaction_id
                if pause and iid is not None and compiled.join_at(iid) is not None:
                    continue  # a parent at its join: the join releases it, nobody checks it out
                move = Move(
                    S.PAUSED if pause else S.PENDING, pilot.actor_id, why,
                    self._role_at(compiled, uow), None, {"pilot": pilot.identity_key},
                    event=E.PAUSE if pause else E.RESUME,
                )  # fmt: skip
                self._steps.move(session, txn, uow, move)
                moved += 1
            session.flush()
            record_switch(session, self._persistence, pilot, instance_id, why, moved, pause=pause)
            return moved

        result: int = self._write(work)
        return result

    # --------------------------------------------------------------- waiver

    def waive(self, pilot_id: uuid.UUID, uow_id: uuid.UUID, justification: str) -> UOWView:
        """Overrule the guardian that refused a UOW: back where it was refused, let through."""
        self._limits.check_reasoning(justification, "justification")

        def work(session: Session, txn: TxnLog) -> UOWView:
            uow = get_uow_row(session, uow_id)
            pilot = self._pilot(session, pilot_id, uow.instance_id)
            compiled = self._known.workflow(session, uow.local_workflow_id)
            txn.instance_id = uow.instance_id
            why = _required(justification, "a waiver needs a written justification")
            note = parked_note(session, uow.uow_id, S.FAILED)[0] if uow.status == S.FAILED else {}
            guardian, origin = note.get("guardian"), note.get("failed_from")
            if not guardian or not origin:
                raise InvalidValueError(
                    f"UOW {uow_id} was not refused by a guardian (status {uow.status}): "
                    "there is nothing to waive"
                )
            self._remediable(session, uow)
            iid = uuid.UUID(origin)
            waiver = {"guardian": guardian, "interaction": origin, "pilot": pilot.identity_key}
            role = compiled.consumers(iid)[0].role_id
            move = Move(
                S.PENDING, pilot.actor_id, why, role, iid, {"waiver": waiver}, None,
                event=E.WAIVER,
            )  # fmt: skip
            self._steps.move(session, txn, uow, move)
            return self._steps.view(session, compiled, uow)

        result: UOWView = self._write(work)
        return result

    # ------------------------------------------------------------ internals

    def _pilot(self, session: Session, pilot_id: uuid.UUID, instance_id: uuid.UUID) -> ActorFacts:
        actor = self._known.actor(session, pilot_id)
        if actor.actor_type != ActorType.PILOT or actor.instance_id != instance_id:
            raise NotAuthorizedError(
                f"actor {actor.identity_key!r} ({actor.actor_id}) is not a pilot of instance "
                f"{instance_id}"
            )
        return actor

    def _parked_for(
        self, session: Session, txn: TxnLog, pilot_id: uuid.UUID, uow_id: uuid.UUID
    ) -> tuple[ActorFacts, UnitsOfWork, CompiledWorkflow, dict[str, Any]]:
        uow = get_uow_row(session, uow_id)
        pilot = self._pilot(session, pilot_id, uow.instance_id)
        if uow.status != S.PENDING_PILOT_APPROVAL:
            raise InvalidValueError(
                f"UOW {uow_id} is {uow.status}, not waiting for a pilot (PENDING_PILOT_APPROVAL)"
            )
        txn.instance_id = uow.instance_id
        note, _, _ = parked_note(session, uow.uow_id)
        return pilot, uow, self._known.workflow(session, uow.local_workflow_id), note

    def _held_for(
        self, session: Session, txn: TxnLog, pilot_id: uuid.UUID, uow_id: uuid.UUID
    ) -> tuple[ActorFacts, UnitsOfWork, CompiledWorkflow, dict[str, Any]]:
        pilot, uow, compiled, note = self._parked_for(session, txn, pilot_id, uow_id)
        held = note.get("parked")
        if not isinstance(held, dict):
            raise InvalidValueError(f"UOW {uow_id} waits for an answer, not an approval")
        return pilot, uow, compiled, held

    @staticmethod
    def _role_at(compiled: CompiledWorkflow, uow: UnitsOfWork) -> uuid.UUID:
        """Return the role a pilot action is recorded under: one consuming the UOW's place."""
        iid = uow.current_interaction_id
        consumers = compiled.consumers(iid) if iid is not None else ()
        if not consumers:
            raise NotFoundError(f"UOW {uow.uow_id} is in no interaction a role consumes")
        return consumers[0].role_id


def _required(text: str | None, message: str) -> str:
    if text is None or not text.strip():
        raise InvalidValueError(message)
    return text.strip()


def _interaction(compiled: CompiledWorkflow, name: str) -> uuid.UUID:
    found = compiled.interaction_ids.get(name)
    if found is None:
        raise NotFoundError(f"workflow {compiled.name!r} has no interaction {name!r}")
    return found
