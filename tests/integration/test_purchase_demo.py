"""The purchase-order demo on both back ends: every path taken, verification clean."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.purchase_demo import event_counts, run_purchase_demo


def test_purchase_demo_runs_every_path_and_verifies(session_factory: sessionmaker[Session]) -> None:
    """Split, join, discontinued lines, a waived credit note, held orders, pause, a question."""
    calls: list[tuple[int, int]] = []
    summary = run_purchase_demo(
        session_factory, orders=8, seed=7, progress=lambda d, t: calls.append((d, t))
    )
    assert summary.verification.ok, summary.verification.findings
    assert calls[-1] == (8, 8)
    events = event_counts(session_factory, summary.instance_id)
    assert events["DECOMPOSITION"] == events["JOIN"] == 8
    for kind in ("PILOT_APPROVAL", "PAUSE", "RESUME", "CLARIFICATION", "WAIVER"):
        assert events.get(kind, 0) >= 1, kind
    assert summary.uows_by_status["FAILED"] >= 1  # a discontinued line
    again = run_purchase_demo(session_factory, orders=8, seed=7)
    assert dict(again.uows_by_status) == dict(summary.uows_by_status)
    assert again.transitions == summary.transitions
