"""The seed's ShadowLogger adapter: guard errors, decisions and transitions as log entries."""

from __future__ import annotations

from typing import Any

from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import IdLike, TelemetryEntry


class ShadowLoggerTelemetryAdapter:
    """Turn guard errors, routing decisions and transitions of one instance into log entries."""

    def __init__(self, telemetry_buffer: TelemetryBuffer, instance_id: IdLike) -> None:
        self.telemetry_buffer = telemetry_buffer
        self.instance_id = instance_id

    def _capture(
        self, ids: tuple[IdLike, ...], log_type: str, details: Any, meta: Any = None
    ) -> bool:
        uow_id, role_id, interaction_id, actor_id = ids
        entry = TelemetryEntry(
            self.instance_id, uow_id, actor_id, role_id, interaction_id, log_type, details, meta
        )
        return self.telemetry_buffer.record(entry)

    def capture_shadow_log_error(
        self,
        uow_id: IdLike,
        role_id: IdLike,
        interaction_id: IdLike,
        actor_id: IdLike,
        error_message: str,
        condition: str | None = None,
        variables: Any = None,
    ) -> bool:
        """Record an expression-evaluation error as an ERROR row; False when the buffer is full."""
        details = {"condition": condition, "error": error_message, "variables": variables}
        metadata = {"error": error_message, "source": "shadow_logger"}
        return self._capture(
            (uow_id, role_id, interaction_id, actor_id), "ERROR", details, metadata
        )

    def capture_guardian_decision(
        self,
        uow_id: IdLike,
        role_id: IdLike,
        interaction_id: IdLike,
        actor_id: IdLike,
        guardian_name: str,
        condition: str | None = None,
        decision: Any = None,
        matched_branch_index: int | None = None,
        definition_hash: str | None = None,
    ) -> bool:
        """Record a routing decision as a GUARDIAN_DECISION row; False when the buffer is full.

        ``definition_hash`` names the workflow definition whose guardian decided.
        """
        details = {
            "guardian": guardian_name,
            "condition": condition,
            "decision": decision,
            "matched_branch_index": matched_branch_index,
        }
        if definition_hash is not None:
            details["definition"] = definition_hash
        return self._capture(
            (uow_id, role_id, interaction_id, actor_id), "GUARDIAN_DECISION", details
        )

    def capture_state_transition(
        self,
        uow_id: IdLike,
        role_id: IdLike,
        interaction_id: IdLike,
        actor_id: IdLike,
        previous_status: str | None,
        new_status: str,
        reasoning: str | None = None,
    ) -> bool:
        """Record a UOW status change as a STATE_TRANSITION row; False when the buffer is full."""
        details = {"from": previous_status, "to": new_status, "reasoning": reasoning}
        return self._capture(
            (uow_id, role_id, interaction_id, actor_id), "STATE_TRANSITION", details
        )
