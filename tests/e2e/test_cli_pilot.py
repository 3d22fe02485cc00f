"""`chameleon pilot …` and `chameleon demo --workflow purchase_order` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from importlib.resources import files
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from chameleon_workflow.db import make_engine
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

PURCHASE_ORDER = (files("chameleon_workflow") / "examples" / "purchase_order.yaml").read_text()


def _run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chameleon_workflow", *args, "--database-url", url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "COLUMNS": "200",
            "CHAMELEON_LEDGER_KEY": os.environ["CHAMELEON_LEDGER_KEY"],
        },
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A fresh SQLite file that `chameleon init` created."""
    target = f"sqlite:///{tmp_path / 'pilot.db'}"
    assert _run("init", url=target).returncode == 0
    return target


def _held_order(url: str) -> uuid.UUID:
    """Drive one order of 20,000 to approval in instance `po-cli`: it is held for a pilot."""
    database = make_engine(url)
    try:
        engine = WorkflowEngine(sessionmaker(database), telemetry=TelemetryBuffer())
        instance = engine.create_instance("po-cli")
        engine.import_workflow(instance, PURCHASE_ORDER)
        agent = engine.register_actor(instance, "agent", "agent", "AI_AGENT")
        for role in ("split", "check_line", "approval"):
            engine.assign_role(agent, role)
        engine.register_actor(instance, "pat", "Pat", "PILOT")
        line = {"sku": "X", "quantity": 1, "unit_price": 20000.0}
        order = engine.instantiate(
            instance, "purchase_order", {"po_number": "P", "line_items": [line]}
        )
        for role, attributes in (
            ("split", None),
            ("check_line", {"line_total": 20000.0}),
            ("approval", None),
            ("approval", {"total": 20000.0}),
        ):
            view = engine.checkout(agent, role)
            assert view is not None
            engine.submit(agent, view.uow_id, attributes)
        assert engine.get_uow(order).status == "PENDING_PILOT_APPROVAL"
        engine.flush_telemetry()
        return order
    finally:
        database.dispose()


def test_the_purchase_order_demo_runs_clean(url: str) -> None:
    """The demo drives orders through split, join and the pilot, and verifies clean."""
    done = _run("demo", "--workflow", "purchase_order", "--uows", "4", url=url)
    assert done.returncode == 0, done.stderr
    assert "verification clean" in done.stdout
    assert "PILOT_APPROVAL" in done.stdout


def test_a_pilot_approves_from_the_command_line(url: str) -> None:
    """Queue, approve, the errors of a second approval and of a non-pilot, pause/resume."""
    order = _held_order(url)
    pilot = ("--instance", "po-cli", "--pilot", "pat")
    queue = _run("pilot", "queue", *pilot, url=url)
    assert queue.returncode == 0, queue.stderr
    assert str(order) in queue.stdout
    assert "large_order" in queue.stdout
    approve = ("pilot", "approve", str(order), *pilot, "--reasoning", "CFO agreed")
    done = _run(*approve, url=url)
    assert done.returncode == 0, done.stderr
    assert "COMPLETED" in done.stdout
    again = _run(*approve, url=url)
    assert again.returncode == 2
    assert again.stderr.startswith("error:")
    assert "not waiting for a pilot" in again.stderr
    assert "Traceback" not in again.stderr
    intruder = ("--instance", "po-cli", "--pilot", "agent")
    refused = _run("pilot", "pause", *intruder, "--reasoning", "x", url=url)
    assert refused.returncode == 2
    assert "is not a pilot" in refused.stderr
    paused = _run("pilot", "pause", *pilot, "--reasoning", "audit", url=url)
    assert paused.returncode == 0, paused.stderr
    assert "paused" in paused.stdout
    resumed = _run("pilot", "resume", *pilot, "--reasoning", "audit done", url=url)
    assert resumed.returncode == 0, resumed.stderr
    history = _run("history", str(order), url=url)
    assert "PILOT_APPROVAL" in history.stdout
    assert "CFO agreed" in history.stdout
    verified = _run("verify", url=url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
