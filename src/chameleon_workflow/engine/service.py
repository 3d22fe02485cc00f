"""WorkflowEngine: UOWs travel a workflow, each operation one transaction, every step traced.

Every transition goes through ``UOWPersistenceService`` (history row, hash chain);
guard decisions and condition errors are held until the transaction commits and then
recorded, with one STATE_TRANSITION row per status change, in the telemetry buffer.
On SQLite every writing operation runs in a BEGIN IMMEDIATE transaction (one writer at a
time, so a read-then-write never fails on a stale snapshot); on PostgreSQL queue claims
use ``FOR UPDATE SKIP LOCKED`` and everything else relies on the service's
compare-and-set. Transactions run through ``runner.TransactionRunner``: every database
error is a ``ChameleonError`` and one a lost connection broke is retried. Input is
checked against the ``limits`` before any transaction starts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import Settings, load_settings
from chameleon_workflow.engine import setup
from chameleon_workflow.engine.admin import AdminOperations
from chameleon_workflow.engine.facts import KnownFacts
from chameleon_workflow.engine.fanout import FanOut, refuse_join_checkout
from chameleon_workflow.engine.limits import Limits
from chameleon_workflow.engine.lookups import (
    Queue,
    get_uow_row,
    refuse_paused,
    require_holder,
    require_role_paused,
    uow_with_role_ids,
)
from chameleon_workflow.engine.oversight import Oversight
from chameleon_workflow.engine.runner import TransactionRunner
from chameleon_workflow.engine.steps import Intent, Move, Steps
from chameleon_workflow.engine.txn import Transition, TxnLog
from chameleon_workflow.engine.views import ActorFacts, SweepResult, UOWView
from chameleon_workflow.errors import (
    ConcurrencyError,
    InvalidTransitionError,
    InvalidValueError,
    NotAuthorizedError,
    NotFoundError,
)
from chameleon_workflow.ledger.service import Clock, UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork, utcnow
from chameleon_workflow.states import RoleType, UOWStatus
from chameleon_workflow.telemetry.buffer import TelemetryBuffer, get_telemetry_buffer
from chameleon_workflow.workflow.importer import (
    CompiledRole,
    CompiledWorkflow,
)

__all__ = ["WorkflowEngine"]

S = UOWStatus
T = TypeVar("T")


class WorkflowEngine(AdminOperations):
    """Drive units of work through imported workflows on behalf of registered actors."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        persistence: UOWPersistenceService | None = None,
        telemetry: TelemetryBuffer | None = None,
        clock: Clock | None = None,
        settings: Settings | None = None,
    ) -> None:
        """Use ``session_factory``'s database; the process-wide buffer unless one is given."""
        self.clock: Clock = clock or utcnow
        self.persistence = persistence or UOWPersistenceService(self.clock)
        self.telemetry = telemetry if telemetry is not None else get_telemetry_buffer()
        self.settings = settings or load_settings()
        self.limits = Limits.of(self.settings)
        bind = session_factory.kw.get("bind")
        if not isinstance(bind, Engine):
            raise InvalidValueError("the session factory must be bound to an Engine")
        self.engine = bind
        self._runner = TransactionRunner(
            session_factory, bind, self.persistence, self.telemetry, self.settings
        )
        self._write = self._runner.write
        self._queue = Queue.for_engine(bind)
        self._known = KnownFacts()
        self._steps = Steps(self.persistence, self.clock, self.settings)
        self._keys = self.persistence.ledger_keys(bind)
        self._fanout = FanOut(self._steps, self.persistence, self._known.workflow)
        #: The pilot's operations: approve, reject, ask/answer, pause/resume, waive, queue.
        self.oversight = Oversight(
            self._write, self.read, self._known, self._steps, self.persistence, self.limits,
            self._fanout.check_remediable,
        )  # fmt: skip

    def instantiate(
        self,
        instance_id: uuid.UUID,
        workflow: uuid.UUID | str,
        attributes: Mapping[str, Any] | None = None,
        actor_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Start a root UOW, PENDING at ALPHA's exit with its initial attributes."""
        self.limits.check_attributes(attributes)

        def work(session: Session, txn: TxnLog) -> uuid.UUID:
            workflow_id = self._workflow_id(session, instance_id, workflow)
            compiled = self._known.workflow(session, workflow_id)
            if (
                actor_id is not None
                and self._known.actor(session, actor_id).instance_id != instance_id
            ):
                raise NotFoundError(f"actor {actor_id} is not in instance {instance_id}")
            alpha = compiled.role_of_type(RoleType.ALPHA)
            uow = self.persistence.create_uow(
                session,
                instance_id=instance_id,
                local_workflow_id=workflow_id,
                attributes=attributes or {},
                interaction_id=compiled.alpha_exit_interaction_id,
                actor_id=actor_id,
                reasoning=f"instantiated workflow {compiled.name!r}",
            )
            txn.instance_id = instance_id
            txn.transitions.append(
                Transition(
                    uow.uow_id,
                    alpha.role_id,
                    uow.current_interaction_id,
                    actor_id,
                    "",
                    S.PENDING,
                    "instantiated",
                )
            )
            return uow.uow_id

        return self._write(work)

    # ------------------------------------------------------------ work

    def checkout(self, actor_id: uuid.UUID, role: uuid.UUID | str) -> UOWView | None:
        """Claim the oldest PENDING UOW of the role's inbound interactions that its gates pass."""

        def work(session: Session, txn: TxnLog) -> UOWView | None:
            actor = self._known.actor(session, actor_id)
            role_row = self._known.role(session, actor.instance_id, role)
            compiled = self._known.workflow(session, role_row.workflow_id)
            crole = compiled.role_by_id(role_row.role_id)
            queue = crole.inbound_interaction_ids
            # The grant is asked every time (a revoked role stops at once), with the pause:
            # for any role but a join's, in the first claim's statement.
            if crole.is_join:
                require_role_paused(session, actor, role_row.role_id, role_row.name)
                refuse_join_checkout(crole)
            paused, uow = self._queue.checked_claim(
                session, actor, role_row.role_id, role_row.name, queue
            )
            txn.instance_id = actor.instance_id
            if paused:
                refuse_paused(actor.instance_id)
            # A UOW its gates reject leaves the queue (FAILED), so this loop ends.
            while True:
                if uow is None:
                    return None
                view = self._steps.try_claim(session, txn, compiled, crole, uow, actor.actor_id)
                if view is not None:
                    return view
                uow = self._queue.claim_next(session, queue)

        return self._write(work)

    def submit(
        self,
        actor_id: uuid.UUID,
        uow_id: uuid.UUID,
        attributes: Mapping[str, Any] | None = None,
        reasoning: str | None = None,
    ) -> UOWView:
        """Finish the holder's step: update attributes, route onwards (COMPLETED at OMEGA)."""
        self.limits.check_attributes(attributes)
        self.limits.check_reasoning(reasoning)

        def work(session: Session, txn: TxnLog) -> UOWView:
            actor, uow, compiled, crole = self._held(session, txn, actor_id, uow_id)
            if attributes:
                self.persistence.set_attributes(session, uow, attributes, actor.actor_id, reasoning)
            attrs = self._steps.finish(
                session, txn, compiled, crole, uow, actor.actor_id, reasoning
            )
            self.limits.check_attribute_count(len(attrs))
            return self._steps.view(session, compiled, uow, attrs)

        return self._write(work)

    def fail(self, actor_id: uuid.UUID, uow_id: uuid.UUID, reason: str) -> UOWView:
        """Report the holder's UOW as failed: FAILED, queued at EPSILON's inbound."""
        self.limits.check_reasoning(reason, "reason")

        def work(session: Session, txn: TxnLog) -> UOWView:
            actor, uow, compiled, crole = self._held(session, txn, actor_id, uow_id)
            attrs = self.persistence.get_attributes(session, uow_id) if compiled.high_risk else {}
            intent = Intent(S.FAILED, reason=reason)
            steps, who = self._steps, actor.actor_id
            if not steps.hold_for_pilot(session, txn, compiled, crole, uow, who, intent, attrs):
                steps.to_epsilon(session, txn, compiled, uow, who, crole, reason, {})
            return self._steps.view(session, compiled, uow)

        return self._write(work)

    def heartbeat(self, actor_id: uuid.UUID, uow_id: uuid.UUID) -> UOWView:
        """Tell the engine the holder is still working on its UOW."""

        def work(session: Session, txn: TxnLog) -> UOWView:
            actor, uow, compiled, _ = self._held(session, txn, actor_id, uow_id)
            self.persistence.save_uow(session, uow, actor_id=actor.actor_id)
            return self._steps.view(session, compiled, uow)

        return self._write(work)

    def remediate(
        self,
        actor_id: uuid.UUID,
        uow_id: uuid.UUID,
        attributes: Mapping[str, Any] | None = None,
        to_interaction: uuid.UUID | str | None = None,
        reasoning: str | None = None,
    ) -> UOWView:
        """Send a FAILED (or ZOMBIED_DEAD) UOW back into the flow as PENDING (EPSILON only)."""
        self.limits.check_attributes(attributes)
        self.limits.check_reasoning(reasoning)

        def work(session: Session, txn: TxnLog) -> UOWView:
            actor = self._known.actor(session, actor_id)
            uow = get_uow_row(session, uow_id)
            if uow.instance_id != actor.instance_id:
                raise NotAuthorizedError(f"UOW {uow_id} belongs to another instance")
            compiled = self._known.workflow(session, uow.local_workflow_id)
            epsilon = compiled.role_of_type(RoleType.EPSILON)
            self._known.require_role(session, actor, epsilon.role_id, epsilon.name)
            txn.instance_id = uow.instance_id
            if uow.status not in (S.FAILED, S.ZOMBIED_DEAD):
                raise InvalidTransitionError(str(uow.status), S.PENDING)
            self._fanout.check_remediable(session, uow)
            target, origin = self._steps.remediation_target(session, compiled, uow, to_interaction)
            if attributes:
                self.persistence.set_attributes(session, uow, attributes, actor.actor_id, reasoning)
            why = reasoning or f"remediated by {epsilon.name!r}"
            metadata = {"remediated_from": str(origin) if origin else None, "to": str(target)}
            move = Move(S.PENDING, actor.actor_id, why, epsilon.role_id, target, metadata, None)
            self._steps.move(session, txn, uow, move)
            setup.record_remediation(session, self._keys, actor, uow, metadata)
            view = self._steps.view(session, compiled, uow)
            self.limits.check_attribute_count(len(view.attributes))
            return view

        return self._write(work)

    def sweep_zombies(
        self, now: datetime | None = None, instance_id: uuid.UUID | None = None
    ) -> SweepResult:
        """Reclaim ACTIVE UOWs whose heartbeat is stale: re-queue them, or declare them dead."""
        cutoff = (now or self.clock()) - timedelta(seconds=self.settings.zombie_threshold_s)
        candidates = self.read(
            lambda session: self._queue.stale_uow_ids(session, cutoff, instance_id)
        )
        requeued = dead = skipped = 0
        for uow_id in candidates:
            try:
                outcome = self._reclaim(uow_id, cutoff)
            except ConcurrencyError:
                outcome = None  # its holder (or another sweeper) got there first
            if outcome == S.PENDING:
                requeued += 1
            elif outcome == S.ZOMBIED_DEAD:
                dead += 1
            else:
                skipped += 1
        return SweepResult(requeued, dead, skipped)

    # ------------------------------------------------------------ reads

    def get_uow(self, uow_id: uuid.UUID) -> UOWView:
        """Return the current state of a UOW."""

        def query(session: Session) -> UOWView:
            uow = get_uow_row(session, uow_id)
            return self._steps.view(
                session, self._known.workflow(session, uow.local_workflow_id), uow
            )

        return self.read(query)

    def read(self, query: Callable[[Session], T]) -> T:
        """Run a read-only query in a session of its own, retried on a lost connection."""
        return self._runner.read(query)

    def flush_telemetry(self) -> int:
        """Write every buffered telemetry entry now; return how many were written."""
        return self.read(self.telemetry.flush_all)

    def close_telemetry(self) -> int:
        """Write every buffered entry and end this engine's log stream cleanly (at shutdown)."""
        return self.read(self.telemetry.close)

    # ------------------------------------------------------------ internals

    def _workflow_id(
        self, session: Session, instance_id: uuid.UUID, workflow: uuid.UUID | str
    ) -> uuid.UUID:
        if isinstance(workflow, uuid.UUID):
            compiled = self._known.workflow(session, workflow)
            if compiled.instance_id != instance_id:
                raise NotFoundError(f"workflow {workflow} is not in instance {instance_id}")
            return workflow
        return self._known.workflow_id(session, instance_id, workflow)

    def _held(
        self, session: Session, txn: TxnLog, actor_id: uuid.UUID, uow_id: uuid.UUID
    ) -> tuple[ActorFacts, UnitsOfWork, CompiledWorkflow, CompiledRole]:
        """Load actor and UOW, insist the actor holds it, and find the role it works in."""
        actor = self._known.actor(session, actor_id)
        uow, mine = uow_with_role_ids(session, uow_id, actor.actor_id)
        require_holder(uow, actor)
        compiled = self._known.workflow(session, uow.local_workflow_id)
        place = uow.current_interaction_id
        consumers = compiled.consumers(place) if place is not None else ()
        roles = [r for r in consumers if r.role_id in mine]
        if not roles:
            raise NotAuthorizedError(
                f"actor {actor.identity_key!r} holds no role consuming UOW {uow.uow_id}'s "
                "interaction"
            )
        txn.instance_id = uow.instance_id
        return actor, uow, compiled, roles[0]

    def _reclaim(self, uow_id: uuid.UUID, cutoff: datetime) -> str | None:
        """Re-check one sweep candidate under lock and reclaim it, in one transaction."""

        def work(session: Session, txn: TxnLog) -> str | None:
            uow = self._queue.lock_stale(session, uow_id, cutoff)
            if uow is None:
                return None
            txn.instance_id = uow.instance_id
            compiled = self._known.workflow(session, uow.local_workflow_id)
            return self._steps.reclaim(session, txn, compiled, uow)

        return self._write(work)
