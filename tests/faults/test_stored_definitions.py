"""A workflow definition edited in the database is a ChameleonError, never a raw pydantic error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from faultkit import Desk
from sqlalchemy import Engine, update

from chameleon_workflow.definitions import stored_definitions
from chameleon_workflow.errors import CorruptWorkflowError
from chameleon_workflow.models import LocalGuardian, LocalWorkflow
from chameleon_workflow.testing import ServerProcess, append_only_disabled, setup_invoice


def _break_router(engine: Engine) -> None:
    """Give the amount router a branch whose condition is a number, behind the engine's back.

    As the tables' owner would: with the append-only triggers lifted, and the definition's
    hash recomputed to match, so that the engine gets as far as reading the guardian (an
    edit that leaves the hash alone is refused earlier, see test_definitions.py).
    """
    broken = {
        "branches": [{"condition": 5, "next_interaction": "needs_review"}],
        "default": "ready_for_approval",
    }
    with append_only_disabled(engine), engine.begin() as conn:
        conn.execute(
            update(LocalGuardian).where(LocalGuardian.name == "amount_router").values(config=broken)
        )
        for workflow, digest in list(stored_definitions(conn)):
            key = LocalWorkflow.local_workflow_id == workflow["local_workflow_id"]
            conn.execute(update(LocalWorkflow).where(key).values(definition_hash=digest))


def test_edited_guardian_config_is_a_corrupt_workflow_error(desk: Desk, engine: Engine) -> None:
    """Loading a workflow whose stored guardian no longer validates names the guardian."""
    _break_router(engine)
    fresh = type(desk.engine)(desk.factory, telemetry=desk.engine.telemetry)  # nothing cached
    with pytest.raises(CorruptWorkflowError) as caught:
        fresh.instantiate(desk.instance_id, "invoice_approval", {"amount": 1})
    with desk.factory() as session:
        router = session.query(LocalGuardian).filter_by(name="amount_router").one()
    assert caught.value.problems == [
        f"stored workflow 'invoice_approval' ({router.local_workflow_id}): guardian "
        "'amount_router': DIRECTIONAL_FILTER.config.branches.0.condition: "
        "Input should be a valid string"
    ]


def test_edited_definition_over_http_is_a_500_problem_not_a_crash(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """The API answers a corrupt stored workflow with a 500 problem naming it, and goes on."""
    server = ServerProcess(database_url, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            cast = setup_invoice(client, server.admin(), actors=1)
            _break_router(engine)
            body = {"workflow": "invoice_approval", "attributes": {"invoice_id": "C", "amount": 1}}
            response = client.post(
                f"/instances/{cast.instance_id}/uows", json=body, headers=server.admin()
            )
            health = client.get("/health")
    finally:
        assert server.stop_cleanly(), server.log()
    assert response.status_code == 500
    problem = response.json()
    assert (problem["type"], problem["detail"]) == (
        "urn:chameleon:problem:corrupt-workflow",
        "a workflow stored in the database cannot be read: 1 problem(s)",
    )
    assert problem["problems"][0].endswith(
        "guardian 'amount_router': DIRECTIONAL_FILTER.config.branches.0.condition: "
        "Input should be a valid string"
    )
    assert health.status_code == 200
