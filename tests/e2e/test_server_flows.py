"""A UOW driven end to end with plain HTTP requests only, on both back ends."""

from __future__ import annotations

from pathlib import Path

import httpx
from http_world import call, served

from chameleon_workflow.testing import INVOICE_YAML


def set_up(http: httpx.Client, admin: str) -> tuple[str, str, str]:
    """Create an instance by name, import the invoice workflow, register a worker and a fixer."""
    call(http, "POST", "/instances", admin, 201, json={"name": "acme"})
    imported = http.post(
        "/workflows",
        content=INVOICE_YAML.read_text(),
        params={"instance": "acme"},
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    tokens = []
    for key, roles in (("worker", ("triage", "approval")), ("fixer", ("remediation",))):
        actor = call(
            http,
            "POST",
            "/actors",
            admin,
            201,
            json={"instance_id": "acme", "identity_key": key, "name": key, "actor_type": "HUMAN"},
        )
        for role in roles:
            call(
                http, "POST", f"/actors/{actor['actor_id']}/roles", admin, 201, json={"role": role}
            )
        tokens.append(actor["token"])
    uow = call(
        http,
        "POST",
        "/instances/acme/uows",
        tokens[0],
        201,
        json={"workflow": "invoice_approval", "attributes": {"invoice_id": "I-7", "amount": 70}},
    )
    return tokens[0], tokens[1], str(uow["id"])


def walk(http: httpx.Client, worker: str, uow_id: str) -> None:
    """Take a PENDING invoice through triage and approval to COMPLETED."""
    for role, reached in (("triage", "PENDING"), ("approval", "COMPLETED")):
        claimed = call(http, "POST", f"/roles/{role}/checkout", worker, 200)
        assert claimed["uow_id"] == uow_id
        done = call(http, "POST", f"/uows/{uow_id}/submit", worker, 200, json={})
        assert done["status"] == reached


def test_creation_to_completed(database_url: str, tmp_path: Path) -> None:
    """Created, triaged and approved over HTTP: COMPLETED, and its ledger verifies."""
    with served(database_url, tmp_path) as (server, http):
        worker, _, uow_id = set_up(http, server.admin_token)
        walk(http, worker, uow_id)
        page = call(http, "GET", f"/uows/{uow_id}/history", worker, 200)
        assert [e["new_status"] for e in page["items"]] == [
            "PENDING",
            "ACTIVE",
            "PENDING",
            "ACTIVE",
            "COMPLETED",
        ]
        report = call(http, "GET", f"/uows/{uow_id}/verify", server.admin_token, 200)
        assert (report["ok"], report["findings"]) == (True, [])


def test_failed_remediated_then_completed(database_url: str, tmp_path: Path) -> None:
    """A failed invoice is remediated by the EPSILON actor, then walks to COMPLETED."""
    with served(database_url, tmp_path) as (server, http):
        worker, fixer, uow_id = set_up(http, server.admin_token)
        call(http, "POST", "/roles/triage/checkout", worker, 200)
        failed = call(
            http, "POST", f"/uows/{uow_id}/fail", worker, 200, json={"reason": "bad vendor"}
        )
        assert (failed["status"], failed["interaction"]) == ("FAILED", "failed")
        refused = call(http, "POST", f"/uows/{uow_id}/remediate", worker, 403, json={})
        assert "does not hold role 'remediation'" in refused["detail"]
        fixed = call(
            http,
            "POST",
            f"/uows/{uow_id}/remediate",
            fixer,
            200,
            json={"attributes": {"vendor": "ACME"}, "reasoning": "vendor corrected"},
        )
        assert (fixed["status"], fixed["interaction"]) == ("PENDING", "submitted")
        assert fixed["attributes"] == {"invoice_id": "I-7", "amount": 70, "vendor": "ACME"}
        again = call(http, "POST", f"/uows/{uow_id}/remediate", fixer, 409, json={})
        assert again["type"] == "urn:chameleon:problem:invalid-transition"
        walk(http, worker, uow_id)
        history = call(http, "GET", f"/uows/{uow_id}/history", fixer, 200)["items"]
        assert [e["new_status"] for e in history] == [
            "PENDING",
            "ACTIVE",
            "FAILED",
            "FAILED",
            "PENDING",
            "ACTIVE",
            "PENDING",
            "ACTIVE",
            "COMPLETED",
        ]
        assert history[3]["changes"]["added"] == {"vendor": "ACME"}
        assert history[4]["reasoning"] == "vendor corrected"
        report = call(http, "GET", "/verify", server.admin_token, 200)
        assert (report["ok"], report["findings"]) == (True, [])
