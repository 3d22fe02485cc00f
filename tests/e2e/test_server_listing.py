"""The list and read routes: what each caller sees, filters, cursor paging, names or ids."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
from http_world import AUDITOR_TOKEN, call, served, walk_pages

from chameleon_workflow.testing import Cast, setup_invoice


def invoice(http: httpx.Client, cast: Cast, amount: Any, invoice_id: str = "I-1") -> str:
    """Instantiate an invoice through the instance's name-or-id route; return its UOW id."""
    body = {
        "workflow": "invoice_approval",
        "attributes": {"invoice_id": invoice_id, "amount": amount},
    }
    path = f"/instances/{cast.instance_id}/uows"
    return str(call(http, "POST", path, cast.tokens[0], 201, json=body)["id"])


def two_instances(http: httpx.Client, admin: str) -> tuple[Cast, Cast, str, str]:
    """Set up two invoice instances with one actor each; return them and their names."""
    header = {"Authorization": f"Bearer {admin}"}
    first, second = setup_invoice(http, header, actors=1), setup_invoice(http, header, actors=1)
    names = [
        call(http, "GET", f"/instances/{c.instance_id}", admin, 200)["name"]
        for c in (first, second)
    ]
    return first, second, names[0], names[1]


def test_instances_workflows_and_actors(database_url: str, tmp_path: Path) -> None:
    """Admin and auditor list everything, an actor its own instance; names and ids both work."""
    with served(database_url, tmp_path) as (server, http):
        admin = server.admin_token
        first, second, first_name, second_name = two_instances(http, admin)
        mine = first.tokens[0]
        for token in (admin, AUDITOR_TOKEN):
            pages = walk_pages(http, "/instances", token, limit=1)
            assert [len(p) for p in pages] == [1, 1]
            assert [p[0]["instance_id"] for p in pages] == [first.instance_id, second.instance_id]
        own = call(http, "GET", "/instances", mine, 200)
        assert [i["name"] for i in own["items"]] == [first_name]
        by_name = call(http, "GET", f"/instances/{first_name}", mine, 200)
        assert by_name == call(http, "GET", f"/instances/{first.instance_id}", mine, 200)
        assert set(by_name) == {"instance_id", "name", "description", "created_at"}
        other = call(http, "GET", f"/instances/{second_name}", mine, 403)
        assert second.instance_id not in other["detail"]
        call(http, "GET", "/instances/nowhere", admin, 404)

        workflows = call(http, "GET", "/workflows", admin, 200, params={"instance": first_name})
        (workflow,) = workflows["items"]
        assert (workflow["name"], workflow["version"], workflow["instance_id"]) == (
            "invoice_approval",
            "1",
            first.instance_id,
        )
        assert len(workflow["definition_hash"]) == 64
        ambiguous = call(http, "GET", "/workflows/invoice_approval", admin, 422)
        assert "several instances" in ambiguous["detail"]
        detail = call(http, "GET", "/workflows/invoice_approval", mine, 200)
        assert detail == call(http, "GET", f"/workflows/{workflow['workflow_id']}", admin, 200)
        assert [(r["name"], r["role_type"]) for r in detail["roles"]] == [
            ("approval", "OMEGA"),
            ("intake", "ALPHA"),
            ("manual_review", "BETA"),
            ("reaper", "TAU"),
            ("remediation", "EPSILON"),
            ("triage", "BETA"),
        ]
        assert [i["name"] for i in detail["interactions"]] == [
            "failed",
            "needs_review",
            "ready_for_approval",
            "submitted",
        ]
        others = call(http, "GET", "/workflows", mine, 403, params={"instance": second_name})
        assert second.instance_id not in others["detail"]
        assert len(call(http, "GET", "/workflows", mine, 200)["items"]) == 1

        actors = call(
            http, "GET", "/actors", AUDITOR_TOKEN, 200, params={"instance": first.instance_id}
        )
        (actor,) = actors["items"]
        assert actor["actor_id"] == first.actor_ids[0]
        assert [r["name"] for r in actor["roles"]] == ["approval", "triage"]
        role_ids = {r["name"]: r["role_id"] for r in detail["roles"]}
        assert [r["role_id"] for r in actor["roles"]] == [role_ids["approval"], role_ids["triage"]]
        assert (actor["has_token"], actor["actor_type"], actor["identity_key"]) == (
            True,
            "AI_AGENT",
            "worker-0",
        )
        assert call(http, "GET", f"/actors/{first.actor_ids[0]}", mine, 200) == actor
        stranger = call(http, "GET", f"/actors/{second.actor_ids[0]}", mine, 403)
        assert second.instance_id not in stranger["detail"]
        assert [a["actor_id"] for a in call(http, "GET", "/actors", mine, 200)["items"]] == [
            first.actor_ids[0]
        ]


def test_uow_filters_and_paging(database_url: str, tmp_path: Path) -> None:
    """UOWs filter by status, workflow, attribute (JSON or text) and time, and page by cursor."""
    with served(database_url, tmp_path) as (server, http):
        admin = server.admin_token
        first, second, first_name, _ = two_instances(http, admin)
        small, large, text_amount = (
            invoice(http, first, 50),
            invoice(http, first, 50_000, "I-2"),
            invoice(http, first, "50", "I-3"),
        )
        elsewhere = invoice(http, second, 50)
        call(http, "POST", "/roles/triage/checkout", first.tokens[0], 200)  # claims `small`

        def ids(token: str, **params: Any) -> list[str]:
            return [
                u["uow_id"] for page in walk_pages(http, "/uows", token, **params) for u in page
            ]

        assert ids(admin) == [small, large, text_amount, elsewhere]
        assert ids(first.tokens[0]) == [small, large, text_amount]
        assert ids(admin, instance=first_name, limit=2) == [small, large, text_amount]
        assert [len(p) for p in walk_pages(http, "/uows", admin, limit=2)] == [2, 2]
        assert ids(admin, status="ACTIVE") == [small]
        assert ids(admin, status=["ACTIVE", "pending"], instance=first_name) == [
            small,
            large,
            text_amount,
        ]
        assert ids(admin, workflow="invoice_approval", instance=first_name) == [
            small,
            large,
            text_amount,
        ]
        assert ids(admin, attribute="amount=50") == [small, elsewhere]
        assert ids(admin, attribute='amount="50"') == [text_amount]
        assert ids(admin, attribute="invoice_id=I-2") == [large]
        assert ids(admin, attribute=["invoice_id=I-1", "amount=50.0"], limit=1) == [
            small,
            elsewhere,
        ]
        assert ids(admin, attribute="missing=1") == []
        assert ids(admin, since="2999-01-01T00:00:00Z") == []
        assert ids(admin, until="2000-01-01T00:00:00Z") == []
        assert ids(admin, since="2000-01-01T00:00:00+00:00", status="ACTIVE") == [small]
        page = call(http, "GET", "/uows", admin, 200, params={"status": "ACTIVE"})
        (uow,) = page["items"]
        assert (uow["interaction"], uow["attributes"], uow["held_by"]) == (
            "submitted",
            {"invoice_id": "I-1", "amount": 50},
            first.actor_ids[0],
        )
        for bad in (
            {"status": "DONE"},
            {"cursor": "nonsense"},
            {"limit": 501},
            {"attribute": "novalue"},
        ):
            problem = call(http, "GET", "/uows", admin, 422, params=bad)
            assert problem["type"] == "urn:chameleon:problem:invalid-value"
        call(http, "GET", "/uows", admin, 404, params={"workflow": "nope"})


def test_history_pages_carry_ids_hashes_and_links(database_url: str, tmp_path: Path) -> None:
    """History pages chain: each row's previous state hash is the one before it, ids and all."""
    with served(database_url, tmp_path) as (server, http):
        first, _, _, _ = two_instances(http, server.admin_token)
        token = first.tokens[0]
        uow = invoice(http, first, 50)
        for role in ("triage", "approval"):
            claimed = call(http, "POST", f"/roles/{role}/checkout", token, 200)
            call(http, "POST", f"/uows/{claimed['uow_id']}/submit", token, 200, json={})
        pages = walk_pages(http, f"/uows/{uow}/history", AUDITOR_TOKEN, limit=2)
        assert [len(p) for p in pages] == [2, 2, 1]
        rows = [row for page in pages for row in page]
        assert [r["sequence"] for r in rows] == [1, 2, 3, 4, 5]
        assert len({r["history_id"] for r in rows}) == 5
        assert rows[0]["previous_state_hash"] is None
        for before, after in itertools.pairwise(rows):
            assert after["previous_state_hash"] == before["new_state_hash"]
        assert {r["link_version"] for r in rows} == {2}
        assert {r["actor_id"] for r in rows} == {first.actor_ids[0]}
        workflow = call(http, "GET", "/workflows", token, 200)["items"][0]
        assert {r["definition_hash"] for r in rows} == {workflow["definition_hash"]}
        detail = call(http, "GET", f"/workflows/{workflow['workflow_id']}", token, 200)
        role_ids = {r["name"]: r["role_id"] for r in detail["roles"]}
        assert [r["role_id"] for r in rows] == [
            role_ids["intake"],  # created under ALPHA
            role_ids["triage"],  # checked out from `submitted`, which only triage consumes
            role_ids["triage"],  # routed: the row's metadata names the role
            role_ids["approval"],
            role_ids["approval"],
        ]
        assert (rows[2]["new_interaction"], rows[2]["new_interaction_id"]) == (
            "ready_for_approval",
            {i["name"]: i["interaction_id"] for i in detail["interactions"]}["ready_for_approval"],
        )
        assert rows[0]["changes"]["added"] == {"invoice_id": "I-1", "amount": 50}
        call(http, "GET", f"/uows/{uow}/history", token, 422, params={"cursor": "x"})
