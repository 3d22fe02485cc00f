"""docs/cli.md's examples run as written: every `chameleon` line of its bash blocks, in order.

They run against a fresh SQLite database in a scratch folder holding the examples, with
``$UOW`` (a UOW the demo completed) and ``$HISTORY_ID`` (one of its history rows) filled
in; ``serve`` runs until it answers /health, then gets SIGTERM; ``db roles`` runs on a
PostgreSQL database, under role names of its own that are dropped afterwards.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = ROOT / "docs" / "cli.md"
EVERY_COMMAND = {
    "--version", "--help", "init", "db upgrade", "db roles", "keys rotate", "keys export",
    "instances", "instances create", "import", "workflows", "actors", "demo", "uows",
    "history", "logs", "verify", "checkpoint", "prove", "export", "serve", "benchmark",
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
    assert len(group) == 17  # a new command needs an example above, and this count updated


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


def test_cli_md_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example exits 0 on SQLite (``db roles`` excepted: see the next test)."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAMELEON_DATABASE_URL", f"sqlite:///{tmp_path / 'chameleon.db'}")
    # As a new user runs them: the ledger key in a file beside the database, made by init.
    for name in (
        "CHAMELEON_LEDGER_KEY",
        "CHAMELEON_HOST",
        "CHAMELEON_PORT",
        "CHAMELEON_ADMIN_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    values: dict[str, str] = {}
    ran = 0
    for line in _examples():
        if _name(line) == "db roles":
            continue
        if "$UOW" in line or "$HISTORY_ID" in line:
            values = values or _ids()
        filled = line
        for variable, value in values.items():
            filled = filled.replace(f"${variable}", value)
        args = shlex.split(filled)[1:]
        if args[0] == "serve":
            _serve(args)
        else:
            _invoke(args)
        ran += 1
    assert ran == len(_examples()) - 1


def _ids() -> dict[str, str]:
    page = json.loads(_invoke(["uows", "--status", "COMPLETED", "--limit", "1", "--json"]))
    uow = page["uows"][0]["uow_id"]
    history = json.loads(_invoke(["history", uow, "--json"]))
    return {"UOW": uow, "HISTORY_ID": history["entries"][0]["history_id"]}


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
