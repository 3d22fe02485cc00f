"""Stored text is data, never markup: every command shows what is stored, brackets and all,
and never sends a stored control character to the terminal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import (
    ActorRoleAssignment,
    InstanceContext,
    LocalActor,
    LocalInteraction,
    LocalRole,
    LocalWorkflow,
)
from chameleon_workflow.states import ActorType, RoleType
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.testing import Playground, make_uow

MARKUP = "INV-[red]1 [/x] [link=https://example.invalid]pay here[/link]"
ESCAPE = "\x1b[31mred\x1b[0m\x07"
ESCAPE_SHOWN = "\\x1b[31mred\\x1b[0m\\x07"
VERSION = "[b]2[/b]"


def _cli(*args: str, url: str) -> str:
    result = CliRunner().invoke(app, [*args, "--database-url", url])
    assert "\x1b" not in result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def uow_id(database_url: str, session: Session) -> str:
    """A UOW whose attribute keys, values and reasoning carry markup and escapes."""
    service = UOWPersistenceService()
    uow = make_uow(session, attributes={MARKUP: "plain", "note": MARKUP, "tty": ESCAPE})
    service.save_uow(session, uow, "ACTIVE", reasoning=f"looks [/fine] {ESCAPE}")
    session.commit()
    buffer = TelemetryBuffer()
    details = {"condition": "[/x for x in items]", "error": ESCAPE}
    buffer.record(TelemetryEntry(None, uow.uow_id, None, None, None, "ERROR", details))
    buffer.flush_all(session)
    session.commit()
    return str(uow.uow_id)


def test_history_shows_stored_text_verbatim(database_url: str, uow_id: str) -> None:
    """`history` shows keys, values and reasoning as stored; escapes become visible text."""
    output = _cli("history", uow_id, url=database_url).replace("\n", "")
    for stored in (f"+ {MARKUP}", '"INV-[red]1 [/x]', "looks [/fine]", ESCAPE_SHOWN):
        assert stored.replace(" ", "") in output.replace(" ", "")


def test_logs_show_stored_text_verbatim(database_url: str, uow_id: str) -> None:
    """`logs` shows a condition with brackets as stored (it used to crash on `[/x`)."""
    output = _cli("logs", "--uow", uow_id, url=database_url)
    flat = output.replace("\n", "").replace(" ", "").replace("│", "")
    assert 'condition"[/xforxinitems]"' in flat
    assert "1 log rows" in output


def test_error_lines_show_input_verbatim(database_url: str) -> None:
    """An error naming what the user typed shows it exactly, escapes made visible."""
    name = f"[red]nope{ESCAPE}"
    output = _cli("verify", "--instance", name, url=database_url)
    assert output.strip() == f"error: no instance named or with id '[red]nope{ESCAPE_SHOWN}'"


def test_import_error_keeps_the_condition_text(database_url: str, tmp_path: Path) -> None:
    """A workflow whose condition looks like markup fails with the condition text intact."""
    source = (files("chameleon_workflow") / "examples" / "invoice_approval.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(source.replace("condition: amount > 10000", 'condition: "[/x for x in y]"'))
    output = _cli("import", str(broken), url=database_url)
    assert "[/x for x in y]" in output
    assert output.startswith("error: invalid workflow:")


@pytest.fixture
def listed(database_url: str, session: Session) -> str:
    """An instance, workflow, interaction, role and actor whose names carry markup and escapes."""
    stored = f"{MARKUP} {ESCAPE}"
    instance = InstanceContext(instance_id=uuid.uuid4(), name=stored)
    workflow = LocalWorkflow(
        local_workflow_id=uuid.uuid4(),
        instance_id=instance.instance_id,
        name=stored,
        version=VERSION,
        created_at=datetime.now(UTC),
    )
    interaction = LocalInteraction(
        interaction_id=uuid.uuid4(),
        instance_id=instance.instance_id,
        local_workflow_id=workflow.local_workflow_id,
        name=stored,
    )
    for row in (instance, workflow, interaction):  # the rows reference each other: in order
        session.add(row)
        session.flush()
    play = Playground(
        instance.instance_id, workflow.local_workflow_id, (interaction.interaction_id,)
    )
    role = LocalRole(
        role_id=uuid.uuid4(),
        instance_id=play.instance_id,
        local_workflow_id=play.workflow_id,
        name=stored,
        role_type=RoleType.BETA,
    )
    actor = LocalActor(
        actor_id=uuid.uuid4(),
        instance_id=play.instance_id,
        identity_key=stored,
        name=stored,
        actor_type=ActorType.HUMAN,
    )
    session.add_all([role, actor])
    session.flush()
    session.add(
        ActorRoleAssignment(
            instance_id=play.instance_id, actor_id=actor.actor_id, role_id=role.role_id
        )
    )
    session.commit()
    make_uow(session, play, attributes={"note": MARKUP})
    return stored


@pytest.mark.parametrize(
    ("command", "times"),
    [(["uows"], 2), (["instances"], 1), (["workflows"], 3), (["actors"], 5)],
)
def test_listings_show_stored_names_verbatim(
    database_url: str, listed: str, command: list[str], times: int
) -> None:
    """Every listing shows stored names as stored: markup kept, escapes made visible."""
    output = _cli(*command, url=database_url)
    assert output.count(f"{MARKUP} {ESCAPE_SHOWN}") == times, output
    if command != ["instances"]:
        assert VERSION in output or command == ["uows"]


def test_uow_filters_take_markup_verbatim(database_url: str, listed: str) -> None:
    """An attribute filter and an instance name with markup match what is stored."""
    output = _cli("uows", "--attribute", f"note={MARKUP}", "--instance", listed, url=database_url)
    assert output.startswith("1 UOWs"), output
    assert f"{MARKUP} {ESCAPE_SHOWN} / {MARKUP} {ESCAPE_SHOWN}" in output


def test_logs_never_break_json_at_80_columns(database_url: str, session: Session) -> None:
    """At 80 columns each log value is one unbroken line, however long."""
    long_condition = " and ".join(f"amount_{n} > {n}" for n in range(12))
    buffer = TelemetryBuffer()
    details = {"condition": long_condition, "variables": {"note": MARKUP}}  # jsonb: one key
    buffer.record(TelemetryEntry(None, uuid.uuid4(), None, None, None, "ERROR", details))
    buffer.flush_all(session)
    session.commit()
    output = CliRunner().invoke(app, ["logs", "--database-url", database_url]).stdout
    lines = output.splitlines()
    assert f'    condition  "{long_condition}"' in lines
    assert f'    variables  {{"note":"{MARKUP}"}}' in lines
