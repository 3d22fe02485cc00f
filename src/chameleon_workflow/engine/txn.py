"""What one engine transaction holds until it commits, and how it then reaches telemetry.

A transaction that rolls back must leave no trace in the interaction log, so the
engine does not write guard events and status changes to the telemetry buffer as they
happen: it keeps them in a ``TxnLog`` and emits them, in order, once the commit has
succeeded, through the seed's ``ShadowLoggerTelemetryAdapter``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from chameleon_workflow.guard import GuardEvent
from chameleon_workflow.telemetry.adapter import ShadowLoggerTelemetryAdapter
from chameleon_workflow.telemetry.buffer import TelemetryBuffer


@dataclass(frozen=True, slots=True)
class Transition:
    """One committed status change, to be logged as a STATE_TRANSITION row."""

    uow_id: uuid.UUID
    role_id: uuid.UUID | None
    interaction_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    previous: str
    new: str
    reasoning: str | None


class PendingSink:
    """Hold guard errors and decisions until the transaction that made them commits."""

    def __init__(self) -> None:
        """Start with nothing held."""
        self.events: list[GuardEvent] = []

    def record(self, event: GuardEvent) -> bool:
        """Keep one event; holding never fails."""
        self.events.append(event)
        return True

    def replay(self, adapter: ShadowLoggerTelemetryAdapter) -> None:
        """Forward every event held, in order, to the telemetry adapter."""
        for event in self.events:
            capture_guard_event(adapter, event)


def capture_guard_event(adapter: ShadowLoggerTelemetryAdapter, event: GuardEvent) -> bool:
    """Hand one guard event to the adapter's capture method for its kind."""
    if event.kind == "evaluation_error":
        return adapter.capture_shadow_log_error(
            uow_id=event.uow_id,
            role_id=event.role_id,
            interaction_id=event.interaction_id,
            actor_id=event.actor_id,
            error_message=event.error_message,
            condition=event.condition,
            variables=event.variables,
        )
    return adapter.capture_guardian_decision(
        uow_id=event.uow_id,
        role_id=event.role_id,
        interaction_id=event.interaction_id,
        actor_id=event.actor_id,
        guardian_name=event.guardian_name,
        condition=event.condition,
        decision=event.decision,
        matched_branch_index=event.matched_branch_index,
        definition_hash=event.definition_hash,
    )


@dataclass
class TxnLog:
    """What one engine transaction did, emitted to telemetry once it has committed."""

    instance_id: uuid.UUID | None = None
    transitions: list[Transition] = field(default_factory=list)
    sink: PendingSink = field(default_factory=PendingSink)

    def emit(self, buffer: TelemetryBuffer) -> None:
        """Record the guard events, then the status changes, in the telemetry buffer."""
        if self.instance_id is None:
            return
        adapter = ShadowLoggerTelemetryAdapter(buffer, self.instance_id)
        self.sink.replay(adapter)
        for t in self.transitions:
            adapter.capture_state_transition(
                t.uow_id,
                t.role_id,
                t.interaction_id,
                t.actor_id,
                t.previous or None,
                t.new,
                t.reasoning,
            )
