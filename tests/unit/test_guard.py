"""The semantic guard: gates, routing policies and the ShadowLogger, with a fake sink."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.guard import (
    DEFAULT_BRANCH,
    ON_ERROR_BRANCH,
    ONLY_EXIT,
    GuardContext,
    GuardEvent,
    GuardResult,
    RoutingDecision,
    ShadowLogger,
    check_guardian,
    check_guardians,
    choose_exit,
    route,
)
from chameleon_workflow.testing import RecordingSink as FakeSink
from chameleon_workflow.workflow.definition import (
    DirectionalFilterGuardian,
    GuardianSpec,
    RoutingPolicy,
)
from chameleon_workflow.workflow.loading import load_workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "chameleon_workflow" / "examples"
UOW, ROLE, INTERACTION, ACTOR = (uuid.UUID(int=n) for n in range(1, 5))
CTX = GuardContext(uow_id=UOW, role_id=ROLE, interaction_id=INTERACTION, actor_id=ACTOR)
IDS = (UOW, ROLE, INTERACTION, ACTOR)
NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
_GUARDIAN: TypeAdapter[GuardianSpec] = TypeAdapter(GuardianSpec)


class ExplodingSink(FakeSink):
    """A sink whose every call fails."""

    def record(self, event: GuardEvent) -> bool:
        """Fail."""
        raise RuntimeError("telemetry down")


def _decided(guardian: str, condition: str, decision: str, index: int | None) -> GuardEvent:
    """Return the decision event a sink receives about CTX."""
    return GuardEvent(
        "decision",
        *IDS,
        condition,
        guardian_name=guardian,
        decision=decision,
        matched_branch_index=index,
    )


def _failed(message: str, condition: str, variables: dict[str, Any]) -> GuardEvent:
    """Return the evaluation-error event a sink receives about CTX."""
    return GuardEvent(
        "evaluation_error", *IDS, condition, error_message=message, variables=variables
    )


def _guardian(raw: dict[str, Any]) -> GuardianSpec:
    return _GUARDIAN.validate_python(raw)


POLICY = RoutingPolicy.model_validate(
    {
        "branches": [
            {"condition": "amount > 10000", "next_interaction": "review"},
            {"condition": "amount > 5000", "next_interaction": "second_look"},
        ],
        "default": "approve",
        "on_error": "review",
    }
)


@pytest.fixture
def sink() -> FakeSink:
    """Give each test a fresh fake sink."""
    return FakeSink()


@pytest.fixture
def shadow(sink: FakeSink) -> ShadowLogger:
    """Give each test a ShadowLogger writing to the fake sink."""
    return ShadowLogger(sink)


def test_first_matching_branch_wins(sink: FakeSink, shadow: ShadowLogger) -> None:
    """When several branches hold, the first in order decides, and the decision is recorded."""
    decision = route(POLICY, {"amount": 20000}, CTX, shadow, "router")
    assert decision == RoutingDecision("review", 0, False, None, "router")
    assert sink.decisions == [_decided("router", "amount > 10000", "review", 0)]
    assert sink.errors == []


def test_later_branch_matches(sink: FakeSink, shadow: ShadowLogger) -> None:
    """A branch further down is taken when the earlier ones do not hold."""
    decision = route(POLICY, {"amount": 6000}, CTX, shadow, "router")
    assert decision == RoutingDecision("second_look", 1, False, None, "router")
    assert sink.decisions == [_decided("router", "amount > 5000", "second_look", 1)]


def test_no_match_takes_default(sink: FakeSink, shadow: ShadowLogger) -> None:
    """When no branch holds, the default is taken with branch index -1."""
    decision = route(POLICY, {"amount": 10}, CTX, shadow, "router")
    assert decision == RoutingDecision("approve", DEFAULT_BRANCH, True, None, "router")
    assert sink.decisions == [_decided("router", "", "approve", -1)]


def test_error_takes_on_error_and_is_captured(sink: FakeSink, shadow: ShadowLogger) -> None:
    """A string amount makes the condition fail: on_error is taken and the error is captured."""
    variables = {"amount": "12000", "vendor": "ACME"}
    decision = route(POLICY, variables, CTX, shadow, "router")
    message = "TypeError: '>' not supported between instances of 'str' and 'int'"
    assert decision == RoutingDecision(
        "review", ON_ERROR_BRANCH, False, f"branch 0: {message}", "router"
    )
    assert sink.errors == [_failed(message, "amount > 10000", variables)]
    assert sink.decisions == [_decided("router", "amount > 10000", "review", -2)]
    assert (shadow.error_count, shadow.decision_count, shadow.sink_failures) == (1, 1, 0)


def test_error_without_on_error_takes_default(sink: FakeSink, shadow: ShadowLogger) -> None:
    """Without on_error, a failing branch falls back to the default and the error is kept."""
    policy = POLICY.model_copy(update={"on_error": None})
    decision = route(policy, {}, CTX, shadow, "router")
    assert decision == RoutingDecision(
        "approve", DEFAULT_BRANCH, True, "branch 0: undefined name 'amount'", "router"
    )
    assert sink.errors == [_failed("undefined name 'amount'", "amount > 10000", {})]
    assert sink.decisions == [_decided("router", "amount > 10000", "approve", -1)]


def test_invoice_example_sends_malformed_invoices_to_review(shadow: ShadowLogger) -> None:
    """In the invoice example a missing or textual amount lands in manual review."""
    policy = load_workflow(EXAMPLES / "invoice_approval.yaml").routing_policy("triage")
    assert isinstance(policy, DirectionalFilterGuardian)
    outcomes = [
        choose_exit(policy, ["needs_review", "ready_for_approval"], v, CTX, shadow).next_interaction
        for v in ({"amount": 50}, {"amount": 50000}, {"amount": "50"}, {"vendor": "x"})
    ]
    assert outcomes == ["ready_for_approval", "needs_review", "needs_review", "needs_review"]
    assert shadow.error_count == 2


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_invoice_policy_routes_every_amount_by_threshold(amount: int) -> None:
    """For every integer amount, review iff amount > 10000 (branch 0), else the default."""
    policy = load_workflow(EXAMPLES / "invoice_approval.yaml").routing_policy("triage")
    assert policy is not None
    decision = route(policy.config, {"amount": amount}, CTX, ShadowLogger(), policy.name)
    expected = ("needs_review", 0) if amount > 10000 else ("ready_for_approval", -1)
    assert (decision.next_interaction, decision.matched_branch_index) == expected


def test_single_exit_routes_without_policy(sink: FakeSink, shadow: ShadowLogger) -> None:
    """A role with one exit and no policy goes there, and the decision is still recorded."""
    decision = choose_exit(None, ["done"], {}, CTX, shadow)
    assert decision == RoutingDecision("done", DEFAULT_BRANCH, True, None, ONLY_EXIT)
    assert sink.decisions == [_decided("(only exit)", "", "done", -1)]


def test_several_exits_without_policy_is_a_clear_error(shadow: ShadowLogger) -> None:
    """Routing with several exits and no policy is refused (validation prevents it)."""
    with pytest.raises(InvalidValueError, match="cannot route: 2 exits and no routing policy"):
        choose_exit(None, ["a", "b"], {}, CTX, shadow)


def test_pass_thru_allows(sink: FakeSink, shadow: ShadowLogger) -> None:
    """PASS_THRU lets everything through and records ALLOW."""
    result = check_guardian(_guardian({"name": "open", "type": "PASS_THRU"}), {}, CTX, shadow)
    assert result == GuardResult(True, "open", "passes through")
    assert sink.decisions == [_decided("open", "", "ALLOW", None)]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"score": 9}, GuardResult(True, "gate", "condition holds")),
        ({"score": 1}, GuardResult(False, "gate", "score too low")),
        (
            {},
            GuardResult(
                False,
                "gate",
                "condition error: undefined name 'score'",
                ("undefined name 'score'",),
            ),
        ),
    ],
)
def test_criteria_gate(
    variables: dict[str, Any], expected: GuardResult, shadow: ShadowLogger
) -> None:
    """CRITERIA_GATE allows when its condition holds; rejects when not, or when it fails."""
    gate = _guardian(
        {
            "name": "gate",
            "type": "CRITERIA_GATE",
            "config": {"condition": "score > 5", "reason": "score too low"},
        }
    )
    assert check_guardian(gate, variables, CTX, shadow) == expected


def test_criteria_gate_default_reason(sink: FakeSink, shadow: ShadowLogger) -> None:
    """Without a configured reason, the rejection names the condition."""
    gate = _guardian({"name": "g", "type": "CRITERIA_GATE", "config": {"condition": "ok"}})
    assert check_guardian(gate, {"ok": False}, CTX, shadow) == GuardResult(
        False, "g", "condition not met: ok"
    )
    assert sink.decisions == [_decided("g", "ok", "REJECT", None)]


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(seconds=60), GuardResult(True, "ttl", "age 60s within 3600s")),
        (timedelta(hours=2), GuardResult(False, "ttl", "expired: age 7200s exceeds 3600s")),
    ],
)
def test_ttl_check(age: timedelta, expected: GuardResult, shadow: ShadowLogger) -> None:
    """TTL_CHECK compares the UOW's age (now - created_at) with max_age_seconds."""
    ttl = _guardian({"name": "ttl", "type": "TTL_CHECK", "config": {"max_age_seconds": 3600}})
    context = GuardContext(now=NOW, created_at=NOW - age)
    assert check_guardian(ttl, {}, context, shadow) == expected


def test_ttl_check_without_clock_rejects(shadow: ShadowLogger) -> None:
    """TTL_CHECK cannot decide without the times, so it rejects with that reason."""
    ttl = _guardian({"name": "ttl", "type": "TTL_CHECK", "config": {"max_age_seconds": 1}})
    assert check_guardian(ttl, {}, CTX, shadow) == GuardResult(
        False, "ttl", "TTL_CHECK needs the current time and created_at"
    )


CERBERUS = {"name": "dog", "type": "CERBERUS", "config": {"heads": ["a > 0", "b", "c < 10"]}}


def test_cerberus_allows_only_when_every_head_is_true(shadow: ShadowLogger) -> None:
    """CERBERUS lets through only when all heads are exactly True."""
    assert check_guardian(_guardian(CERBERUS), {"a": 1, "b": True, "c": 2}, CTX, shadow) == (
        GuardResult(True, "dog", "all heads hold")
    )


def test_cerberus_is_strict_and_names_every_failing_head(
    sink: FakeSink, shadow: ShadowLogger
) -> None:
    """A truthy non-True head fails, and every failing head (errors included) is named."""
    result = check_guardian(_guardian(CERBERUS), {"a": 0, "b": "yes"}, CTX, shadow)
    assert result == GuardResult(
        False,
        "dog",
        "heads not met: a > 0; b; c < 10 (error: undefined name 'c')",
        ("undefined name 'c'",),
    )
    assert sink.errors == [_failed("undefined name 'c'", "c < 10", {"a": 0, "b": "yes"})]
    assert sink.decisions == [_decided("dog", "(a > 0) and (b) and (c < 10)", "REJECT", None)]


COMPOSITE_CHILDREN = [
    {"name": "big", "type": "CRITERIA_GATE", "config": {"condition": "amount > 100"}},
    {"name": "vip", "type": "CRITERIA_GATE", "config": {"condition": "vip"}},
]


@pytest.mark.parametrize(
    ("mode", "variables", "allowed", "reason"),
    [
        ("all", {"amount": 500, "vip": True}, True, "all of the children allow"),
        ("all", {"amount": 5, "vip": True}, False, "big: condition not met: amount > 100"),
        ("any", {"amount": 5, "vip": True}, True, "any of the children allow"),
        (
            "any",
            {"amount": 5, "vip": False},
            False,
            "big: condition not met: amount > 100; vip: condition not met: vip",
        ),
    ],
)
def test_composite(
    mode: str,
    variables: dict[str, Any],
    allowed: bool,
    reason: str,
    sink: FakeSink,
    shadow: ShadowLogger,
) -> None:
    """COMPOSITE combines its children with all/any, and records one decision for itself."""
    composite = _guardian(
        {
            "name": "combo",
            "type": "COMPOSITE",
            "config": {"mode": mode, "guardians": COMPOSITE_CHILDREN},
        }
    )
    assert check_guardian(composite, variables, CTX, shadow) == GuardResult(
        allowed, "combo", reason
    )
    assert sink.decisions == [
        _decided("combo", f"{mode}(big, vip)", "ALLOW" if allowed else "REJECT", None)
    ]


def test_directional_filter_never_blocks(shadow: ShadowLogger) -> None:
    """A routing policy is not a gate: checked as one it lets the UOW through."""
    router = _guardian({"name": "r", "type": "DIRECTIONAL_FILTER", "config": {"default": "x"}})
    assert check_guardian(router, {}, CTX, shadow) == GuardResult(True, "r", "passes through")


def test_check_guardians_stops_at_first_rejection(sink: FakeSink, shadow: ShadowLogger) -> None:
    """Gates run in order; the first rejection is returned and later gates are not run."""
    gates = [
        _guardian({"name": "router", "type": "DIRECTIONAL_FILTER", "config": {"default": "x"}}),
        _guardian({"name": "first", "type": "CRITERIA_GATE", "config": {"condition": "False"}}),
        _guardian({"name": "second", "type": "PASS_THRU"}),
    ]
    assert check_guardians(gates, {}, CTX, shadow) == GuardResult(
        False, "first", "condition not met: False"
    )
    assert [d.guardian_name for d in sink.decisions] == ["first"]


def test_check_guardians_with_no_gate_allows(shadow: ShadowLogger) -> None:
    """A component without guardians lets the UOW through."""
    assert check_guardians([], {}, CTX, shadow) == GuardResult(True, "", "no guardian")


def test_shadow_logger_survives_a_failing_sink() -> None:
    """A sink that raises never breaks routing; each failed capture is counted."""
    shadow = ShadowLogger(ExplodingSink())
    decision = route(POLICY, {"amount": "x"}, CTX, shadow, "r")
    assert decision.next_interaction == "review"
    assert (shadow.error_count, shadow.decision_count, shadow.sink_failures) == (1, 1, 2)


def test_shadow_logger_counts_refused_captures() -> None:
    """A sink that returns False (buffer full) is counted as a failure, not an exception."""
    shadow = ShadowLogger(FakeSink(accept=False))
    route(POLICY, {"amount": 1}, CTX, shadow, "r")
    assert shadow.sink_failures == 1


def test_shadow_logger_without_sink_still_evaluates() -> None:
    """With no sink, evaluation and counting still work."""
    shadow = ShadowLogger()
    outcome = shadow.evaluate("1 / x", {"x": 0}, CTX)
    assert (outcome.value, outcome.error, outcome.failed) == (
        None,
        "ZeroDivisionError: division by zero",
        True,
    )
    assert shadow.evaluate("x + 1", {"x": 1}, CTX).value == 2
    assert shadow.error_count == 1
