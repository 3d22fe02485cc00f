"""The oversight routes over real HTTP, both back ends: a purchase order a pilot approves."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest

from chameleon_workflow.testing import ServerProcess

PURCHASE_ORDER = (files("chameleon_workflow") / "examples" / "purchase_order.yaml").read_text()
ROLES = ("split", "check_line", "approval", "buyer")


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """Run the server on the test's database; stop it with SIGTERM afterwards."""
    process = ServerProcess(database_url, tmp_path / "server.log").start()
    yield process
    assert process.stop_cleanly(), process.log()
    assert "Traceback" not in process.log()


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _actor(
    client: httpx.Client, admin: dict[str, str], instance: str, kind: str, roles: tuple[str, ...]
) -> dict[str, str]:
    """Register an actor of this type with these roles; return its authorization header."""
    body = {"instance_id": instance, "identity_key": kind, "name": kind, "actor_type": kind}
    created = _ok(client.post("/actors", json=body, headers=admin), 201)
    for role in roles:
        url = f"/actors/{created['actor_id']}/roles"
        _ok(client.post(url, json={"role": role}, headers=admin), 201)
    return {"Authorization": f"Bearer {created['token']}"}


def _step(
    client: httpx.Client,
    headers: dict[str, str],
    role: str,
    *,
    claim_only: bool = False,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check out one UOW at a role (and submit it unless ``claim_only``); return it."""
    claimed: dict[str, Any] = _ok(client.post(f"/roles/{role}/checkout", headers=headers))
    if claim_only:
        return claimed
    body = {"attributes": attributes} if attributes else {}
    url = f"/uows/{claimed['uow_id']}/submit"
    done: dict[str, Any] = _ok(client.post(url, json=body, headers=headers))
    return done


def test_pilot_routes_end_to_end(server: ServerProcess) -> None:
    """Queue, approve, pause/resume, ask/answer and the problems a non-pilot gets."""
    admin = server.admin()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        instance = _ok(client.post("/instances", json={"name": "po"}, headers=admin), 201)["id"]
        _ok(client.post("/workflows", json={"instance": instance, "yaml": PURCHASE_ORDER},
                        headers=admin), 201)  # fmt: skip
        agent = _actor(client, admin, instance, "AI_AGENT", ROLES)
        pilot = _actor(client, admin, instance, "PILOT", ())
        order = {"po_number": "PO-7", "currency": "EUR",
                 "line_items": [{"sku": "A", "quantity": 1, "unit_price": 9000.0},
                                {"sku": "B", "quantity": 1, "unit_price": 3000.0}]}  # fmt: skip
        body = {"workflow": "purchase_order", "attributes": order}
        uow = _ok(client.post(f"/instances/{instance}/uows", json=body, headers=agent), 201)["id"]
        _step(client, agent, "split")
        for _ in range(2):
            line = _step(client, agent, "check_line", claim_only=True)
            total = line["attributes"]["line_item"]["unit_price"]
            _ok(client.post(f"/uows/{line['uow_id']}/submit",
                            json={"attributes": {"line_total": total}}, headers=agent))  # fmt: skip
            _step(client, agent, "approval")
        held = _step(client, agent, "approval", attributes={"total": 12000.0})
        assert held["status"] == "PENDING_PILOT_APPROVAL"
        problem = client.get(f"/instances/{instance}/pilot-queue", headers=agent)
        assert problem.status_code == 403
        assert problem.headers["content-type"] == "application/problem+json"
        (queued,) = _ok(client.get(f"/instances/{instance}/pilot-queue", headers=pilot))
        assert (queued["uow_id"], queued["rule"]) == (uow, "large_order")
        no_reason = client.post(f"/uows/{uow}/approve", json={"reasoning": ""}, headers=pilot)
        assert no_reason.status_code == 422
        done = _ok(client.post(f"/uows/{uow}/approve", json={"reasoning": "ok by CFO"},
                               headers=pilot))  # fmt: skip
        assert done["status"] == "COMPLETED"
        history = _ok(client.get(f"/uows/{uow}/history", headers=admin))["items"]
        assert history[-1]["event_type"] == "PILOT_APPROVAL"

        paused = _ok(client.post(f"/instances/{instance}/pause",
                                 json={"reasoning": "audit"}, headers=pilot))  # fmt: skip
        assert paused["status"] == "PAUSED"
        refused = client.post("/roles/split/checkout", headers=agent)
        assert refused.status_code == 409
        assert refused.json()["type"].endswith("instance-paused")
        _ok(client.post(f"/instances/{instance}/resume", json={"reasoning": "done"},
                        headers=pilot))  # fmt: skip

        second = _ok(client.post(f"/instances/{instance}/uows", json=body, headers=agent), 201)
        claimed = _step(client, agent, "split", claim_only=True)
        assert claimed["uow_id"] == second["id"]
        question = {"question": "Split by warehouse?"}
        url = f"/uows/{second['id']}/clarification"
        asked = _ok(client.post(url, json=question, headers=agent))
        assert asked["status"] == "PENDING_PILOT_APPROVAL"
        back = _ok(client.post(f"/uows/{second['id']}/answer", json={"answer": "No."},
                               headers=pilot))  # fmt: skip
        assert back["attributes"]["clarification"]["answer"] == "No."
        verified = _ok(client.get("/verify", headers=admin))
        assert verified["findings"] == []
