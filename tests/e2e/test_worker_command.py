"""``chameleon worker`` as a team runs it: processes against a live server, both back ends."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from surface_world import (
    EXAMPLES,
    Live,
    World,
    chameleon_command,
    live_server,
    new_world,
    wait_until,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """Run one server per back end for this module's tests."""
    with live_server(request, tmp_path_factory) as running:
        yield running


@pytest.fixture
def world(live: Live) -> World:
    """Give the test its own instance with the invoice workflow and two agents."""
    return new_world(live, ("triager", "approver"))


def start_worker(world: World, actor: str, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """Start ``chameleon worker`` as an actor, from the examples directory (the handlers' home)."""
    env = {
        **os.environ,
        "CHAMELEON_SERVER_URL": world.server.url,
        "CHAMELEON_ACTOR_TOKEN": world.tokens[actor],
    }
    command = chameleon_command(
        "worker", "--heartbeat-interval", "0.5", "--max-idle", "0.3", *options
    )
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=EXAMPLES, env=env, stdout=out, stderr=out)


def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    """Send SIGTERM, expect exit status 0, and return what the worker printed."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, log.read_text()
    return log.read_text()


def status_of(world: World, uow_id: str) -> str:
    """Return a UOW's status as the admin reads it."""
    return world.admin.get_uow(uow_id).status


def test_two_workers_complete_every_invoice(world: World, tmp_path: Path) -> None:
    """A triage worker (function) and an approval worker (class, 2 at once) finish every UOW."""
    invoices = [
        world.invoice("triager", invoice_id=f"I-{n}", amount=100 * n, vendor="ACME")
        for n in range(1, 7)
    ]
    logs = tmp_path / "triage.log", tmp_path / "approval.log"
    triage = start_worker(
        world, "triager", logs[0], "--role", "triage", "--handler", "invoice_worker:triage"
    )
    approval = start_worker(
        world,
        "approver",
        logs[1],
        "--role",
        "approval",
        "--handler",
        "invoice_worker:Approver",
        "--concurrency",
        "2",
    )
    try:
        wait_until(
            lambda: all(status_of(world, u) == "COMPLETED" for u in invoices),
            what="every invoice to complete",
        )
    finally:
        printed = stop(triage, logs[0]), stop(approval, logs[1])
    assert "chameleon worker: 6 submitted, 0 failed, 0 refused (stopped by a signal)" in printed[0]
    assert "chameleon worker: 6 submitted, 0 failed, 0 refused (stopped by a signal)" in printed[1]
    assert all("Traceback" not in text for text in printed)
    for uow_id in invoices:
        history = world.admin.history(uow_id)
        assert history[-1].new_status == "COMPLETED"
        assert history[-1].reasoning.endswith("is within the limit")  # type: ignore[union-attr]
        assert world.admin.verify_uow(uow_id).ok


def test_a_failing_handler_fails_the_uow_and_remediation_brings_it_back(
    world: World, tmp_path: Path
) -> None:
    """No vendor: the worker fails the UOW with the handler's message; remediated, it completes."""
    uow_id = world.invoice("triager", invoice_id="I-9", amount=70)
    log = tmp_path / "worker.log"
    worker = start_worker(
        world, "triager", log, "--role", "triage", "--handler", "invoice_worker:triage"
    )
    try:
        wait_until(lambda: status_of(world, uow_id) == "FAILED", what="the UOW to fail")
        failure = world.admin.history(uow_id)[-1]
        assert (failure.new_status, failure.reasoning) == ("FAILED", "invoice I-9 names no vendor")
        with world.client("triager") as client:
            client.remediate(uow_id, {"vendor": "ACME"}, reasoning="vendor looked up")
        wait_until(
            lambda: world.admin.get_uow(uow_id).interaction == "ready_for_approval",
            what="the remediated UOW to pass triage",
        )
    finally:
        printed = stop(worker, log)
    assert "failed" in printed
    approval = start_worker(
        world,
        "approver",
        tmp_path / "a.log",
        "--role",
        "approval",
        "--handler",
        "invoice_worker:Approver",
    )
    try:
        wait_until(lambda: status_of(world, uow_id) == "COMPLETED", what="completion")
    finally:
        stop(approval, tmp_path / "a.log")
    assert world.admin.verify_uow(uow_id).ok


def test_worker_refuses_bad_setup_with_one_line(world: World, tmp_path: Path) -> None:
    """A role the actor does not hold, or a handler that does not import: exit 2, one line."""
    held_elsewhere = start_worker(
        world, "triager", tmp_path / "r.log", "--role", "nope", "--handler", "invoice_worker:triage"
    )
    assert held_elsewhere.wait(60) == 2
    assert (
        (tmp_path / "r.log")
        .read_text()
        .strip()
        .splitlines()[-1]
        .startswith("error: no role named 'nope'")
    )
    missing = start_worker(
        world, "triager", tmp_path / "m.log", "--role", "triage", "--handler", "nowhere:triage"
    )
    assert missing.wait(60) == 2
    assert (
        (tmp_path / "m.log")
        .read_text()
        .strip()
        .startswith("error: --handler 'nowhere:triage': cannot import nowhere")
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["worker", "--role", "triage", "--handler", "invoice_worker:triage"],
            {"CHAMELEON_SERVER_URL": "http://127.0.0.1:9"},
            "error: CHAMELEON_ACTOR_TOKEN is not set (the actor's bearer token)",
        ),
        (
            ["worker", "--role", "triage", "--handler", "invoice_worker:triage"],
            {"CHAMELEON_SERVER_URL": "localhost:8000", "CHAMELEON_ACTOR_TOKEN": "chm_x"},
            "error: server URL 'localhost:8000' must be http:// or https:// with a host, "
            "e.g. http://127.0.0.1:8000",
        ),
        (
            ["mcp", "--transport", "sse"],
            {"CHAMELEON_SERVER_URL": "http://127.0.0.1:9", "CHAMELEON_ACTOR_TOKEN": "chm_x"},
            "error: --transport 'sse': choose stdio or http",
        ),
    ],
)
def test_bad_settings_are_one_line_errors(
    args: list[str], env: dict[str, str], message: str
) -> None:
    """A missing token, a URL that is not http(s) or an unknown transport: exit 2, one line."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHAMELEON_")}
    done = subprocess.run(
        chameleon_command(*args),
        cwd=EXAMPLES,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr.strip()) == (2, "", message)
