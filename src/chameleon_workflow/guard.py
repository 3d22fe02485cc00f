"""The semantic guard: guardians that let UOWs through, routing policies that pick exits.

Nothing here raises because a condition failed. Every evaluation goes through a
``ShadowLogger``, which turns a failing condition (undefined name, type error, division
by zero, ...) into a value, forwards it to a sink as a ``GuardEvent`` (telemetry makes it
an ERROR row), and lets the caller decide: a gate then rejects, a routing policy takes
``on_error`` (or ``default``). Every decision is forwarded too (GUARDIAN_DECISION rows).

``matched_branch_index`` in decisions: the index of the winning branch (0-based), or
``DEFAULT_BRANCH`` (-1) when no branch held, or ``ON_ERROR_BRANCH`` (-2) when a branch
failed and ``on_error`` was taken; gate decisions carry ``None``.

Truthiness: a gate's or branch's condition passes when its value is truthy as in Python;
CERBERUS is stricter and wants every head to be exactly ``True``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from chameleon_workflow.errors import ExpressionError, InvalidValueError
from chameleon_workflow.expressions import evaluate
from chameleon_workflow.workflow.definition import (
    CerberusGuardian,
    CompositeGuardian,
    CriteriaGateGuardian,
    DirectionalFilterGuardian,
    GuardianSpec,
    PassThruGuardian,
    RoutingPolicy,
    TtlCheckGuardian,
)

DEFAULT_BRANCH = -1
ON_ERROR_BRANCH = -2
ALLOW = "ALLOW"
REJECT = "REJECT"
#: Guardian name recorded when a role with a single exit routes without a policy.
ONLY_EXIT = "(only exit)"


#: What a guard event reports: a condition that failed to evaluate, or a decision taken.
GuardEventKind = Literal["evaluation_error", "decision"]


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """One evaluation error or decision of the guard, about one UOW, role and actor.

    An evaluation error carries ``error_message`` and the ``variables`` it was evaluated
    with; a decision carries ``guardian_name``, ``decision`` and ``matched_branch_index``.
    The fields of the other kind keep their defaults.
    """

    kind: GuardEventKind
    uow_id: uuid.UUID | None
    role_id: uuid.UUID | None
    interaction_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    condition: str
    error_message: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)
    guardian_name: str = ""
    decision: str = ""
    matched_branch_index: int | None = None
    definition_hash: str | None = None


class DecisionSink(Protocol):
    """Where the guard's evaluation errors and decisions go."""

    def record(self, event: GuardEvent) -> bool:
        """Keep one event; False when it could not be kept."""


@dataclass(frozen=True, slots=True)
class GuardContext:
    """Which UOW, role, interaction and actor a decision is about, and the clock for TTLs."""

    uow_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None
    interaction_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    now: datetime | None = None
    created_at: datetime | None = None
    #: The hash of the workflow definition whose guardians decide (``definitions``).
    definition_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one condition: its value, or the error it raised."""

    value: Any
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Tell whether evaluating the condition raised an error."""
        return self.error is not None


@dataclass(frozen=True, slots=True)
class GuardResult:
    """Whether a guardian lets a UOW through, and why not."""

    allowed: bool
    guardian_name: str
    reason: str
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Where a routing policy sends a UOW (see the module doc for the branch index)."""

    next_interaction: str
    matched_branch_index: int
    used_default: bool
    error: str | None = None
    guardian_name: str = ""


class ShadowLogger:
    """Evaluate conditions without ever raising; forward errors and decisions to a sink."""

    def __init__(self, sink: DecisionSink | None = None) -> None:
        self.sink = sink
        self.error_count = 0
        self.decision_count = 0
        #: Captures the sink refused (buffer full) or failed on; telemetry never blocks a UOW.
        self.sink_failures = 0

    def evaluate(
        self, condition: str, variables: Mapping[str, Any], context: GuardContext
    ) -> Evaluation:
        """Evaluate ``condition``; on failure capture the error and return it as a value."""
        try:
            return Evaluation(evaluate(condition, variables))
        except ExpressionError as exc:
            message = str(exc)
        self.error_count += 1
        self._forward(
            GuardEvent(
                "evaluation_error",
                context.uow_id,
                context.role_id,
                context.interaction_id,
                context.actor_id,
                condition,
                error_message=message,
                variables=dict(variables),
            )
        )
        return Evaluation(None, message)

    def record_decision(
        self,
        context: GuardContext,
        guardian_name: str,
        condition: str,
        decision: str,
        matched_branch_index: int | None,
    ) -> None:
        """Forward one decision to the sink."""
        self.decision_count += 1
        self._forward(
            GuardEvent(
                "decision",
                context.uow_id,
                context.role_id,
                context.interaction_id,
                context.actor_id,
                condition,
                guardian_name=guardian_name,
                decision=decision,
                matched_branch_index=matched_branch_index,
                definition_hash=context.definition_hash,
            )
        )

    def _forward(self, event: GuardEvent) -> None:
        if self.sink is None:
            return
        try:
            recorded = bool(self.sink.record(event))
        except Exception:  # noqa: BLE001 - a broken sink must not stop routing; it is counted
            recorded = False
        if not recorded:
            self.sink_failures += 1


def check_guardian(
    guardian: GuardianSpec,
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
) -> GuardResult:
    """Decide whether ``guardian`` lets the UOW through, and record the decision."""
    result = _gate(guardian, variables, context, shadow)
    shadow.record_decision(
        context,
        guardian.name,
        _describe(guardian),
        ALLOW if result.allowed else REJECT,
        None,
    )
    return result


def check_guardians(
    guardians: Iterable[GuardianSpec],
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
) -> GuardResult:
    """Check gates in order; the first rejection wins, no gate at all lets the UOW through."""
    last = GuardResult(True, "", "no guardian")
    for guardian in guardians:
        if isinstance(guardian, DirectionalFilterGuardian):
            continue  # a routing policy picks an exit; it never blocks
        last = check_guardian(guardian, variables, context, shadow)
        if not last.allowed:
            return last
    return last


def _describe(guardian: GuardianSpec) -> str:
    if isinstance(guardian, CriteriaGateGuardian):
        return guardian.config.condition
    if isinstance(guardian, CerberusGuardian):
        return " and ".join(f"({head})" for head in guardian.config.heads)
    if isinstance(guardian, TtlCheckGuardian):
        return f"age <= {guardian.config.max_age_seconds:g}s"
    if isinstance(guardian, CompositeGuardian):
        return f"{guardian.config.mode}({', '.join(g.name for g in guardian.config.guardians)})"
    return ""


def _gate(
    guardian: GuardianSpec,
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
) -> GuardResult:
    name = guardian.name
    if isinstance(guardian, PassThruGuardian | DirectionalFilterGuardian):
        return GuardResult(True, name, "passes through")
    if isinstance(guardian, CriteriaGateGuardian):
        return _criteria(guardian, variables, context, shadow)
    if isinstance(guardian, TtlCheckGuardian):
        return _ttl(guardian, context)
    if isinstance(guardian, CerberusGuardian):
        return _cerberus(guardian, variables, context, shadow)
    return _composite(guardian, variables, context, shadow)


def _criteria(
    guardian: CriteriaGateGuardian,
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
) -> GuardResult:
    name = guardian.name
    outcome = shadow.evaluate(guardian.config.condition, variables, context)
    if outcome.error is not None:
        return GuardResult(False, name, f"condition error: {outcome.error}", (outcome.error,))
    if outcome.value:
        return GuardResult(True, name, "condition holds")
    reason = guardian.config.reason or f"condition not met: {guardian.config.condition}"
    return GuardResult(False, name, reason)


def _ttl(guardian: TtlCheckGuardian, context: GuardContext) -> GuardResult:
    limit = guardian.config.max_age_seconds
    if context.now is None or context.created_at is None:
        return GuardResult(False, guardian.name, "TTL_CHECK needs the current time and created_at")
    age = (context.now - context.created_at).total_seconds()
    if age <= limit:
        return GuardResult(True, guardian.name, f"age {age:g}s within {limit:g}s")
    return GuardResult(False, guardian.name, f"expired: age {age:g}s exceeds {limit:g}s")


def _cerberus(
    guardian: CerberusGuardian,
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
) -> GuardResult:
    # Every head is evaluated, so the reason names all that bite, not only the first.
    failing, errors = [], []
    for head in guardian.config.heads:
        outcome = shadow.evaluate(head, variables, context)
        if outcome.error is not None:
            errors.append(outcome.error)
            failing.append(f"{head} (error: {outcome.error})")
        elif outcome.value is not True:
            failing.append(head)
    if not failing:
        return GuardResult(True, guardian.name, "all heads hold")
    return GuardResult(False, guardian.name, "heads not met: " + "; ".join(failing), tuple(errors))


def _composite(
    guardian: CompositeGuardian,
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
) -> GuardResult:
    results = []
    for child in guardian.config.guardians:
        result = _gate(child, variables, context, shadow)
        results.append(result)
        if result.allowed == (guardian.config.mode == "any"):
            break  # all: the first rejection decides; any: the first acceptance decides
    allowed = (
        all(r.allowed for r in results) if guardian.config.mode == "all" else results[-1].allowed
    )
    errors = tuple(e for r in results for e in r.errors)
    if allowed:
        return GuardResult(True, guardian.name, f"{guardian.config.mode} of the children allow")
    reasons = "; ".join(f"{r.guardian_name}: {r.reason}" for r in results if not r.allowed)
    return GuardResult(False, guardian.name, reasons, errors)


def route(
    policy: RoutingPolicy,
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
    guardian_name: str = "routing_policy",
) -> RoutingDecision:
    """Pick the next interaction: first branch that holds, else default; errors -> on_error."""
    decision, condition = _decide(policy, variables, context, shadow, guardian_name)
    shadow.record_decision(
        context, guardian_name, condition, decision.next_interaction, decision.matched_branch_index
    )
    return decision


def _decide(
    policy: RoutingPolicy,
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
    guardian_name: str,
) -> tuple[RoutingDecision, str]:
    """Return the decision and the condition that decided it ("" for the default)."""
    for index, branch in enumerate(policy.branches):
        outcome = shadow.evaluate(branch.condition, variables, context)
        if outcome.error is not None:
            # Later branches were written assuming this one was decided; stop here.
            error = f"branch {index}: {outcome.error}"
            if policy.on_error is not None:
                target, taken, used_default = policy.on_error, ON_ERROR_BRANCH, False
            else:
                target, taken, used_default = policy.default, DEFAULT_BRANCH, True
            return RoutingDecision(
                target, taken, used_default, error, guardian_name
            ), branch.condition
        if outcome.value:
            decision = RoutingDecision(branch.next_interaction, index, False, None, guardian_name)
            return decision, branch.condition
    return RoutingDecision(policy.default, DEFAULT_BRANCH, True, None, guardian_name), ""


def choose_exit(
    policy: DirectionalFilterGuardian | None,
    exits: Sequence[str],
    variables: Mapping[str, Any],
    context: GuardContext,
    shadow: ShadowLogger,
) -> RoutingDecision:
    """Route a submitted UOW out of a role: through its policy, or to its only exit."""
    if policy is not None:
        return route(policy.config, variables, context, shadow, policy.name)
    if len(exits) != 1:
        raise InvalidValueError(f"cannot route: {len(exits)} exits and no routing policy")
    shadow.record_decision(context, ONLY_EXIT, "", exits[0], DEFAULT_BRANCH)
    return RoutingDecision(exits[0], DEFAULT_BRANCH, True, None, ONLY_EXIT)
