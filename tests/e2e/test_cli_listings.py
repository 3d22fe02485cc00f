"""The listings, id prefixes, unknown instances, --json shapes and unknown variables, on both
back ends, through the ``chameleon`` command as a user runs it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.testing import INVOICE_YAML


def _run(*args: str, url: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(app, [*args, "--database-url", url], env=env)
    assert "Traceback" not in result.output
    return result


def _json(*args: str, url: str) -> Any:
    result = _run(*args, "--json", url=url)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@dataclass(frozen=True)
class World:
    """Two instances; ``north`` has the invoice workflow, two actors and five UOWs."""

    url: str
    north: uuid.UUID
    south: uuid.UUID
    workflow: uuid.UUID
    uows: tuple[uuid.UUID, ...]
    reviewer: uuid.UUID


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """Build the world through the engine, one UOW ACTIVE, the rest PENDING."""
    engine = make_engine(database_url)
    flow = WorkflowEngine(make_session_factory(engine), telemetry=TelemetryBuffer())
    north = flow.create_instance("north", "the [red]north[/red] office")
    south = flow.create_instance("south")
    workflow = flow.import_workflow(north, INVOICE_YAML.read_text())
    reviewer = flow.register_actor(north, "rita", "Rita", "HUMAN")
    triage = flow.register_actor(north, "tri-1", "Triage one", "AI_AGENT")
    flow.assign_role(reviewer, "manual_review")
    flow.assign_role(triage, "triage")
    uows = tuple(
        flow.instantiate(north, workflow, {"invoice_id": f"INV-{n}", "amount": n * 1000})
        for n in range(1, 6)
    )
    view = flow.checkout(triage, "triage")
    assert view is not None
    yield World(database_url, north, south, workflow, uows, reviewer)
    engine.dispose()


def test_uows_lists_full_ids_and_pages_with_a_cursor(world: World) -> None:
    """`uows` shows every full id; --limit pages and the printed cursor reaches the rest."""
    first = _json("uows", "--limit", "2", url=world.url)
    assert len(first["uows"]) == 2
    assert first["next_cursor"]
    second = _json("uows", "--limit", "2", "--cursor", first["next_cursor"], url=world.url)
    third = _json("uows", "--limit", "2", "--cursor", second["next_cursor"], url=world.url)
    assert third["next_cursor"] is None
    seen = [u["uow_id"] for page in (first, second, third) for u in page["uows"]]
    assert sorted(seen) == sorted(str(u) for u in world.uows)
    text = _run("uows", "--limit", "2", url=world.url).stdout
    assert f"--cursor {first['next_cursor']}" in text
    for entry in first["uows"]:
        assert entry["uow_id"] in text


def test_uows_filters(world: World) -> None:
    """Status, attribute, instance, workflow and time filters keep exactly what matches."""

    def ids(*args: str) -> list[str]:
        return sorted(u["uow_id"] for u in _json("uows", *args, url=world.url)["uows"])

    every = sorted(str(u) for u in world.uows)
    assert len(ids("--status", "ACTIVE")) == 1
    assert len(ids("--status", "pending", "--status", "ACTIVE")) == 5
    assert ids("--attribute", "invoice_id=INV-3") == [str(world.uows[2])]
    assert ids("--attribute", "amount=3000", "--attribute", "invoice_id=INV-3") == [
        str(world.uows[2])
    ]
    assert ids("--attribute", "amount=3001") == []
    assert ids("--attribute", 'amount="3000"') == []  # JSON text "3000" is not the number
    assert ids("--instance", "north") == every
    assert ids("--instance", str(world.north), "--workflow", "invoice_approval") == every
    assert ids("--instance", "south") == []
    assert ids("--since", "2000-01-01", "--until", "2999-01-01T00:00:00+00:00") == every
    assert ids("--until", "2000-01-01") == []


def test_uows_refuses_bad_filters(world: World) -> None:
    """A bad status, attribute, cursor or instance is one error line, exit 2."""
    cases = {
        ("--status", "DONE"): "error: unknown status 'DONE' (one of: PENDING,",
        ("--attribute", "amount"): "error: --attribute 'amount' is not KEY=VALUE",
        ("--cursor", "abc"): "error: cursor 'abc' is not one a listing returned",
        ("--instance", "nort"): "error: no instance named or with id 'nort'; did you mean 'north'",
        ("--workflow", "nope"): "error: no workflow named or with id 'nope'",
    }
    for args, message in cases.items():
        result = _run("uows", *args, url=world.url)
        assert result.exit_code == 2
        assert result.stderr.startswith(message), result.stderr
        assert result.stderr.count("\n") == 1


def test_instances_workflows_actors(world: World) -> None:
    """The other listings give ids, counts, role ids and the roles each actor holds."""
    found = _json("instances", url=world.url)["instances"]
    assert [(i["name"], i["workflows"], i["actors"], i["uows"]) for i in found] == [
        ("north", 1, 2, 5),
        ("south", 0, 0, 0),
    ]
    assert found[0]["instance_id"] == str(world.north)
    assert found[0]["description"] == "the [red]north[/red] office"
    workflows = _json("workflows", "--instance", "north", url=world.url)["workflows"]
    assert [(w["workflow_id"], w["name"], w["version"]) for w in workflows] == [
        (str(world.workflow), "invoice_approval", "1")
    ]
    roles = {r["name"]: r for r in workflows[0]["roles"]}
    assert set(roles) >= {"intake", "triage", "manual_review", "approval", "remediation"}
    assert _json("workflows", "--instance", "south", url=world.url) == {"workflows": []}
    actors = _json("actors", url=world.url)["actors"]
    rita = next(a for a in actors if a["identity_key"] == "rita")
    assert rita["actor_id"] == str(world.reviewer)
    assert [(r["role"], r["role_id"]) for r in rita["roles"]] == [
        ("manual_review", roles["manual_review"]["role_id"])
    ]
    text = _run("workflows", url=world.url).stdout
    assert f"role manual_review (BETA): {roles['manual_review']['role_id']}" in text
    assert f"id: {world.reviewer}" in _run("actors", "--instance", "north", url=world.url).stdout
    assert "the [red]north" not in _run("instances", url=world.url).stdout  # names only
    assert f"id: {world.north}" in _run("instances", url=world.url).stdout


def test_history_and_logs_take_a_unique_prefix(world: World) -> None:
    """`history` and `logs --uow` find a UOW by a unique prefix of its id."""
    target = str(world.uows[-1])  # still PENDING: the checkout took the oldest
    prefix = next(
        target[:n]
        for n in range(4, 36)
        if sum(str(u).startswith(target[:n]) for u in world.uows) == 1
    )
    result = _run("history", prefix, url=world.url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"UOW {target} — 1 history rows")
    document = _json("history", prefix, url=world.url)
    assert document["uow_id"] == target
    entry = document["entries"][0]
    assert (entry["sequence"], entry["event_type"], entry["new_status"]) == (
        1,
        "CREATED",
        "PENDING",
    )
    assert entry["previous_state_hash"] is None
    assert len(entry["chain_hash"]) == 64
    uuid.UUID(entry["history_id"])
    logs = _run("logs", "--uow", prefix, url=world.url)
    assert logs.exit_code == 0, logs.output


def test_prefix_errors(world: World) -> None:
    """An ambiguous or unknown prefix, or one that is not hex, is one error line, exit 2."""
    unknown = (
        "ffffffffffff" if not any(str(u).startswith("ffffffffffff") for u in world.uows) else "0"
    )
    cases = {
        "": "error: UOW id '' is neither a UUID nor a prefix of one",
        "xyz": "error: UOW id 'xyz' is neither a UUID nor a prefix of one",
        unknown: f"error: no unit of work with an id starting '{unknown}'",
    }
    for prefix, message in cases.items():
        result = _run("history", prefix, url=world.url)
        assert (result.exit_code, result.stderr.strip()) == (2, message)
    first_digits = {str(u)[0] for u in world.uows}
    shared = next((d for d in first_digits if sum(str(u)[0] == d for u in world.uows) > 1), None)
    if shared is not None:  # five random ids: two share a first digit nearly always
        result = _run("history", shared, url=world.url)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: UOW id prefix '{shared}' is ambiguous")


def test_import_never_creates_an_instance_unasked(world: World) -> None:
    """`import --instance` with an unknown name names the closest and how to create it."""
    result = _run("import", str(INVOICE_YAML), "--instance", "sout", url=world.url)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: no instance named or with id 'sout'; did you mean 'south'?; create it with "
        "`chameleon instances create NAME` or pass --create-instance"
    )
    assert [i["name"] for i in _json("instances", url=world.url)["instances"]] == ["north", "south"]
    made = _run(
        "import", str(INVOICE_YAML), "--instance", "west", "--create-instance", url=world.url
    )
    assert made.exit_code == 0, made.output
    assert _run("instances", "create", "east", url=world.url).exit_code == 0
    again = _run("instances", "create", "east", url=world.url)
    assert (again.exit_code, again.stderr.strip()) == (
        2,
        "error: an instance named 'east' already exists",
    )
    by_id = _run("import", str(INVOICE_YAML), "--instance", str(world.south), url=world.url)
    assert by_id.exit_code == 0, by_id.output
    counts = {i["name"]: i["workflows"] for i in _json("instances", url=world.url)["instances"]}
    assert counts == {"east": 0, "north": 1, "south": 1, "west": 1}


def test_verify_json_shape(world: World) -> None:
    """`verify --json` prints the report as one document and no progress bar."""
    document = _json("verify", "--instance", "north", url=world.url)
    assert set(document) >= {  # the report may grow; these stay
        "ok",
        "uows_checked",
        "history_rows_checked",
        "attribute_rows_checked",
        "findings",
        "elapsed_s",
        "checkpoint",
    }
    assert (document["ok"], document["uows_checked"], document["findings"]) == (True, 5, [])
    assert document["checkpoint"] is None


def test_logs_json_shape(world: World) -> None:
    """`logs --json` is a list of rows with full ids and the stored documents."""
    document = _json("logs", "--limit", "3", url=world.url)
    assert list(document) == ["logs"]
    for row in document["logs"]:
        assert set(row) == {
            "log_id",
            "timestamp",
            "log_type",
            "instance_id",
            "uow_id",
            "actor_id",
            "role_id",
            "interaction_id",
            "event_details",
            "error_metadata",
        }


def test_unknown_environment_variable_is_an_error(world: World) -> None:
    """A misspelled CHAMELEON_ variable stops every command, naming the closest known one."""
    env = {"CHAMELEON_DATABASE_ULR": "sqlite:///x.db"}
    for command in (["uows"], ["instances"], ["history", "0"], ["verify"], ["logs"]):
        result = _run(*command, url=world.url, env=env)
        assert (result.exit_code, result.stderr.strip()) == (
            2,
            "error: unknown environment variable: CHAMELEON_DATABASE_ULR "
            "(did you mean CHAMELEON_DATABASE_URL?)",
        )
    known = {"CHAMELEON_HOST": "127.0.0.1", "CHAMELEON_WRITER_NAME": "w1"}
    assert _run("instances", url=world.url, env=known).exit_code == 0


def test_version() -> None:
    """`--version` prints the installed distribution's version."""
    from importlib.metadata import version  # noqa: PLC0415 - only this test needs it

    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"chameleon {version('chameleon-workflow')}\n")


def test_demo_ends_with_ids_to_try(tmp_path: Path) -> None:
    """The demo ends by naming its instance, a UOW per final status, and commands that work."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    output = _run("demo", "--uows", "12", url=url).stdout
    tail = output[output.index("\ninstance invoice-demo-") :]
    completed = re.search(r"a COMPLETED UOW: ([0-9a-f-]{36})", tail)
    assert completed is not None, tail
    assert f"  chameleon history {completed.group(1)[:8]}" in tail
    tried = [line.split()[1:] for line in tail.splitlines() if line.startswith("  chameleon ")]
    assert len(tried) >= 5
    for args in tried:
        assert _run(*args, url=url).exit_code == 0, args


@pytest.mark.parametrize("backend", ["sqlite"])  # the signing key lives beside the file
def test_verify_json_with_a_checkpoint(world: World, tmp_path: Path) -> None:
    """With --checkpoint, the JSON report carries the checkpoint's verification too."""
    assert _run("init", url=world.url).exit_code == 0
    target = tmp_path / "cp.json"
    assert _run("checkpoint", "--output", str(target), url=world.url).exit_code == 0
    document = _json("verify", "--checkpoint", str(target), url=world.url)
    checkpoint = document["checkpoint"]
    assert set(checkpoint) == {
        "tree_size",
        "leaves_checked",
        "newest_size",
        "findings",
        "elapsed_s",
        "archived",
    }
    assert (document["ok"], checkpoint["findings"], checkpoint["archived"]) == (True, [], [])
    assert checkpoint["tree_size"] == checkpoint["leaves_checked"] > 0
