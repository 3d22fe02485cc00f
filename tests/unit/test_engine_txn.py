"""Guard events held by an engine transaction reach the telemetry adapter's seed methods."""

from __future__ import annotations

import uuid
from typing import Any

from chameleon_workflow.engine.txn import PendingSink, capture_guard_event
from chameleon_workflow.guard import GuardContext, ShadowLogger, route
from chameleon_workflow.workflow.definition import RoutingPolicy

UOW, ROLE, INTERACTION, ACTOR = (uuid.UUID(int=n) for n in range(1, 5))
CTX = GuardContext(
    uow_id=UOW, role_id=ROLE, interaction_id=INTERACTION, actor_id=ACTOR, definition_hash="d" * 64
)
IDS = {"uow_id": UOW, "role_id": ROLE, "interaction_id": INTERACTION, "actor_id": ACTOR}
POLICY = RoutingPolicy.model_validate(
    {
        "branches": [{"condition": "amount > 10000", "next_interaction": "review"}],
        "default": "approve",
        "on_error": "review",
    }
)


class AdapterCalls:
    """Stands in for ShadowLoggerTelemetryAdapter: keeps each capture call's arguments."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def capture_shadow_log_error(self, **kwargs: Any) -> bool:
        """Keep the call."""
        self.calls.append(("capture_shadow_log_error", kwargs))
        return self.answer

    def capture_guardian_decision(self, **kwargs: Any) -> bool:
        """Keep the call."""
        self.calls.append(("capture_guardian_decision", kwargs))
        return self.answer


def test_replay_calls_the_seed_methods_in_order() -> None:
    """An error then a decision are replayed, in order, with the seed methods' parameters."""
    sink = PendingSink()
    route(POLICY, {"amount": "x"}, CTX, ShadowLogger(sink), "router")
    adapter = AdapterCalls()
    sink.replay(adapter)
    message = "TypeError: '>' not supported between instances of 'str' and 'int'"
    assert adapter.calls == [
        (
            "capture_shadow_log_error",
            {
                **IDS,
                "error_message": message,
                "condition": "amount > 10000",
                "variables": {"amount": "x"},
            },
        ),
        (
            "capture_guardian_decision",
            {
                **IDS,
                "guardian_name": "router",
                "condition": "amount > 10000",
                "decision": "review",
                "matched_branch_index": -2,
                "definition_hash": "d" * 64,
            },
        ),
    ]


def test_capture_returns_the_adapters_answer() -> None:
    """A refused capture (buffer full) comes back as False."""
    sink = PendingSink()
    route(POLICY, {"amount": 1}, CTX, ShadowLogger(sink), "router")
    assert [capture_guard_event(AdapterCalls(False), e) for e in sink.events] == [False]
