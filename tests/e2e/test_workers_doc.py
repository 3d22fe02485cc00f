"""docs/workers.md runs as written against a live server, on both back ends."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from surface_world import REPO, Live, live_server, new_world, wait_until

DOC = REPO / "docs" / "workers.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    """Return the doc's fenced blocks as (language, text), in order."""
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def python_with_output() -> list[tuple[str, str | None]]:
    """Pair each Python block with the text block right after it (its printed output)."""
    found = blocks()
    pairs = []
    for n, (language, text) in enumerate(found):
        if language == "python":
            after = found[n + 1] if n + 1 < len(found) else ("", "")
            pairs.append((text, after[1] if after[0] == "text" else None))
    return pairs


def chameleon_lines(subcommand: str) -> list[list[str]]:
    """Return the arguments of every ``chameleon SUBCOMMAND`` line in the doc's bash blocks."""
    found = []
    for language, text in blocks():
        for line in text.splitlines() if language == "bash" else ():
            words = shlex.split(line, comments=True)
            if words[:2] == ["chameleon", subcommand]:
                found.append(words[1:])
    return found


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """Run one server per back end for this module's tests."""
    with live_server(request, tmp_path_factory) as running:
        yield running


def test_every_python_example_prints_what_the_doc_shows(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Python block runs in order (one namespace) and prints exactly the text after it."""
    monkeypatch.chdir(REPO)
    served = live.server
    monkeypatch.setenv("CHAMELEON_SERVER_URL", served.url)
    monkeypatch.setenv("CHAMELEON_ADMIN_TOKEN", served.admin_token)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    namespace: dict[str, Any] = {}
    pairs = python_with_output()
    assert len(pairs) == 6
    for code, shown in pairs:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, str(DOC), "exec"), namespace)
        if shown is not None:
            assert printed.getvalue() == shown
    assert printed.getvalue() == "COMPLETED\n"
    assert live.admin.verify(namespace["instance"]).ok


def test_the_worker_commands_complete_every_invoice(live: Live, tmp_path: Path) -> None:
    """The doc's worker commands, run as shown, complete invoices; a failed one is remediated."""
    commands = chameleon_lines("worker")
    assert [c[:3] for c in commands] == [
        ["worker", "--role", "triage"],
        ["worker", "--role", "approval"],
    ]
    world = new_world(live)
    invoices = [
        world.invoice("agent", invoice_id=f"W-{n}", amount=n * 10, vendor="V") for n in (1, 2, 3)
    ]
    broken = world.invoice("agent", invoice_id="W-9", amount=5)
    env = {
        **os.environ,
        "CHAMELEON_SERVER_URL": world.server.url,
        "CHAMELEON_ACTOR_TOKEN": world.tokens["agent"],
    }
    logs = [tmp_path / f"worker-{n}.log" for n in range(len(commands))]
    workers = []
    for args, log in zip(commands, logs, strict=True):
        with log.open("wb") as out:
            command = [sys.executable, "-m", "chameleon_workflow", *args]
            workers.append(
                subprocess.Popen(command, cwd=REPO / "examples", env=env, stdout=out, stderr=out)
            )
    try:
        wait_until(lambda: world.admin.get_uow(broken).status == "FAILED", what="the failure")
        with world.client("agent") as client:
            client.remediate(broken, {"vendor": "ACME"}, reasoning="vendor looked up")
        wait_until(
            lambda: all(world.admin.get_uow(u).status == "COMPLETED" for u in [*invoices, broken]),
            what="every invoice to complete",
        )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(60) for worker in workers]
    assert codes == [0, 0], [log.read_text() for log in logs]
    assert "chameleon worker: 4 submitted, 1 failed, 0 refused" in logs[0].read_text()
    assert "chameleon worker: 4 submitted, 0 failed, 0 refused" in logs[1].read_text()


def test_the_mcp_host_configuration_starts_the_server(live: Live) -> None:
    """The doc's JSON host configuration, with a real URL and token, serves the eight tools."""
    (config,) = [json.loads(text) for language, text in blocks() if language == "json"]
    entry = config["mcpServers"]["chameleon"]
    assert chameleon_lines("mcp") == [
        ["mcp", "--transport", "http", "--host", "127.0.0.1", "--port", "8765"]
    ]
    world = new_world(live)
    env = {
        **entry["env"],
        "CHAMELEON_SERVER_URL": world.server.url,
        "CHAMELEON_ACTOR_TOKEN": world.tokens["agent"],
    }
    command = str(Path(sys.executable).parent / entry["command"])
    params = StdioServerParameters(command=command, args=entry["args"], env=env)

    async def tools() -> set[str]:
        async with Client(params) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    assert asyncio.run(tools()) == {
        "checkout",
        "get_uow",
        "history",
        "submit",
        "fail",
        "heartbeat",
        "remediate",
        "verify_uow",
    }
