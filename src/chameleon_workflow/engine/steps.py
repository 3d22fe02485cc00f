"""The engine's moves inside one transaction: claim, route, fail, reclaim, remediate.

Each method works in the caller's session and hands every status change to the
persistence service; ``WorkflowEngine`` owns the transaction around them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from chameleon_workflow.config import Settings
from chameleon_workflow.engine.lookups import failed_from, system_actor_for
from chameleon_workflow.engine.txn import Transition, TxnLog
from chameleon_workflow.engine.views import UOWView, make_view
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.guard import GuardContext, ShadowLogger, check_guardians, choose_exit
from chameleon_workflow.ledger.service import UNSET, Clock, UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork, as_uuid
from chameleon_workflow.states import RoleType, UOWStatus
from chameleon_workflow.workflow.definition import DirectionalFilterGuardian
from chameleon_workflow.workflow.importer import CompiledRole, CompiledWorkflow

S = UOWStatus


@dataclass(frozen=True, slots=True)
class Move:
    """One transition to save: target status and where, by whom, why."""

    status: str
    actor_id: uuid.UUID | None
    reasoning: str
    role_id: uuid.UUID
    interaction_id: uuid.UUID | None = None
    metadata: Any = None
    holder: Any = UNSET
    retry_count: int | None = None
    touch: bool = True


class Steps:
    """Transaction-internal engine steps sharing the persistence service, clock and settings."""

    def __init__(
        self, persistence: UOWPersistenceService, clock: Clock, settings: Settings
    ) -> None:
        """Keep the collaborators every step needs."""
        self.persistence = persistence
        self.clock = clock
        self.settings = settings

    def move(self, session: Session, txn: TxnLog, uow: UnitsOfWork, move: Move) -> None:
        """Save one transition through the persistence service and note it for telemetry."""
        previous = str(uow.status)
        self.persistence.save_uow(
            session,
            uow,
            move.status,
            move.interaction_id,
            move.actor_id,
            move.reasoning,
            move.metadata,
            holder=move.holder,
            retry_count=move.retry_count,
            touch_heartbeat=move.touch,
        )
        txn.transitions.append(
            Transition(
                uow.uow_id,
                move.role_id,
                uow.current_interaction_id,
                move.actor_id,
                previous,
                move.status,
                move.reasoning,
            )
        )

    def try_claim(
        self,
        session: Session,
        txn: TxnLog,
        compiled: CompiledWorkflow,
        role: CompiledRole,
        uow: UnitsOfWork,
        actor_id: uuid.UUID,
    ) -> UOWView | None:
        """Check the inbound gates: pass → ACTIVE for the actor; reject → FAILED at EPSILON."""
        interaction_id = _place(uow)
        component = role.inbound_component(interaction_id)
        gates = [g.spec for g in component.gates] if component is not None else []
        attrs = self.persistence.get_attributes(session, uow.uow_id)
        if gates:
            context = self.context(uow, role, actor_id)
            result = check_guardians(gates, attrs, context, ShadowLogger(txn.sink))
            if not result.allowed:
                reason = f"rejected by {result.guardian_name!r}: {result.reason}"
                extra = {"guardian": result.guardian_name, "errors": list(result.errors)}
                self.to_epsilon(session, txn, compiled, uow, actor_id, role, reason, extra)
                return None
        why = f"checked out by role {role.name!r}"
        self.move(session, txn, uow, Move(S.ACTIVE, actor_id, why, role.role_id, holder=actor_id))
        return make_view(uow, compiled.interaction_name(interaction_id), attrs)

    def finish(
        self,
        session: Session,
        txn: TxnLog,
        role: CompiledRole,
        uow: UnitsOfWork,
        actor_id: uuid.UUID,
        reasoning: str | None,
    ) -> dict[str, Any]:
        """Complete the UOW at OMEGA, or route it by the role's policy; return its attributes."""
        attrs = self.persistence.get_attributes(session, uow.uow_id)
        if role.role_type == RoleType.OMEGA:
            why = reasoning or f"completed by role {role.name!r}"
            done = Move(S.COMPLETED, actor_id, why, role.role_id, holder=None)
            self.move(session, txn, uow, done)
            return attrs
        policy = role.routing_policy
        spec = policy.spec if policy is not None else None
        decision = choose_exit(
            spec if isinstance(spec, DirectionalFilterGuardian) else None,
            list(role.outbound_by_name),
            attrs,
            self.context(uow, role, actor_id),
            ShadowLogger(txn.sink),
        )
        route = {
            "role": role.name,
            "guardian": decision.guardian_name,
            "branch": decision.matched_branch_index,
            "error": decision.error,
            "definition": role.definition_hash,
        }
        why = reasoning or f"routed by {role.name!r} to {decision.next_interaction!r}"
        target = role.outbound_by_name[decision.next_interaction]
        move = Move(S.PENDING, actor_id, why, role.role_id, target, {"route": route}, None)
        self.move(session, txn, uow, move)
        return attrs

    def to_epsilon(
        self,
        session: Session,
        txn: TxnLog,
        compiled: CompiledWorkflow,
        uow: UnitsOfWork,
        actor_id: uuid.UUID,
        role: CompiledRole,
        reason: str,
        extra: dict[str, Any],
    ) -> None:
        """Fail the UOW into EPSILON's inbound queue, recording where it failed from."""
        metadata = {"failed_from": str(uow.current_interaction_id), "role": role.name, **extra}
        target = compiled.epsilon_inbound_interaction_id
        move = Move(S.FAILED, actor_id, reason, role.role_id, target, metadata, None)
        self.move(session, txn, uow, move)

    def reclaim(
        self, session: Session, txn: TxnLog, compiled: CompiledWorkflow, uow: UnitsOfWork
    ) -> str:
        """Mark a stale UOW ZOMBIED_SOFT, then re-queue it or declare it ZOMBIED_DEAD."""
        tau = compiled.role_of_type(RoleType.TAU).role_id
        actor = system_actor_for(session, tau)
        limit = self.settings.zombie_max_retries
        seen = uow.last_heartbeat_at.isoformat() if uow.last_heartbeat_at else "never"
        why = f"no heartbeat since {seen} (threshold {self.settings.zombie_threshold_s:g}s)"
        meta = {"holder": str(uow.held_by_actor_id), "last_heartbeat_at": seen}
        # The heartbeat is left as it was: it is the evidence of when the holder went quiet.
        soft = Move(S.ZOMBIED_SOFT, actor, why, tau, metadata=meta, holder=None, touch=False)
        self.move(session, txn, uow, soft)
        if uow.retry_count >= limit:
            why = f"retry limit {limit} reached"
            self.move(session, txn, uow, Move(S.ZOMBIED_DEAD, actor, why, tau, touch=False))
            return S.ZOMBIED_DEAD
        retry = uow.retry_count + 1
        why = f"re-queued after zombie (retry {retry} of {limit})"
        self.move(
            session, txn, uow, Move(S.PENDING, actor, why, tau, retry_count=retry, touch=False)
        )
        return S.PENDING

    def remediation_target(
        self,
        session: Session,
        compiled: CompiledWorkflow,
        uow: UnitsOfWork,
        to_interaction: uuid.UUID | str | None,
    ) -> tuple[uuid.UUID, uuid.UUID | None]:
        """Pick where a remediated UOW goes; return it and the interaction it failed from."""
        origin = _place(uow) if uow.status == S.ZOMBIED_DEAD else failed_from(session, uow.uow_id)
        failed_queue = compiled.epsilon_inbound_interaction_id
        if to_interaction is not None:
            return _named_target(compiled, to_interaction, failed_queue), origin
        exits = compiled.role_of_type(RoleType.EPSILON).outbound
        if len(exits) == 1:
            return exits[0].interaction_id, origin
        if origin is None or origin == failed_queue:
            raise InvalidValueError(
                f"cannot tell where UOW {uow.uow_id} failed from; pass to_interaction"
            )
        return origin, origin

    def context(self, uow: UnitsOfWork, role: CompiledRole, actor_id: uuid.UUID) -> GuardContext:
        """Describe a guard decision about this UOW, role and actor, now."""
        return GuardContext(
            uow_id=uow.uow_id,
            role_id=role.role_id,
            interaction_id=uow.current_interaction_id,
            actor_id=actor_id,
            now=self.clock(),
            created_at=uow.created_at,
            definition_hash=role.definition_hash,
        )

    def view(
        self,
        session: Session,
        compiled: CompiledWorkflow,
        uow: UnitsOfWork,
        attrs: dict[str, Any] | None = None,
    ) -> UOWView:
        """Return the UOW's current state with its attributes (read unless given)."""
        if attrs is None:
            attrs = self.persistence.get_attributes(session, uow.uow_id)
        iid = uow.current_interaction_id
        return make_view(uow, compiled.interaction_name(iid) if iid else None, attrs)


def _place(uow: UnitsOfWork) -> uuid.UUID:
    """Return the interaction a UOW is in (every engine-driven UOW is in one)."""
    if uow.current_interaction_id is None:
        raise InvalidValueError(f"UOW {uow.uow_id} is in no interaction")
    return uow.current_interaction_id


def _named_target(
    compiled: CompiledWorkflow, to_interaction: uuid.UUID | str, failed_queue: uuid.UUID
) -> uuid.UUID:
    known = dict(compiled.interaction_ids)
    target = known.get(str(to_interaction))
    if target is None:
        target = as_uuid(to_interaction, "interaction")
    if target not in known.values() or target == failed_queue:
        raise InvalidValueError(
            f"cannot remediate to {to_interaction!r}: not an interaction of workflow "
            f"{compiled.name!r} other than its failed queue"
        )
    return target
