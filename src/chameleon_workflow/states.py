"""The vocabulary of the engine: UOW statuses with the one table of legal transitions, and
the other enumerations the schema, the workflow and telemetry share."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from chameleon_workflow.errors import InvalidTransitionError


class UOWStatus(enum.StrEnum):
    """Statuses a unit of work can be in."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    PENDING_PILOT_APPROVAL = "PENDING_PILOT_APPROVAL"
    ZOMBIED_SOFT = "ZOMBIED_SOFT"
    ZOMBIED_DEAD = "ZOMBIED_DEAD"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PAUSED = "PAUSED"
    FAILED_SECURITY_BREACH = "FAILED_SECURITY_BREACH"
    ARCHIVED = "ARCHIVED"


S = UOWStatus

#: Legal ``previous -> new`` moves. A save that keeps the status (for example a move to
#: another interaction, or an attribute change) is not a status transition and is always
#: allowed except from a final status. FAILED_SECURITY_BREACH is reachable from every
#: non-final status because drift can be discovered at any time.
TRANSITIONS: Mapping[UOWStatus, frozenset[UOWStatus]] = {
    S.PENDING: frozenset({S.ACTIVE, S.PAUSED, S.FAILED, S.ARCHIVED}),
    S.ACTIVE: frozenset(
        {S.PENDING, S.PENDING_PILOT_APPROVAL, S.COMPLETED, S.FAILED, S.ZOMBIED_SOFT, S.PAUSED}
    ),
    S.PENDING_PILOT_APPROVAL: frozenset({S.PENDING, S.ACTIVE, S.COMPLETED, S.FAILED}),
    S.ZOMBIED_SOFT: frozenset({S.PENDING, S.ZOMBIED_DEAD, S.FAILED}),
    S.ZOMBIED_DEAD: frozenset({S.PENDING, S.ARCHIVED}),
    S.FAILED: frozenset({S.PENDING, S.ARCHIVED}),
    S.PAUSED: frozenset({S.PENDING, S.ACTIVE, S.ARCHIVED}),
    S.COMPLETED: frozenset({S.ARCHIVED}),
    S.FAILED_SECURITY_BREACH: frozenset(),
    S.ARCHIVED: frozenset(),
}

FINAL_STATUSES: frozenset[UOWStatus] = frozenset({S.ARCHIVED, S.FAILED_SECURITY_BREACH})

_BREACH_SOURCES = frozenset(set(UOWStatus) - FINAL_STATUSES)


def is_legal(previous: UOWStatus, new: UOWStatus) -> bool:
    """Tell whether ``previous -> new`` is allowed (same status counts as no transition)."""
    if previous in FINAL_STATUSES:
        return False
    if previous == new:
        return True
    if new is S.FAILED_SECURITY_BREACH:
        return previous in _BREACH_SOURCES
    return new in TRANSITIONS[previous]


def check_transition(previous: str, new: str) -> None:
    """Raise InvalidTransitionError naming both states unless the move is legal."""
    try:
        prev_s, new_s = UOWStatus(previous), UOWStatus(new)
    except ValueError:
        raise InvalidTransitionError(previous, new) from None
    if not is_legal(prev_s, new_s):
        raise InvalidTransitionError(previous, new)


class InstanceStatus(enum.StrEnum):
    """Lifecycle of an instance context."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ARCHIVED = "ARCHIVED"


class RoleType(enum.StrEnum):
    """Kinds of roles in a workflow."""

    ALPHA = "ALPHA"
    BETA = "BETA"
    OMEGA = "OMEGA"
    EPSILON = "EPSILON"
    TAU = "TAU"


class Direction(enum.StrEnum):
    """Which way a component connects a role to an interaction."""

    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class GuardianType(enum.StrEnum):
    """Kinds of guardians that stand on a component."""

    PASS_THRU = "PASS_THRU"  # noqa: S105 - a guardian kind, not a password
    CRITERIA_GATE = "CRITERIA_GATE"
    TTL_CHECK = "TTL_CHECK"
    COMPOSITE = "COMPOSITE"
    CERBERUS = "CERBERUS"
    DIRECTIONAL_FILTER = "DIRECTIONAL_FILTER"


class ActorType(enum.StrEnum):
    """Kinds of actors."""

    HUMAN = "HUMAN"
    AI_AGENT = "AI_AGENT"
    SYSTEM = "SYSTEM"
    PILOT = "PILOT"


class HistoryEvent(enum.StrEnum):
    """What a history row records."""

    CREATED = "CREATED"
    TRANSITION = "TRANSITION"
    ATTRIBUTES = "ATTRIBUTES"
    SECURITY_BREACH = "SECURITY_BREACH"
    DECOMPOSITION = "DECOMPOSITION"
    JOIN = "JOIN"
    PILOT_APPROVAL = "PILOT_APPROVAL"
    PILOT_REJECTION = "PILOT_REJECTION"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    CLARIFICATION = "CLARIFICATION"
    WAIVER = "WAIVER"


class LogType(enum.StrEnum):
    """Kinds of interaction-log rows."""

    INTERACTION = "INTERACTION"
    TELEMETRY = "TELEMETRY"
    ERROR = "ERROR"
    GUARDIAN_DECISION = "GUARDIAN_DECISION"
    STATE_TRANSITION = "STATE_TRANSITION"
    TELEMETRY_LOSS = "TELEMETRY_LOSS"
    #: The first row of a writer's stream: who writes it (host, process, writer name).
    STREAM_OPENED = "STREAM_OPENED"
    #: The last row of a stream, written when its writer shuts down cleanly.
    STREAM_CLOSED = "STREAM_CLOSED"


class AdminAction(enum.StrEnum):
    """What an admin-ledger row records."""

    INSTANCE_CREATED = "INSTANCE_CREATED"
    WORKFLOW_IMPORTED = "WORKFLOW_IMPORTED"
    ACTOR_REGISTERED = "ACTOR_REGISTERED"
    ROLE_GRANTED = "ROLE_GRANTED"
    ROLE_REVOKED = "ROLE_REVOKED"
    TOKEN_ISSUED = "TOKEN_ISSUED"  # noqa: S105 - an action name, not a secret
    TOKEN_REVOKED = "TOKEN_REVOKED"  # noqa: S105 - an action name, not a secret
    UOW_REMEDIATED = "UOW_REMEDIATED"
    INSTANCE_PAUSED = "INSTANCE_PAUSED"
    INSTANCE_RESUMED = "INSTANCE_RESUMED"
    CHECKPOINT_SEALED = "CHECKPOINT_SEALED"
    LEDGER_ARCHIVED = "LEDGER_ARCHIVED"
    LEDGER_RESTORED = "LEDGER_RESTORED"
    VALUE_REDACTED = "VALUE_REDACTED"
