"""A connection lost mid-transaction: retried when nothing was committed, else a clear error."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from faultkit import Desk, backend_pid, terminate, terminate_all, wait_for
from sqlalchemy.orm import Session

from chameleon_workflow.errors import DatabaseError, DatabaseUnavailableError
from chameleon_workflow.models import InteractionLog
from chameleon_workflow.testing import ServerProcess, setup_invoice

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


class Killer:
    """Wrap a step of the engine so that it first terminates its own backend ``times`` times."""

    def __init__(self, database_url: str, original: Any, times: int, after: bool = False) -> None:
        self.database_url = database_url
        self.original = original
        self.times = times
        self.after = after
        self.calls = 0

    def __call__(self, session: Session, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        pid = backend_pid(session)
        if not self.after and self.calls <= self.times:
            terminate(self.database_url, pid)
        result = self.original(session, *args, **kwargs)
        if self.after and self.calls <= self.times:
            terminate(self.database_url, pid)
        return result


def _claimed(desk: Desk) -> Any:
    uow_id = desk.start()
    view = desk.engine.checkout(desk.worker, "triage")
    assert view is not None
    assert view.uow_id == uow_id
    return uow_id


def test_a_transaction_broken_before_commit_is_retried_whole(
    desk: Desk, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """submit loses its connection mid-transaction once; the retry writes it exactly once."""
    uow_id = _claimed(desk)
    killer = Killer(database_url, desk.engine._steps.finish, times=1)
    monkeypatch.setattr(desk.engine._steps, "finish", killer)
    view = desk.engine.submit(desk.worker, uow_id, {"note": "x"}, "done")
    assert (view.status, view.interaction, killer.calls) == ("PENDING", "ready_for_approval", 2)
    assert desk.statuses(uow_id) == [(1, "PENDING"), (2, "ACTIVE"), (3, "ACTIVE"), (4, "PENDING")]
    desk.engine.flush_telemetry()
    with desk.factory() as session:
        kinds = Counter(str(row.log_type) for row in session.query(InteractionLog).all())
    # instantiate, checkout (its TTL gate) and submit (its router) each once: the broken
    # attempt left no telemetry behind (besides the stream's open row and the log seal)
    assert kinds == {
        "STATE_TRANSITION": 3,
        "GUARDIAN_DECISION": 2,
        "STREAM_OPENED": 1,
        "STREAM_CLOSED": 1,
    }


def test_a_connection_that_stays_lost_is_a_chameleon_error(
    desk: Desk, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every attempt loses its connection: DatabaseUnavailableError after 3, nothing written."""
    uow_id = _claimed(desk)
    killer = Killer(database_url, desk.engine._steps.finish, times=99)
    monkeypatch.setattr(desk.engine._steps, "finish", killer)
    with pytest.raises(DatabaseUnavailableError) as caught:
        desk.engine.submit(desk.worker, uow_id, {"note": "x"}, "done")
    assert killer.calls == 3
    assert str(caught.value) == "OperationalError: the connection is lost"
    assert desk.statuses(uow_id) == [(1, "PENDING"), (2, "ACTIVE")]


def test_a_connection_lost_during_commit_is_not_retried(
    desk: Desk, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection dies between the last statement and COMMIT: one try, outcome unknown."""
    uow_id = _claimed(desk)
    killer = Killer(database_url, desk.engine._steps.view, times=1, after=True)
    monkeypatch.setattr(desk.engine._steps, "view", killer)
    with pytest.raises(DatabaseError) as caught:
        desk.engine.heartbeat(desk.worker, uow_id)
    assert type(caught.value) is DatabaseError
    assert str(caught.value) == (
        "the connection was lost while committing: the outcome is unknown; "
        "read the state back before trying again"
    )
    assert killer.calls == 1
    assert desk.statuses(uow_id) == [(1, "PENDING"), (2, "ACTIVE")]


def test_server_answers_no_500_while_its_connections_are_terminated(
    database_url: str, tmp_path: Path
) -> None:
    """Backends killed under load: 2xx or 503 with Retry-After, one keep-alive connection."""
    busy = {
        "CHAMELEON_SWEEP_INTERVAL_S": "0.1",
        "CHAMELEON_TELEMETRY_FLUSH_INTERVAL_S": "0.1",
        "CHAMELEON_BACKGROUND_BACKOFF_MAX_S": "0.5",
    }
    server = ServerProcess(database_url, tmp_path / "server.log", busy).start()
    stop = threading.Event()
    killed = 0

    def kill_repeatedly() -> None:
        nonlocal killed
        while not stop.is_set():
            killed += terminate_all(database_url)
            time.sleep(0.02)

    statuses: list[int] = []
    ports: set[Any] = set()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            cast = setup_invoice(client, server.admin(), actors=1)
            auth = {"Authorization": f"Bearer {cast.tokens[0]}"}
            body = {"workflow": "invoice_approval", "attributes": {"invoice_id": "K", "amount": 5}}
            killer = threading.Thread(target=kill_repeatedly)
            killer.start()
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                for response in (
                    client.post(f"/instances/{cast.instance_id}/uows", json=body, headers=auth),
                    client.post("/roles/triage/checkout", headers=auth),
                ):
                    statuses.append(response.status_code)
                    stream = response.extensions["network_stream"]
                    ports.add(stream.get_extra_info("client_addr"))
                    if response.status_code == 503:
                        assert response.headers["retry-after"] == "1"
            stop.set()
            killer.join()
            report = client.get("/verify", headers=server.admin()).json()
            # The background services took their share of terminations and recovered.
            assert wait_for(lambda: client.get("/health").status_code == 200, 20) is True
            services = client.get("/health").json()["services"]
    finally:
        stop.set()
        assert server.stop_cleanly(), server.log()
    assert killed > 0
    assert set(statuses) <= {200, 201, 204, 503}, statuses
    assert statuses.count(201) > 0
    assert len(ports) == 1  # the keep-alive connection survived every answer
    assert (report["ok"], report["findings"]) == (True, [])
    assert [(s["name"], s["state"]) for s in services] == [
        ("telemetry-flusher", "running"),
        ("zombie-sweeper", "running"),
    ]
    log = server.log()
    assert log.count(" -> 503: ") == statuses.count(503)  # one line per failed request
    assert "Exception in ASGI application" not in log
