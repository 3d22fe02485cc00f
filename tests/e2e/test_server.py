"""The HTTP server as a client uses it: a real uvicorn process on loopback, both back ends."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from chameleon_workflow.db import normalize_url
from chameleon_workflow.testing import INVOICE_YAML, ServerProcess, setup_invoice

PROBLEM = "application/problem+json"
FAST = {
    "CHAMELEON_TELEMETRY_FLUSH_INTERVAL_S": "0.1",
    "CHAMELEON_SWEEP_INTERVAL_S": "0.2",
    "CHAMELEON_ZOMBIE_THRESHOLD_S": "600",
}


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """Run the server on the test's database; stop it with SIGTERM afterwards."""
    process = ServerProcess(database_url, tmp_path / "server.log", FAST).start()
    yield process
    assert process.stop_cleanly(), process.log()
    assert "Traceback" not in process.log()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    """Give an HTTP client on the server's base URL."""
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    """Return an authorization header."""
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, detail_part: str = "") -> dict[str, Any]:
    """Assert an error response is a problem document with the status and detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert set(body) >= {"type", "title", "status", "detail"}
    assert detail_part in body["detail"]
    assert "Traceback" not in response.text
    return body


def count_rows(database_url: str, table: str) -> int:
    """Count a table's rows straight from the database."""
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def new_invoice(client: httpx.Client, instance: str, token: str, amount: Any) -> str:
    """Instantiate an invoice and return its UOW id."""
    body = {"workflow": "invoice_approval", "attributes": {"invoice_id": "I-1", "amount": amount}}
    response = client.post(f"/instances/{instance}/uows", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def step(client: httpx.Client, token: str, role: str, **submit: Any) -> dict[str, Any]:
    """Check out one UOW at a role and submit it; return the submitted UOW."""
    claimed = client.post(f"/roles/{role}/checkout", headers=bearer(token))
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "ACTIVE"
    uow_id = claimed.json()["uow_id"]
    done = client.post(f"/uows/{uow_id}/submit", json=submit, headers=bearer(token))
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


def test_invoice_walk(server: ServerProcess, client: httpx.Client) -> None:
    """A small invoice goes triage -> approval, a large one through manual review; both verify."""
    cast = setup_invoice(client, server.admin(), actors=1)
    token = cast.tokens[0]
    admin = server.admin()
    role = client.post(
        f"/actors/{cast.actor_ids[0]}/roles",
        json={"role": "manual_review"},
        headers=admin,
    )
    assert role.status_code == 201
    small = new_invoice(client, cast.instance_id, token, 50)
    assert step(client, token, "triage")["interaction"] == "ready_for_approval"
    assert step(client, token, "approval")["status"] == "COMPLETED"
    large = new_invoice(client, cast.instance_id, token, 50_000)
    assert step(client, token, "triage")["interaction"] == "needs_review"
    step(client, token, "manual_review", reasoning="checked by hand")
    assert step(client, token, "approval")["status"] == "COMPLETED"
    assert client.post("/roles/approval/checkout", headers=bearer(token)).status_code == 204

    page = client.get(f"/uows/{large}/history", headers=bearer(token)).json()
    assert page["next_cursor"] is None
    timeline = page["items"]
    assert [e["sequence"] for e in timeline] == [1, 2, 3, 4, 5, 6, 7]
    assert [e["new_status"] for e in timeline] == [
        "PENDING",
        "ACTIVE",
        "PENDING",
        "ACTIVE",
        "PENDING",
        "ACTIVE",
        "COMPLETED",
    ]
    assert timeline[0]["changes"]["added"] == {"invoice_id": "I-1", "amount": 50_000}
    assert timeline[4]["reasoning"] == "checked by hand"
    assert all(len(e["chain_hash"]) == 64 for e in timeline)
    detail = client.get(f"/uows/{small}", headers=bearer(token)).json()
    assert (detail["status"], detail["held_by"]) == ("COMPLETED", None)
    for path in (f"/uows/{small}/verify", f"/uows/{large}/verify", "/verify"):
        report = client.get(path, headers=admin).json()
        assert (report["ok"], report["findings"]) == (True, [])
    assert client.get("/verify", headers=admin).json()["history_rows_checked"] == 12


def test_tokens_are_stored_only_as_hashes(
    server: ServerProcess, client: httpx.Client, database_url: str
) -> None:
    """The database holds the SHA-256 of each token and never the token itself."""
    cast = setup_invoice(client, server.admin(), actors=2)
    engine = create_engine(normalize_url(database_url))
    with engine.connect() as conn:
        stored = set(conn.execute(text("SELECT token_hash FROM local_actors")).scalars())
    engine.dispose()
    assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in cast.tokens}
    assert not stored & set(cast.tokens)


def test_authentication_and_authorization(
    server: ServerProcess, client: httpx.Client, database_url: str
) -> None:
    """Missing/invalid tokens get 401, others' UOWs and admin routes 403; nothing is written."""
    cast = setup_invoice(client, server.admin(), actors=2)
    mine, other = cast.tokens
    uow = new_invoice(client, cast.instance_id, mine, 50)
    assert client.post("/roles/triage/checkout", headers=bearer(mine)).status_code == 200
    history_before = count_rows(database_url, "uow_history")

    missing = assert_problem(client.post(f"/uows/{uow}/submit", json={}), 401, "missing")
    assert missing["type"] == "urn:chameleon:problem:not-authenticated"
    invalid = client.post(f"/uows/{uow}/submit", json={}, headers=bearer("chm_forged"))
    assert_problem(invalid, 401, "invalid bearer token")
    assert invalid.headers["www-authenticate"] == "Bearer"
    stolen = client.post(f"/uows/{uow}/submit", json={}, headers=bearer(other))
    assert_problem(stolen, 403, "does not hold UOW")
    assert_problem(
        client.post(f"/uows/{uow}/fail", json={"reason": "x"}, headers=bearer(other)), 403
    )
    assert_problem(client.post(f"/uows/{uow}/heartbeat", headers=bearer(other)), 403)
    assert_problem(client.get("/verify", headers=bearer(mine)), 403, "admin token")
    assert_problem(client.get("/logs", headers=bearer(mine)), 403, "admin token")
    assert_problem(client.post("/instances", json={"name": "x"}, headers=bearer(mine)), 403)
    no_role = client.post("/roles/manual_review/checkout", headers=bearer(mine))
    assert_problem(no_role, 403, "does not hold role 'manual_review'")
    admin_checkout = client.post("/roles/triage/checkout", headers=server.admin())
    assert_problem(admin_checkout, 403, "actor token")

    assert count_rows(database_url, "uow_history") == history_before
    assert client.get(f"/uows/{uow}", headers=bearer(mine)).json()["held_by"] is not None


def test_errors_map_to_problem_documents(server: ServerProcess, client: httpx.Client) -> None:
    """Unknown ids 404, duplicates 409, invalid input and workflows 422, wrong media 415."""
    admin = server.admin()
    cast = setup_invoice(client, admin, actors=1)
    missing = uuid.uuid4()
    assert_problem(client.get(f"/uows/{missing}", headers=admin), 404, str(missing))
    assert_problem(client.get(f"/uows/{missing}/verify", headers=admin), 404)
    assert_problem(client.get("/uows/not-a-uuid", headers=admin), 422, "uow_id")
    duplicate = client.post(
        "/workflows",
        json={"instance": cast.instance_id, "yaml": INVOICE_YAML.read_text()},
        headers=admin,
    )
    assert assert_problem(duplicate, 409)["problems"] == [
        f"workflow 'invoice_approval' already exists in instance {cast.instance_id}"
    ]
    same_name = client.post("/instances", json={"name": "dup"}, headers=admin)
    assert same_name.status_code == 201
    assert_problem(client.post("/instances", json={"name": "dup"}, headers=admin), 409)
    broken = client.post(
        "/workflows",
        params={"instance": cast.instance_id},
        content="name: broken\nroles: []\n",
        headers={**admin, "content-type": "application/yaml"},
    )
    assert len(assert_problem(broken, 422, "invalid workflow")["problems"]) >= 1
    path_like = client.post(
        "/workflows", json={"instance": cast.instance_id, "yaml": "x.yaml"}, headers=admin
    )
    assert_problem(path_like, 422)  # read as YAML text, never as a path on the server
    assert_problem(
        client.post("/workflows", content="x", headers={**admin, "content-type": "text/plain"}),
        415,
    )
    assert_problem(client.post("/instances", json={"nom": 1}, headers=admin), 422, "name")
    malformed = client.post(
        "/instances", content="{", headers={**admin, "content-type": "application/json"}
    )
    assert assert_problem(malformed, 400)["type"] == "urn:chameleon:problem:malformed-request"
    bad_value = client.post(
        f"/instances/{cast.instance_id}/uows",
        headers=admin,
        json={"workflow": "invoice_approval", "attributes": {"a": "\u0000"}},
    )
    assert_problem(bad_value, 422, "NUL")
    assert_problem(client.get("/logs", params={"type": "NOPE"}, headers=admin), 422)
    assert_problem(client.get("/nowhere"), 404)
    assert_problem(client.delete("/instances"), 405)


NOT_A_MAPPING = (
    "<request>: workflow: the document must be a mapping with name, roles, interactions, components"
)


def test_workflow_import_never_reads_server_files(
    server: ServerProcess, client: httpx.Client, database_url: str, tmp_path: Path
) -> None:
    """A path in an import body is YAML text: "/etc/passwd.yaml" and a real file's path are 422."""
    admin = server.admin()
    instance = client.post("/instances", json={"name": "paths"}, headers=admin).json()["id"]
    readable = tmp_path / "invoice.yaml"
    readable.write_text(INVOICE_YAML.read_text(), encoding="utf-8")
    expected = {
        "type": "urn:chameleon:problem:invalid-workflow",
        "title": HTTPStatus(422).phrase,  # the wording changed in Python 3.13
        "status": 422,
        "detail": "invalid workflow: 1 problem(s)",
        "problems": [NOT_A_MAPPING],
    }
    for text_body in ("/etc/passwd.yaml", str(readable)):
        as_json = client.post(
            "/workflows", json={"instance": instance, "yaml": text_body}, headers=admin
        )
        as_yaml = client.post(
            "/workflows",
            params={"instance": instance},
            content=text_body,
            headers={**admin, "content-type": "application/yaml"},
        )
        for response in (as_json, as_yaml):
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == PROBLEM
            assert response.json() == expected
    assert count_rows(database_url, "local_workflows") == 0


def test_register_actor_in_unknown_instance_is_not_found(
    server: ServerProcess, client: httpx.Client, database_url: str
) -> None:
    """POST /actors naming an instance that does not exist answers 404 and writes nothing."""
    ghost = uuid.uuid4()
    body = {"instance_id": str(ghost), "identity_key": "b", "name": "B", "actor_type": "HUMAN"}
    response = client.post("/actors", json=body, headers=server.admin())
    assert response.status_code == 404, response.text
    assert response.json() == {
        "type": "urn:chameleon:problem:not-found",
        "title": "Not Found",
        "status": 404,
        "detail": f"no instance named or with id {str(ghost)!r}",
    }
    assert count_rows(database_url, "local_actors") == 0


def test_metrics_health_and_logs(server: ServerProcess, client: httpx.Client) -> None:
    """Metrics count transitions and telemetry; health is ok; logs are paged and filtered."""
    cast = setup_invoice(client, server.admin(), actors=1)
    token = cast.tokens[0]
    uow = new_invoice(client, cast.instance_id, token, 50)
    step(client, token, "triage")
    client.get("/verify", headers=server.admin())
    deadline = time.monotonic() + 10
    while client.get("/health").json()["buffer_pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    health = client.get("/health")
    assert health.json() == {
        "status": "ok",
        "database": True,
        "flusher_alive": True,
        "services": [
            {
                "name": name,
                "state": "running",
                "failures_total": 0,
                "consecutive_failures": 0,
                "last_error": None,
            }
            for name in ("telemetry-flusher", "zombie-sweeper")
        ],
        "buffer_pending": 0,
        "buffer_capacity": 10000,
        "buffer_fill": 0.0,
    }
    text_format = client.get("/metrics")
    assert text_format.headers["content-type"].startswith("text/plain; version=0.0.4")
    metrics = text_format.text
    for line in (
        'chameleon_transitions_total{status="PENDING"} 2.0',
        'chameleon_transitions_total{status="ACTIVE"} 1.0',
        'chameleon_telemetry_recorded_total{type="STATE_TRANSITION"} 3.0',
        'chameleon_telemetry_flushed_total{type="STATE_TRANSITION"} 3.0',
        'chameleon_telemetry_recorded_total{type="GUARDIAN_DECISION"} 2.0',
        "chameleon_verifications_total 1.0",
        "chameleon_telemetry_buffer_fill_ratio 0.0",
    ):
        assert line in metrics.splitlines(), line
    assert "chameleon_telemetry_flush_seconds_count" in metrics
    page = client.get(
        "/logs",
        params={"uow_id": uow, "type": "STATE_TRANSITION", "limit": 2},
        headers=server.admin(),
    ).json()
    assert (page["limit"], page["offset"], len(page["items"])) == (2, 0, 2)
    assert {item["uow_id"] for item in page["items"]} == {uow}
    rest = client.get(
        "/logs",
        params={"uow_id": uow, "type": "STATE_TRANSITION", "offset": 2},
        headers=server.admin(),
    ).json()
    assert len(rest["items"]) == 1
    future = client.get("/logs", params={"since": "2999-01-01T00:00:00Z"}, headers=server.admin())
    assert future.json()["items"] == []


def test_zombie_sweeper_requeues_stale_work(database_url: str, tmp_path: Path) -> None:
    """A UOW whose holder stops heartbeating is taken back by the background sweeper."""
    env = {**FAST, "CHAMELEON_ZOMBIE_THRESHOLD_S": "0.5"}
    server = ServerProcess(database_url, tmp_path / "server.log", env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            cast = setup_invoice(client, server.admin(), actors=1)
            uow = new_invoice(client, cast.instance_id, cast.tokens[0], 50)
            assert client.post("/roles/triage/checkout", headers=bearer(cast.tokens[0])).is_success
            deadline = time.monotonic() + 15
            status = "ACTIVE"
            while status == "ACTIVE" and time.monotonic() < deadline:
                time.sleep(0.1)
                status = client.get(f"/uows/{uow}", headers=server.admin()).json()["status"]
            assert status == "PENDING"
            metrics = client.get("/metrics").text.splitlines()
            assert 'chameleon_zombies_reclaimed_total{outcome="requeued"} 1.0' in metrics
            late = client.post(f"/uows/{uow}/submit", json={}, headers=bearer(cast.tokens[0]))
            assert_problem(late, 403)
    finally:
        assert server.stop_cleanly(), server.log()
