"""PostgreSQL roles: the application role runs the engine and the server but cannot defuse the
ledger (no UPDATE, DELETE or TRUNCATE on ledger tables, no ALTER TABLE, no trigger bypass)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from chameleon_workflow import audit
from chameleon_workflow.cli import app
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.roles import RolePlan
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.testing import ServerProcess, checked_json, setup_invoice

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

INVOICE = (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()
REFUSED = {
    "ALTER TABLE uow_history DISABLE TRIGGER USER": "must be owner of table uow_history",
    "DROP TRIGGER uow_history_no_update ON uow_history": "must be owner of relation uow_history",
    "DELETE FROM admin_events": "permission denied for table admin_events",
    "TRUNCATE uow_attributes": "permission denied for table uow_attributes",
    "UPDATE interaction_logs SET log_type = 'TELEMETRY'": "permission denied for table "
    "interaction_logs",
    "SET session_replication_role = replica": 'permission denied to set parameter "session_'
    'replication_role"',
    "ALTER TABLE units_of_work DISABLE TRIGGER ALL": "must be owner of table units_of_work",
}


def _as(url: str, role: str) -> str:
    return make_url(url).set(username=role).render_as_string(hide_password=False)


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True)


@pytest.fixture
def roles(database_url: str) -> Iterator[RolePlan]:
    """Apply `chameleon db roles` with names of this test's own; drop the roles afterwards."""
    suffix = secrets.token_hex(4)
    plan = RolePlan(f"chm_owner_{suffix}", f"chm_app_{suffix}")
    result = CliRunner().invoke(
        app,
        ["db", "roles", "--owner", plan.owner, "--app", plan.app, "--database-url", database_url],
    )
    assert result.exit_code == 0, result.output
    yield plan
    with _admin(database_url) as conn:
        for role in (plan.app, plan.owner):
            conn.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
            conn.execute(f'DROP OWNED BY "{role}"')
    with _admin(_as(database_url, "postgres").rsplit("/", 1)[0] + "/postgres") as conn:
        for role in (plan.app, plan.owner):
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_the_application_role_runs_the_engine(database_url: str, roles: RolePlan) -> None:
    """As the application role an invoice is imported, walked and verified clean."""
    engine = make_engine(_as(database_url, roles.app))
    factory = make_session_factory(engine)
    flow = WorkflowEngine(factory, telemetry=TelemetryBuffer())
    instance_id = flow.create_instance("roles")
    flow.import_workflow(instance_id, INVOICE)
    bot = flow.register_actor(instance_id, "bot", "Bot", "AI_AGENT")
    flow.assign_role(bot, "triage")
    uow_id = flow.instantiate(instance_id, "invoice_approval", {"amount": 10})
    view = flow.checkout(bot, "triage")
    assert view is not None
    assert view.uow_id == uow_id
    flow.submit(bot, uow_id, {"checked": True}, reasoning="fine")
    flow.revoke_role(bot, "triage")  # the one DELETE the application may run
    flow.revoke_token(bot)
    assert flow.flush_telemetry() > 0
    with factory() as session:
        report = audit.verify(session)
    engine.dispose()
    assert (report.ok, report.uows_checked) == (True, 1)


@pytest.mark.parametrize(("statement", "message"), REFUSED.items())
def test_the_application_role_cannot_defuse_the_ledger(
    database_url: str, roles: RolePlan, statement: str, message: str
) -> None:
    """Disabling or dropping a trigger, DELETE, TRUNCATE, UPDATE and replica mode are refused."""
    with _admin(_as(database_url, roles.app)) as conn, pytest.raises(psycopg.Error) as info:
        conn.execute(statement)
    assert message in str(info.value)


def test_the_owner_owns_the_tables(database_url: str, roles: RolePlan) -> None:
    """Every Chameleon table is owned by the owner role, none by the application role."""
    with _admin(database_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    assert owners == [(roles.owner,)]


def test_applying_twice_changes_nothing(database_url: str, roles: RolePlan) -> None:
    """Running the command again (after an upgrade, say) succeeds and keeps the grants."""
    args = ["db", "roles", "--owner", roles.owner, "--app", roles.app]
    result = CliRunner().invoke(app, [*args, "--database-url", database_url])
    assert result.exit_code == 0, result.output
    with _admin(_as(database_url, roles.app)) as conn, pytest.raises(psycopg.Error):
        conn.execute("DELETE FROM admin_events")


def test_the_server_runs_as_the_application_role(
    database_url: str, roles: RolePlan, tmp_path: Path
) -> None:
    """`chameleon serve` starts as the application role and takes a UOW through a cycle."""
    server = ServerProcess(_as(database_url, roles.app), tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            cast = setup_invoice(client, server.admin(), actors=1)
            auth = {"Authorization": f"Bearer {cast.tokens[0]}"}
            checked_json(
                client.post(
                    f"/instances/{cast.instance_id}/uows",
                    json={"workflow": "invoice_approval", "attributes": {"amount": 5}},
                    headers=server.admin(),
                )
            )
            claimed = checked_json(client.post("/roles/triage/checkout", headers=auth))
            done = client.post(
                f"/uows/{claimed['uow_id']}/submit", json={"reasoning": "ok"}, headers=auth
            )
            assert done.status_code == 200, done.text
    finally:
        assert server.stop_cleanly(), server.log()
    assert "Traceback" not in server.log()
