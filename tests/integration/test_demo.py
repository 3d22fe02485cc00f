"""The demo drives invoices through every path and ends with a clean verification."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.demo import run_demo


def test_demo_summary(session_factory: sessionmaker[Session]) -> None:
    """Forty invoices: completions, failures, condition errors, one zombie, a clean audit."""
    calls: list[tuple[int, int]] = []
    summary = run_demo(session_factory, uows=40, seed=7, progress=lambda d, t: calls.append((d, t)))
    assert summary.verification.ok
    assert summary.verification.uows_checked == 40
    assert dict(summary.uows_by_status) == {"COMPLETED": 39, "FAILED": 1}
    assert summary.zombies_reclaimed == 1
    assert dict(summary.logs_by_type) == {
        "ERROR": 6,
        "GUARDIAN_DECISION": 153,
        "STATE_TRANSITION": 238,
    }
    assert summary.transitions == 253
    assert summary.transitions_per_second > 0
    assert calls[-1] == (40, 40)


def test_demo_is_repeatable(session_factory: sessionmaker[Session]) -> None:
    """The same seed gives the same statuses, transitions and log counts."""
    first = run_demo(session_factory, uows=25, seed=3)
    second = run_demo(session_factory, uows=25, seed=3)
    assert dict(first.uows_by_status) == dict(second.uows_by_status)
    assert first.transitions == second.transitions
    assert dict(first.logs_by_type) == dict(second.logs_by_type)
    assert first.instance_id != second.instance_id
