"""Token kinds and revocation: the read-only auditor, a revoked token, a revoked role."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from http_world import AUDITOR_TOKEN, call, served
from sqlalchemy import create_engine, text
from surface_world import module_database

from chameleon_workflow.db import normalize_url
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.server.settings import load_server_settings
from chameleon_workflow.testing import INVOICE_YAML, Cast, ServerProcess, setup_invoice


@dataclass(frozen=True)
class Served:
    """A server on a module's database (one per back end), and a client that checks statuses.

    Each test works in instances of its own (``start`` names them at random), so the tests
    share the server (starting one is the slow part) without seeing each other's rows.
    """

    database_url: str
    server: ServerProcess
    http: httpx.Client


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Serve one database per back end for this module's tests; check the log at the end."""
    folder = tmp_path_factory.mktemp(f"tokens-{request.param}")
    with module_database(request, folder) as url, served(url, folder) as (server, http):
        yield Served(url, server, http)


def rows_in(database_url: str) -> dict[str, int]:
    """Count the rows of every table a write could touch."""
    tables = ("instance_context", "local_workflows", "local_actors", "actor_role_assignments")
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            return {
                table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in (*tables, "units_of_work", "uow_history")
            }
    finally:
        engine.dispose()


def start(http: httpx.Client, admin: str) -> tuple[Cast, str]:
    """Set up the invoice instance and one PENDING invoice; return the cast and the UOW id."""
    cast = setup_invoice(http, {"Authorization": f"Bearer {admin}"}, actors=1)
    body = {"workflow": "invoice_approval", "attributes": {"invoice_id": "I-1", "amount": 5}}
    path = f"/instances/{cast.instance_id}/uows"
    return cast, str(call(http, "POST", path, cast.tokens[0], 201, json=body)["id"])


def test_auditor_reads_everything_and_writes_nothing(live: Served) -> None:
    """Every GET answers the auditor; every write is 403 and leaves the database unchanged."""
    database_url, server, http = live.database_url, live.server, live.http
    cast, uow = start(http, server.admin_token)
    actor, instance = cast.actor_ids[0], cast.instance_id
    workflow = call(http, "GET", "/workflows", AUDITOR_TOKEN, 200)["items"][0]["workflow_id"]
    for path in (
        "/instances",
        f"/instances/{instance}",
        "/workflows",
        f"/workflows/{workflow}",
        "/actors",
        f"/actors/{actor}",
        "/uows",
        f"/uows/{uow}",
        f"/uows/{uow}/history",
        f"/uows/{uow}/verify",
        "/verify",
        "/logs",
    ):
        call(http, "GET", path, AUDITOR_TOKEN, 200)
    # Read-only, but allowed: before the first seal there is simply no checkpoint.
    call(http, "GET", "/checkpoints/latest", AUDITOR_TOKEN, 404)
    before = rows_in(database_url)
    actor_body = {
        "instance_id": instance,
        "identity_key": "x",
        "name": "x",
        "actor_type": "HUMAN",
    }
    for method, path, body in (
        ("POST", "/instances", {"name": "more"}),
        ("POST", "/workflows", {"instance": instance, "yaml": INVOICE_YAML.read_text()}),
        ("POST", "/actors", actor_body),
        ("POST", f"/actors/{actor}/token", None),
        ("POST", f"/actors/{actor}/roles", {"role": "remediation"}),
        ("DELETE", f"/actors/{actor}/roles/triage", None),
        ("DELETE", f"/actors/{actor}/token", None),
        ("POST", f"/instances/{instance}/uows", {"workflow": "invoice_approval"}),
        ("POST", "/roles/triage/checkout", None),
        ("POST", f"/uows/{uow}/submit", {}),
        ("POST", f"/uows/{uow}/fail", {"reason": "no"}),
        ("POST", f"/uows/{uow}/heartbeat", None),
        ("POST", f"/uows/{uow}/remediate", {}),
    ):
        refused = call(http, method, path, AUDITOR_TOKEN, 403, json=body)
        assert refused["type"] == "urn:chameleon:problem:forbidden", path
    assert rows_in(database_url) == before
    assert call(http, "GET", f"/actors/{actor}", AUDITOR_TOKEN, 200)["has_token"] is True


def test_actor_cannot_read_the_audit_routes(live: Served) -> None:
    """Verify, logs and checkpoints want the admin or the auditor token, never an actor's."""
    server, http = live.server, live.http
    cast, uow = start(http, server.admin_token)
    for path in ("/verify", f"/uows/{uow}/verify", "/logs", "/checkpoints/latest"):
        refused = call(http, "GET", path, cast.tokens[0], 403)
        assert refused["detail"] == "this operation needs the admin token or the auditor token"


def test_logs_filter_by_instance(live: Served) -> None:
    """/logs?instance= (name or id) shows that instance's rows only."""
    server, http = live.server, live.http
    first, _ = start(http, server.admin_token)
    second, _ = start(http, server.admin_token)
    name = call(http, "GET", f"/instances/{second.instance_id}", AUDITOR_TOKEN, 200)["name"]
    deadline = time.monotonic() + 10
    while not call(http, "GET", "/logs", AUDITOR_TOKEN, 200, params={"instance": name})["items"]:
        assert time.monotonic() < deadline, "the flusher wrote nothing"
        time.sleep(0.1)
    rows = call(http, "GET", "/logs", AUDITOR_TOKEN, 200, params={"instance": name})["items"]
    assert {row["instance_id"] for row in rows} == {second.instance_id}
    by_id = call(http, "GET", "/logs", AUDITOR_TOKEN, 200, params={"instance": first.instance_id})
    assert {row["instance_id"] for row in by_id["items"]} <= {first.instance_id}
    call(http, "GET", "/logs", AUDITOR_TOKEN, 404, params={"instance": "nowhere"})


def test_revoked_token_is_refused_at_once(live: Served) -> None:
    """After DELETE /actors/{id}/token the old token is 401 on the very next request."""
    server, http = live.server, live.http
    cast, uow = start(http, server.admin_token)
    actor, token = cast.actor_ids[0], cast.tokens[0]
    call(http, "GET", f"/uows/{uow}", token, 200)
    assert call(http, "DELETE", f"/actors/{actor}/token", token, 403)["detail"] == (
        "this operation needs the admin token"
    )
    assert call(http, "DELETE", f"/actors/{actor}/token", server.admin_token, 204) is None
    refused = call(http, "GET", f"/uows/{uow}", token, 401)
    assert refused["detail"] == "invalid bearer token"
    call(http, "POST", "/roles/triage/checkout", token, 401)
    assert call(http, "GET", f"/actors/{actor}", server.admin_token, 200)["has_token"] is False
    call(http, "DELETE", f"/actors/{actor}/token", server.admin_token, 204)  # idempotent
    call(http, "DELETE", f"/actors/{uuid.uuid4()}/token", server.admin_token, 404)
    fresh = call(http, "POST", f"/actors/{actor}/token", server.admin_token, 201)["token"]
    assert call(http, "POST", "/roles/triage/checkout", fresh, 200)["uow_id"] == uow


def test_revoked_role_stops_at_once(live: Served) -> None:
    """A revoked role can no longer check out, nor submit a UOW taken under it."""
    server, http = live.server, live.http
    admin = server.admin_token
    cast, uow = start(http, admin)
    actor, token = cast.actor_ids[0], cast.tokens[0]
    call(http, "POST", "/roles/triage/checkout", token, 200)
    assert call(http, "DELETE", f"/actors/{actor}/roles/triage", admin, 204) is None
    late = call(http, "POST", f"/uows/{uow}/submit", token, 403, json={})
    assert "holds no role" in late["detail"]
    call(http, "POST", f"/actors/{actor}/roles", admin, 201, json={"role": "triage"})
    call(http, "POST", f"/uows/{uow}/submit", token, 200, json={})
    roles = call(http, "GET", f"/actors/{actor}", admin, 200)["roles"]
    approval = next(r["role_id"] for r in roles if r["name"] == "approval")
    call(http, "DELETE", f"/actors/{actor}/roles/{approval}", admin, 204)  # by id
    refused = call(http, "POST", "/roles/approval/checkout", token, 403)
    assert "does not hold role 'approval'" in refused["detail"]
    assert [r["name"] for r in call(http, "GET", f"/actors/{actor}", admin, 200)["roles"]] == [
        "triage"
    ]
    again = call(http, "DELETE", f"/actors/{actor}/roles/approval", admin, 404)
    assert again["detail"] == "actor 'worker-0' does not hold role 'approval'"
    call(http, "DELETE", f"/actors/{actor}/roles/nope", admin, 404)


def test_short_auditor_token_is_refused() -> None:
    """An auditor token shorter than 32 characters is a configuration error."""
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        load_server_settings(auditor_token="short")
