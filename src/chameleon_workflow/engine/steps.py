"""The engine's moves inside one transaction: claim, route, fail, reclaim, remediate.

Each method works in the caller's session and hands every status change to the
persistence service; ``WorkflowEngine`` owns the transaction around them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from chameleon_workflow.config import Settings
from chameleon_workflow.engine.lookups import failed_from, system_actor_for, waived_guardians
from chameleon_workflow.engine.txn import Transition, TxnLog
from chameleon_workflow.engine.views import UOWView, make_view
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.guard import GuardContext, ShadowLogger, check_guardians, choose_exit
from chameleon_workflow.ledger.service import UNSET, Clock, UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork, as_uuid
from chameleon_workflow.states import HistoryEvent, RoleType, UOWStatus
from chameleon_workflow.workflow.definition import DirectionalFilterGuardian, HighRiskRule
from chameleon_workflow.workflow.importer import CompiledRole, CompiledWorkflow

S = UOWStatus
E = HistoryEvent
#: Statuses in which a child counts as returned to its parent's join.
JOIN_FINAL = frozenset({S.COMPLETED, S.FAILED, S.ZOMBIED_DEAD, S.FAILED_SECURITY_BREACH})
#: Make a decomposing role's children; return what the parent's history row says of them.
Decomposer = Callable[
    [Session, TxnLog, CompiledRole, UnitsOfWork, uuid.UUID | None, dict[str, Any]],
    dict[str, Any],
]
#: Called when a child UOW reaches a JOIN_FINAL status, inside the same transaction.
ChildHook = Callable[[Session, TxnLog, UnitsOfWork], None]


@dataclass(frozen=True, slots=True)
class Intent:
    """Where a finished step sends a UOW: its new status, interaction and the route taken."""

    status: str
    target: uuid.UUID | None = None
    route: dict[str, Any] | None = None
    reason: str | None = None

    def as_json(self, role: str) -> dict[str, Any]:
        """Return the intent as recorded when a pilot must approve it first."""
        target = str(self.target) if self.target is not None else None
        return {"role": role, "status": self.status, "to": target, "route": self.route}


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
    event: HistoryEvent = E.TRANSITION


class Steps:
    """Transaction-internal engine steps sharing the persistence service, clock and settings."""

    def __init__(
        self, persistence: UOWPersistenceService, clock: Clock, settings: Settings
    ) -> None:
        """Keep the collaborators every step needs."""
        self.persistence = persistence
        self.clock = clock
        self.settings = settings
        #: Set by the engine: fan-out (``fanout.FanOut``) plugs in here.
        self.decomposer: Decomposer | None = None
        self.on_child_final: ChildHook | None = None

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
            event=move.event,
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
        if (
            uow.parent_id is not None
            and move.status in JOIN_FINAL
            and previous not in JOIN_FINAL
            and self.on_child_final is not None
        ):
            self.on_child_final(session, txn, uow)

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
        attrs = self.persistence.attributes_for_save(session, uow)
        waived: set[str] = set()
        if gates:
            context = self.context(uow, role, actor_id)
            result = check_guardians(gates, attrs, context, ShadowLogger(txn.sink))
            if not result.allowed and result.guardian_name in (
                waived := waived_guardians(session, uow.uow_id, interaction_id)
            ):
                rest = [g for g in gates if g.name not in waived]
                result = check_guardians(rest, attrs, context, ShadowLogger(txn.sink))
            if not result.allowed:
                reason = f"rejected by {result.guardian_name!r}: {result.reason}"
                extra = {"guardian": result.guardian_name, "errors": list(result.errors)}
                self.to_epsilon(session, txn, compiled, uow, actor_id, role, reason, extra)
                return None
        why = f"checked out by role {role.name!r}"
        note = {"waived": sorted(waived)} if waived else None
        claim = Move(S.ACTIVE, actor_id, why, role.role_id, None, note, actor_id)
        self.move(session, txn, uow, claim)
        return make_view(uow, compiled.interaction_name(interaction_id), attrs)

    def finish(
        self,
        session: Session,
        txn: TxnLog,
        compiled: CompiledWorkflow,
        role: CompiledRole,
        uow: UnitsOfWork,
        actor_id: uuid.UUID,
        reasoning: str | None,
    ) -> dict[str, Any]:
        """Complete the UOW at OMEGA, or route it by the role's policy; return its attributes.

        A move a high-risk rule names is held for a pilot (PENDING_PILOT_APPROVAL) instead.
        """
        attrs = self.persistence.attributes_for_save(session, uow)
        context = self.context(uow, role, actor_id)
        if role.role_type == RoleType.OMEGA:
            intent = Intent(S.COMPLETED)
        else:
            policy = role.routing_policy
            spec = policy.spec if policy is not None else None
            decision = choose_exit(
                spec if isinstance(spec, DirectionalFilterGuardian) else None,
                list(role.outbound_by_name),
                attrs,
                context,
                ShadowLogger(txn.sink),
            )
            route = {
                "role": role.name,
                "guardian": decision.guardian_name,
                "branch": decision.matched_branch_index,
                "error": decision.error,
                "definition": role.definition_hash,
            }
            target = role.outbound_by_name[decision.next_interaction]
            intent = Intent(S.PENDING, target, route, decision.next_interaction)
        if self.hold_for_pilot(session, txn, compiled, role, uow, actor_id, intent, attrs):
            return attrs
        self.carry_out(session, txn, role, uow, actor_id, reasoning, intent, attrs)
        return attrs

    def hold_for_pilot(
        self,
        session: Session,
        txn: TxnLog,
        compiled: CompiledWorkflow,
        role: CompiledRole,
        uow: UnitsOfWork,
        actor_id: uuid.UUID,
        intent: Intent,
        attrs: dict[str, Any],
    ) -> bool:
        """Park the UOW for a pilot when a high-risk rule names this move; tell whether it did."""
        rule = self.risky(compiled, role, uow, actor_id, intent.status, attrs, txn)
        if rule is None:
            return False
        why = f"held for a pilot's approval by high-risk rule {rule.name!r}"
        parked = {"parked": {"rule": rule.name, **intent.as_json(role.name)}}
        if intent.reason is not None and intent.status == S.FAILED:
            parked["parked"]["reason"] = intent.reason
        move = Move(S.PENDING_PILOT_APPROVAL, actor_id, why, role.role_id, None, parked, None)
        self.move(session, txn, uow, move)
        return True

    def risky(
        self,
        compiled: CompiledWorkflow,
        role: CompiledRole,
        uow: UnitsOfWork,
        actor_id: uuid.UUID,
        status: str,
        attrs: dict[str, Any],
        txn: TxnLog,
    ) -> HighRiskRule | None:
        """Return the first high-risk rule this move matches (a failing condition matches)."""
        for rule in compiled.high_risk:
            if rule.role != role.name or (rule.status is not None and rule.status != status):
                continue
            if rule.applies_to not in ("any", "root" if uow.parent_id is None else "child"):
                continue
            if rule.condition is None:
                return rule
            context = self.context(uow, role, actor_id)
            found = ShadowLogger(txn.sink).evaluate(rule.condition, attrs, context)
            if found.failed or found.value:
                return rule
        return None

    def carry_out(
        self,
        session: Session,
        txn: TxnLog,
        role: CompiledRole,
        uow: UnitsOfWork,
        actor_id: uuid.UUID | None,
        reasoning: str | None,
        intent: Intent,
        attrs: dict[str, Any],
        event: HistoryEvent = E.TRANSITION,
        note: dict[str, Any] | None = None,
    ) -> None:
        """Make the move a finished step (or a pilot's approval of it) decided."""
        metadata: dict[str, Any] = dict(note or {})
        if intent.status == S.COMPLETED:
            why = reasoning or f"completed by role {role.name!r}"
            done = Move(S.COMPLETED, actor_id, why, role.role_id, None, metadata or None, None)
            self.move(session, txn, uow, replace(done, event=event))
            return
        if role.decompose is not None and self.decomposer is not None:
            metadata["decomposition"] = self.decomposer(session, txn, role, uow, actor_id, attrs)
            event = E.DECOMPOSITION if event == E.TRANSITION else event
        metadata["route"] = intent.route
        why = reasoning or f"routed by {role.name!r} to {intent.reason!r}"
        move = Move(S.PENDING, actor_id, why, role.role_id, intent.target, metadata, None)
        self.move(session, txn, uow, replace(move, event=event))

    def to_epsilon(
        self,
        session: Session,
        txn: TxnLog,
        compiled: CompiledWorkflow,
        uow: UnitsOfWork,
        actor_id: uuid.UUID | None,
        role: CompiledRole,
        reason: str,
        extra: dict[str, Any],
        event: HistoryEvent = E.TRANSITION,
    ) -> None:
        """Fail the UOW into EPSILON's inbound queue, recording where it failed from."""
        metadata = {"failed_from": str(uow.current_interaction_id), "role": role.name, **extra}
        target = compiled.epsilon_inbound_interaction_id
        move = Move(S.FAILED, actor_id, reason, role.role_id, target, metadata, None, event=event)
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

    def context(
        self, uow: UnitsOfWork, role: CompiledRole, actor_id: uuid.UUID | None
    ) -> GuardContext:
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
