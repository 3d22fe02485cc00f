"""The Python client against a live server, on both back ends: every step a user takes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from surface_world import Live, World, live_server, new_world

from chameleon_workflow.client import ChameleonClient
from chameleon_workflow.errors import (
    DuplicateWorkflowError,
    LimitExceededError,
    NotAuthenticatedError,
    NotAuthorizedError,
    NotFoundError,
    ServerUnreachableError,
)
from chameleon_workflow.testing import INVOICE_YAML, free_port


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """Run one server per back end for this module's tests."""
    with live_server(request, tmp_path_factory) as running:
        yield running


@pytest.fixture
def world(live: Live) -> World:
    """Give the test its own instance with the invoice workflow and one agent."""
    return new_world(live)


def test_client_drives_an_invoice_to_completed(world: World) -> None:
    """Create, check out and submit at triage and approval: COMPLETED, recorded and verified."""
    uow_id = world.invoice("agent", invoice_id="I-1", amount=120, vendor="ACME")
    with world.client("agent") as client:
        held = client.checkout("triage")
        assert held is not None
        assert (held.uow_id, held.status, str(held.held_by)) == (
            uuid.UUID(uow_id),
            "ACTIVE",
            world.actor_ids["agent"],
        )
        beat = client.heartbeat(held)
        routed = client.submit(beat, {"triaged": True}, "vendor known")
        assert (routed.status, routed.interaction) == ("PENDING", "ready_for_approval")
        approving = client.checkout("approval")
        assert approving is not None
        done = client.submit(approving, reasoning="within budget")
        assert done.status == "COMPLETED"
        assert done.attributes == {
            "invoice_id": "I-1",
            "amount": 120,
            "vendor": "ACME",
            "triaged": True,
        }
        assert client.checkout("approval") is None
        history = client.history(uow_id)
    assert [(e.event_type, e.new_status, e.reasoning) for e in history][1:] == [
        ("TRANSITION", "ACTIVE", "checked out by role 'triage'"),
        ("ATTRIBUTES", "ACTIVE", "vendor known"),
        ("TRANSITION", "PENDING", "vendor known"),
        ("TRANSITION", "ACTIVE", "checked out by role 'approval'"),
        ("TRANSITION", "COMPLETED", "within budget"),
    ]
    assert history[2].changes == {"added": {"triaged": True}, "removed": {}, "changed": {}}
    report = world.admin.verify_uow(uow_id)
    assert (report.ok, report.history_rows_checked, report.findings) == (True, 6, [])


def test_client_drives_a_failed_invoice_through_remediation(world: World) -> None:
    """FAILED at triage, remediated by a client call with the missing vendor, then COMPLETED."""
    uow_id = world.invoice("agent", invoice_id="I-2", amount=40)
    with world.client("agent") as client:
        held = client.checkout("triage")
        assert held is not None
        failed = client.fail(held, "no vendor on the invoice")
        assert (failed.status, failed.interaction) == ("FAILED", "failed")
        back = client.remediate(uow_id, {"vendor": "ACME"}, reasoning="vendor looked up")
        assert back.status == "PENDING"
        again = client.checkout("triage")
        assert again is not None
        assert again.attributes["vendor"] == "ACME"
        client.submit(again, reasoning="vendor known now")
        approving = client.checkout("approval")
        assert approving is not None
        assert client.submit(approving).status == "COMPLETED"
    assert world.admin.verify_uow(uow_id).ok


def test_client_errors_are_the_projects_exceptions(world: World) -> None:
    """Unknown ids, other holders, bad tokens, limits and duplicates raise the named errors."""
    uow_id = world.invoice("agent", invoice_id="I-3", amount=1, vendor="V")
    with world.client("agent") as client:
        with pytest.raises(NotFoundError, match="no unit of work") as missing:
            client.get_uow(uuid.uuid4())
        assert missing.value.problem.status == 404  # type: ignore[attr-defined]
        with pytest.raises(NotAuthorizedError, match="does not hold"):
            client.submit(uow_id, reasoning="not mine")
        with pytest.raises(NotFoundError, match="no role named 'auditing'"):
            client.checkout("auditing")
        held = client.checkout("triage")
        assert held is not None
        with pytest.raises(LimitExceededError, match="CHAMELEON_MAX_REASONING_CHARS"):
            client.submit(held, reasoning="x" * 200_000)
    with pytest.raises(NotAuthorizedError, match="needs an actor token"):
        world.admin.checkout("triage")
    stranger = ChameleonClient(world.server.url, "chm_not-a-real-token")
    with stranger, pytest.raises(NotAuthenticatedError, match="invalid bearer token"):
        stranger.get_uow(uow_id)
    with pytest.raises(DuplicateWorkflowError):
        world.admin.import_workflow(world.instance_id, INVOICE_YAML.read_text())


def test_client_reports_a_server_that_is_not_there() -> None:
    """Nothing listening: a ServerUnreachableError naming the address, after the retries."""
    url = f"http://127.0.0.1:{free_port()}"
    client = ChameleonClient(url, "chm_x", timeout_s=2)
    client.transport.retry = type(client.transport.retry)(attempts=2, first_wait_s=0.01)
    with pytest.raises(ServerUnreachableError, match=f"GET {url}/uows/.*ConnectError"):
        client.get_uow(uuid.uuid4())


def test_client_lists_and_reads_what_the_api_lists(world: World) -> None:
    """Instances, workflows with role ids, actors and filtered UOWs, page by page, typed."""
    instance = world.admin.get_instance(world.instance_id)
    assert instance in list(world.admin.instances(page_size=1))
    assert world.admin.get_instance(instance.name) == instance
    (workflow,) = world.admin.workflows(instance.name)
    detail = world.admin.get_workflow(workflow.workflow_id)
    assert {r.name: r.role_type for r in detail.roles}["remediation"] == "EPSILON"
    assert len(detail.interactions) == 4
    small = [world.invoice("agent", invoice_id=f"L-{n}", amount=n, vendor="V") for n in (1, 2, 3)]
    large = world.invoice("agent", invoice_id="L-big", amount=50_000, vendor="V")
    with world.client("agent") as client:
        found = client.uows(status=["PENDING"], attributes={"vendor": "V"}, page_size=2)
        assert [str(u.uow_id) for u in found] == [*small, large]
        assert [str(u.uow_id) for u in client.uows(attributes={"amount": 50_000})] == [large]
        assert list(client.instances()) == [instance]
        (me,) = client.actors()
    assert {r.name for r in me.roles} == {"triage", "manual_review", "approval", "remediation"}
    assert (str(me.actor_id), me.has_token) == (world.actor_ids["agent"], True)


def test_client_revokes_roles_and_tokens(world: World) -> None:
    """A revoked role refuses checkout at once; a revoked token stops authenticating at once."""
    agent = world.actor_ids["agent"]
    world.admin.revoke_role(agent, "approval")
    assert {r.name for r in world.admin.get_actor(agent).roles} == {
        "triage",
        "manual_review",
        "remediation",
    }
    with world.client("agent") as client:
        with pytest.raises(NotAuthorizedError):
            client.checkout("approval")
        world.admin.revoke_token(agent)
        with pytest.raises(NotAuthenticatedError):
            client.checkout("triage")
    assert world.admin.get_actor(agent).has_token is False
    renewed = world.admin.rotate_token(agent)
    with ChameleonClient(world.server.url, renewed.token) as client:
        assert client.checkout("triage") is None


def test_auditor_reads_and_verifies_but_cannot_write(world: World) -> None:
    """The auditor token reads history, logs and verification; a write is refused with 403."""
    uow_id = world.invoice("agent", invoice_id="A-1", amount=9, vendor="V")
    with ChameleonClient(world.server.url, world.auditor_token) as auditor:
        assert [e.new_status for e in auditor.history(uow_id)] == ["PENDING"]
        assert auditor.verify(world.instance_id).ok
        assert auditor.verify_uow(uow_id).uows_checked == 1
        with pytest.raises(NotAuthorizedError):
            auditor.create_instance("not allowed")
