"""docs/cli.md's examples run as written: every `chameleon` line of its bash blocks, in order.

They run against a fresh database of each back end in a scratch folder holding the
examples, with ``$UOW`` (a UOW the demo completed) and ``$HISTORY_ID`` (one of its history
rows) filled in. The pilot examples run on orders built in instance ``orders`` just before
them (held for approval, asking a question, refused by a guardian). ``serve`` runs until
it answers /health, then gets SIGTERM. ``worker`` and ``mcp`` run against a live server
with an actor and an invoice of their own: the worker stops after its one UOW, the MCP
server answers one tool call, then gets SIGTERM. ``db roles`` runs on a PostgreSQL
database, under role names of its own that are dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.client import ChameleonClient
from chameleon_workflow.db import make_engine
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.testing import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = ROOT / "docs" / "cli.md"
EVERY_COMMAND = {
    "--version", "--help", "init", "db upgrade", "db roles", "keys rotate", "keys export",
    "instances", "instances create", "import", "workflows", "actors", "demo", "uows",
    "history", "logs", "verify", "checkpoint", "prove", "export", "redact", "serve", "benchmark",
    "pilot queue", "pilot approve", "pilot reject", "pilot answer", "pilot waive",
    "pilot pause", "pilot resume", "worker", "mcp", "archive", "archive restore",
}  # fmt: skip


def _examples() -> list[str]:
    """Return every `chameleon ...` line of the page's bash blocks, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", CLI_MD.read_text(encoding="utf-8"), re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("chameleon ")]


def _name(line: str) -> str:
    words = shlex.split(line)[1:]
    two = " ".join(words[:2])
    return two if two in EVERY_COMMAND else words[0]


def test_every_command_has_an_example() -> None:
    """The page shows each command of the CLI at least once."""
    assert {_name(line) for line in _examples()} == EVERY_COMMAND
    group = app.registered_commands + app.registered_groups
    assert len(group) == 22  # a new command needs an example above, and this count updated


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert "Traceback" not in result.output
    assert result.exit_code == 0, f"chameleon {shlex.join(args)}:\n{result.output}"
    return result.stdout


def _serve(args: list[str]) -> None:
    port = str(free_port())
    args = [port if a == "8080" else a for a in args]
    log = Path("serve.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from chameleon_workflow.cli import main; main()", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while not healthy and time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                healthy = answer.status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
        assert healthy, log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


ORDERS = "orders"
PURCHASE_ORDER_YAML = ROOT / "examples" / "purchase_order.yaml"
INVOICE_YAML = ROOT / "examples" / "invoice_approval.yaml"


def test_cli_md_examples_run(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example exits 0 on a fresh database (``db roles`` excepted: see the next test)."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAMELEON_DATABASE_URL", empty_database_url)
    # As a new user runs them: the ledger key made by init, beside a SQLite database or
    # (PostgreSQL) in the files the settings name.
    for name in (
        "CHAMELEON_LEDGER_KEY",
        "CHAMELEON_LEDGER_KEY_FILE",
        "CHAMELEON_SIGNING_KEY_FILE",
        "CHAMELEON_HOST",
        "CHAMELEON_PORT",
        "CHAMELEON_ADMIN_TOKEN",
        "CHAMELEON_AUDITOR_TOKEN",
        "CHAMELEON_SERVER_URL",
        "CHAMELEON_ACTOR_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    if not empty_database_url.startswith("sqlite"):
        monkeypatch.setenv("CHAMELEON_LEDGER_KEY_FILE", str(tmp_path / "ledger-keys.json"))
        monkeypatch.setenv("CHAMELEON_SIGNING_KEY_FILE", str(tmp_path / "signing-key.pem"))
    values: dict[str, str] = {}
    ran = 0
    with ExitStack() as stack:
        live: Live | None = None
        for line in _examples():
            args = shlex.split(line)[1:]
            if args[0] == "db" and args[1:2] == ["roles"]:
                continue
            _fill(line, args, values, empty_database_url)
            for variable, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
                args = [arg.replace(f"${variable}", value) for arg in args]
            if args[0] == "serve":
                _serve(args)
            elif args[0] in ("worker", "mcp"):
                live = live or stack.enter_context(_live(empty_database_url, tmp_path))
                (_worker if args[0] == "worker" else _mcp)(args, live, tmp_path)
            else:
                output = _invoke(args)
                if args[0] == "archive" and "--json" in args:
                    values["SEGMENT"] = json.loads(output)["segments"][0]
                if args[0] == "pilot":
                    _check_pilot(args, output, values)
            ran += 1
    assert ran == len(_examples()) - 1


def _fill(line: str, args: list[str], values: dict[str, str], url: str) -> None:
    """Find the values the line names that are not known yet."""
    if ("$UOW" in line or "$HISTORY_ID" in line) and "UOW" not in values:
        values.update(_ids())
    if "$NOW" in line:
        values["NOW"] = datetime.now(UTC).isoformat()
    if args[0] == "pilot" and "ORDER" not in values:
        values.update(_orders(url))


def _ids() -> dict[str, str]:
    # An invoice, which has the vendor the redact example erases.
    listing = ["uows", "--status", "COMPLETED", "--workflow", "invoice_approval", "--limit", "1"]
    page = json.loads(_invoke([*listing, "--json"]))
    uow = page["uows"][0]["uow_id"]
    history = json.loads(_invoke(["history", uow, "--json"]))
    return {"UOW": uow, "HISTORY_ID": history["entries"][0]["history_id"]}


def _orders(url: str) -> dict[str, str]:
    """Build instance ``orders`` with a pilot ``pat`` and the UOWs the pilot examples name."""
    database = make_engine(url)
    try:
        engine = WorkflowEngine(sessionmaker(database), telemetry=TelemetryBuffer())
        instance = engine.create_instance(ORDERS)
        engine.import_workflow(instance, PURCHASE_ORDER_YAML.read_text(encoding="utf-8"))
        agent = engine.register_actor(instance, "agent", "Order agent", "AI_AGENT")
        for role in ("split", "check_line", "approval"):
            engine.assign_role(agent, role)
        engine.register_actor(instance, "pat", "Pat", "PILOT")

        def order(number: str, *prices: float) -> uuid.UUID:
            lines = [
                {"sku": f"SKU-{n}", "quantity": 1, "unit_price": price}
                for n, price in enumerate(prices)
            ]
            attributes = {"po_number": number, "currency": "EUR", "line_items": lines}
            root = engine.instantiate(instance, "purchase_order", attributes)
            split = engine.checkout(agent, "split")
            assert split is not None
            assert split.uow_id == root
            engine.submit(agent, root, reasoning="one child per line item")
            return root

        def checked_line() -> tuple[uuid.UUID, float]:
            line = engine.checkout(agent, "check_line")
            assert line is not None
            return line.uow_id, line.attributes["line_item"]["unit_price"]

        def held(number: str, total: float) -> uuid.UUID:
            root = order(number, total)
            child, _ = checked_line()
            engine.submit(agent, child, {"line_total": total}, "priced from the list")
            for uow_id, changes in ((child, None), (root, {"total": total})):
                view = engine.checkout(agent, "approval")
                assert view is not None
                assert view.uow_id == uow_id
                engine.submit(agent, uow_id, changes, "approved")
            assert engine.get_uow(root).status == "PENDING_PILOT_APPROVAL"
            return root

        ids = {"ORDER": held("PO-1", 20_000.0), "BIG_ORDER": held("PO-2", 60_000.0)}
        # A credit line and a line still being checked (ACTIVE): the join keeps waiting.
        order("PO-3", -150.0, 400.0)
        credit = None
        for _ in range(2):
            line, price = checked_line()
            if price < 0:
                credit = line
                engine.submit(agent, line, {"line_total": price}, "priced from the list")
        assert credit is not None
        assert engine.checkout(agent, "approval") is None  # the gate refuses the credit line
        assert engine.get_uow(credit).status == "FAILED"
        asked = engine.instantiate(instance, "purchase_order", {"po_number": "PO-4"})
        view = engine.checkout(agent, "split")
        assert view is not None
        assert view.uow_id == asked
        engine.oversight.ask(agent, asked, "Should one supplier's lines be merged?")
        engine.flush_telemetry()
        return {**{k: str(v) for k, v in ids.items()}, "REFUSED": str(credit), "ASKED": str(asked)}
    finally:
        database.dispose()


def _check_pilot(args: list[str], output: str, values: dict[str, str]) -> None:
    """What each pilot example printed shows that it did its work."""
    verb, target = args[1], args[2] if not args[2].startswith("--") else ""
    expected = {
        "queue": f"3 waiting for a pilot, oldest first {values['ORDER']} approval",
        "approve": f"approved: UOW {target} is COMPLETED in ready_for_approval",
        "reject": f"rejected: UOW {target} is PENDING in needs_attention",
        "answer": f"answered: UOW {target} is ACTIVE in submitted",
        "waive": f"waived: UOW {target} is PENDING in line_checked",
        "pause": "instance 'orders' paused; 2 waiting UOWs paused",
        "resume": "instance 'orders' resumed; 2 UOWs waiting again",
    }[verb]
    words = " ".join(output.split())
    assert expected in words, output
    if verb == "queue":
        assert f"{values['BIG_ORDER']} approval" in words, output
        assert f"{values['ASKED']} clarification" in words, output
        assert "question: Should one supplier's lines be merged?" in words, output


@dataclass(frozen=True)
class Live:
    """A server on the examples' database, an invoice and the token of an actor for it."""

    server: ServerProcess
    token: str
    uow_id: str

    def env(self) -> dict[str, str]:
        """The environment `worker` and `mcp` run in, as the page's `export` lines set it."""
        return {
            **os.environ,
            "CHAMELEON_SERVER_URL": self.server.url,
            "CHAMELEON_ACTOR_TOKEN": self.token,
        }


@contextmanager
def _live(url: str, tmp_path: Path) -> Iterator[Live]:
    """Run a server on the examples' database with an invoice and a triage actor for it."""
    server = ServerProcess(url, tmp_path / "live-server.log").start()
    try:
        with ChameleonClient(server.url, server.admin_token) as admin:
            instance = admin.create_instance("invoices")
            admin.import_workflow(instance, INVOICE_YAML.read_text(encoding="utf-8"))
            actor = admin.register_actor(instance, "triager", "Triager", "AI_AGENT")
            admin.assign_role(actor.actor_id, "triage")
        assert actor.token is not None
        with ChameleonClient(server.url, actor.token) as client:
            attributes = {"invoice_id": "INV-1", "amount": 250, "vendor": "ACME"}
            uow_id = client.create_uow(instance, "invoice_approval", attributes)
        yield Live(server, actor.token, str(uow_id))
    finally:
        clean = server.stop_cleanly()
    assert clean, server.log()
    assert "Traceback" not in server.log()


def _worker(args: list[str], live: Live, tmp_path: Path) -> None:
    """Run the worker from the examples folder; it triages the invoice and stops by itself."""
    done = subprocess.run(
        [sys.executable, "-m", "chameleon_workflow", *args],
        cwd=tmp_path / "examples",
        env=live.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chameleon worker: 1 submitted, 0 failed, 0 refused" in done.stderr, done.stderr
    with ChameleonClient(live.server.url, live.token) as client:
        reasons = [entry.reasoning for entry in client.history(live.uow_id)]
    assert "vendor ACME is known" in reasons, reasons


def _mcp(args: list[str], live: Live, tmp_path: Path) -> None:
    """Serve MCP over HTTP, read the invoice through it as the actor, then send SIGTERM."""
    port = free_port()
    args = [str(port) if a == "8765" else a for a in args]
    log = tmp_path / "mcp.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "chameleon_workflow", *args],
            env=live.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    async def read_uow() -> Any:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {live.token}"})
        endpoint = f"http://127.0.0.1:{port}/mcp"
        async with http, Client(streamable_http_client(endpoint, http_client=http)) as client:
            return await client.call_tool("get_uow", {"uow_id": live.uow_id})

    try:
        deadline = time.monotonic() + 60
        while not _listening(port) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert _listening(port), log.read_text()
        result = asyncio.run(read_uow())
        assert not result.is_error, result.content
        assert result.structured_content["uow_id"] == live.uow_id, result.structured_content
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_cli_md_db_roles_example_runs(database_url: str) -> None:
    """The ``db roles`` example runs on PostgreSQL (under role names of this test's own)."""
    (line,) = [line for line in _examples() if _name(line) == "db roles"]
    suffix = uuid.uuid4().hex[:8]
    owner, application = f"chameleon_owner_{suffix}", f"chameleon_app_{suffix}"
    line = line.replace("$PG_URL", database_url)
    line = line.replace("chameleon_owner", owner).replace("chameleon_app", application)
    try:
        _invoke(shlex.split(line)[1:])
    finally:
        admin_url = database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for role in (application, owner):
                admin.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
                admin.execute(f'DROP OWNED BY "{role}"')
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')
