"""Background services survive any error of one iteration, report it, and recover."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from faultkit import Desk, backend_pid, serving, terminate, wait_for
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from chameleon_workflow.background import BackgroundService
from chameleon_workflow.engine.views import SweepResult
from chameleon_workflow.server.app import create_app
from chameleon_workflow.server.metrics import CountingBuffer, ServerMetrics
from chameleon_workflow.server.services import ZombieSweeper
from chameleon_workflow.server.settings import ServerSettings


def _lost_connection() -> sa_exc.OperationalError:
    """Build the raw error SQLAlchemy raises when the server closed the connection."""
    return sa_exc.OperationalError(
        "ROLLBACK", None, Exception("server closed the connection unexpectedly")
    )


class Flaky:
    """Stand in for ``sweep_zombies``: raise each error given, in turn, then succeed."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, *_: Any) -> SweepResult:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return SweepResult(0, 0, 0)


def test_sweeper_survives_a_raw_driver_error(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A raw OperationalError (and a bug) fail one sweep each; the thread sweeps on."""
    flaky = Flaky(_lost_connection(), RuntimeError("a bug"))
    monkeypatch.setattr(desk.engine, "sweep_zombies", flaky)
    sweeper = ZombieSweeper(desk.engine, ServerMetrics(CountingBuffer()), 0.01, 0.02)
    with caplog.at_level(logging.WARNING, logger="chameleon_workflow.server.services"):
        sweeper.start()
        try:
            assert wait_for(lambda: flaky.calls >= 4) is True
            health = sweeper.health()
        finally:
            sweeper.stop(5)
    assert (health.state, health.failures_total, health.consecutive_failures) == (
        "running",
        2,
        0,
    )
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("zombie-sweeper: iteration failed (1 in a row, retry in 0.01 s): ")
    assert "OperationalError" in lines[0]
    assert lines[1] == (
        "zombie-sweeper: iteration failed (2 in a row, retry in 0.02 s): RuntimeError: a bug"
    )
    assert sweeper.health().state == "stopped"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_sweeper_reclaims_through_a_connection_lost_mid_transaction(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """The reclaim's connection is terminated mid-transaction; the retry reclaims it once."""
    uow_id = desk.start()
    assert desk.engine.checkout(desk.worker, "triage") is not None
    original = desk.engine._steps.reclaim
    killed: list[int] = []

    def reclaim_after_losing_the_connection(session: Session, *args: Any) -> Any:
        if not killed:
            killed.append(backend_pid(session))
            terminate(database_url, killed[0])
        return original(session, *args)

    monkeypatch.setattr(desk.engine._steps, "reclaim", reclaim_after_losing_the_connection)
    sweeper = ZombieSweeper(desk.engine, ServerMetrics(CountingBuffer()), 3600)
    desk.clock.advance(timedelta(minutes=5).total_seconds())
    assert sweeper.iterate() is True
    assert len(killed) == 1
    assert desk.statuses(uow_id) == [
        (1, "PENDING"),
        (2, "ACTIVE"),
        (3, "ZOMBIED_SOFT"),
        (4, "PENDING"),
    ]
    assert sweeper.health().failures_total == 0


class Ticking(BackgroundService):
    """A service whose iterations fail while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__("ticking", 0.01, 0.05)
        self.failing = threading.Event()
        self.runs = 0

    def run_once(self) -> None:
        self.runs += 1
        if self.failing.is_set():
            raise ConnectionError("database down")


def test_backoff_doubles_up_to_the_cap_and_resets_on_success() -> None:
    """Failures wait 0.01, 0.02, 0.04, then the 0.05 s cap; one success resets the wait."""
    service = Ticking()
    service.failing.set()
    waits = []
    for _ in range(5):
        assert service.iterate() is False
        waits.append(service.backoff())
    assert waits == [0.01, 0.02, 0.04, 0.05, 0.05]
    service.failing.clear()
    assert service.iterate() is True
    assert service.backoff() == 0.01
    assert service.failures_total == 5


def test_health_and_metrics_name_the_failing_service(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/health is 503 naming the failing sweeper and its error; a metric counts the failures."""
    settings = ServerSettings(
        database_url=database_url,
        admin_token="a" * 32,
        sweep_interval_s=0.01,
        background_backoff_max_s=0.2,
    )
    app = create_app(settings)
    services = app.state.services
    flaky = Flaky(*[_lost_connection() for _ in range(1000)])
    monkeypatch.setattr(services.engine, "sweep_zombies", flaky)
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            assert wait_for(lambda: flaky.calls >= 3) is True
            health = client.get("/health")
            metrics = client.get("/metrics").text.splitlines()
            flaky.errors.clear()
            assert wait_for(lambda: services.background.sweeper.health().ok) is True
            recovered = client.get("/health")
    finally:
        services.engine.engine.dispose()
    assert health.status_code == 503
    body = health.json()
    assert (body["status"], body["database"], body["flusher_alive"]) == ("degraded", True, True)
    sweeper = body["services"][1]
    assert (sweeper["name"], sweeper["state"]) == ("zombie-sweeper", "failing")
    assert sweeper["last_error"] == "OperationalError: (builtins.Exception) server closed the " + (
        "connection unexpectedly"
    )
    assert sweeper["failures_total"] >= 3
    assert 'chameleon_background_service_up{service="zombie-sweeper"} 0.0' in metrics
    failed = [m for m in metrics if m.startswith("chameleon_background_iterations_failed_total")]
    assert (
        failed[0] == 'chameleon_background_iterations_failed_total{service="telemetry-flusher"} 0.0'
    )
    assert failed[1].startswith('chameleon_background_iterations_failed_total{service="zombie-')
    assert float(failed[1].rsplit(" ", 1)[1]) >= 3
    assert recovered.status_code == 200
    assert [s["state"] for s in recovered.json()["services"]] == ["running", "running"]
