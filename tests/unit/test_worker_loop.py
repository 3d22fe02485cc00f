"""The worker without a server: handlers loaded, results read, heartbeats, failures, stopping."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from chameleon_workflow.client import UOW, ChameleonClient, RetryPolicy
from chameleon_workflow.client.transport import Transport
from chameleon_workflow.errors import ConfigurationError, NotAuthorizedError, ServerError
from chameleon_workflow.worker import Result, Worker, WorkerOptions, load_handler, result_of

BASE = "http://chameleon.test"
ACTOR = "00000000-0000-4000-8000-00000000000a"


class FakeServer:
    """Answers the work routes for a queue of UOWs, recording every call (thread-safe)."""

    def __init__(self, waiting: int) -> None:
        self.lock = threading.Lock()
        self.waiting = [uuid.uuid4() for _ in range(waiting)]
        self.calls: list[tuple[str, str, Any]] = []
        self.beats = threading.Semaphore(0)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request."""
        action = request.url.path.rsplit("/", 1)[-1]
        body = json.loads(request.content) if request.content else None
        with self.lock:
            self.calls.append((action, request.url.path.split("/")[2], body))
            if action == "checkout":
                if not self.waiting:
                    return httpx.Response(204)
                return httpx.Response(200, json=self.uow(self.waiting.pop(0), "ACTIVE", 1))
        uow_id = uuid.UUID(request.url.path.split("/")[2])
        if action == "heartbeat":
            self.beats.release()
            return httpx.Response(200, json=self.uow(uow_id, "ACTIVE", 2))
        status = {"submit": "PENDING", "fail": "FAILED"}[action]
        return httpx.Response(200, json=self.uow(uow_id, status, 3))

    def uow(self, uow_id: uuid.UUID, status: str, version: int) -> dict[str, Any]:
        """Return a UOW answer."""
        return {
            "uow_id": str(uow_id),
            "instance_id": str(uuid.uuid4()),
            "workflow_id": str(uuid.uuid4()),
            "status": status,
            "interaction_id": None,
            "interaction": "submitted",
            "held_by": ACTOR if status == "ACTIVE" else None,
            "retry_count": 0,
            "version": version,
            "last_heartbeat_at": None,
            "attributes": {"amount": 7},
        }

    def actions(self, action: str) -> list[tuple[str, str, Any]]:
        """Return the calls of one action."""
        return [call for call in self.calls if call[0] == action]

    def connect(self) -> ChameleonClient:
        """Return a client of this fake server."""
        http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(self.handle))
        retry = RetryPolicy(attempts=1)
        return ChameleonClient(BASE, transport=Transport(BASE, "chm_x", retry=retry, http=http))


def options(**given: Any) -> WorkerOptions:
    """Return quick worker options."""
    return WorkerOptions(
        **{"role": "triage", "heartbeat_s": 0.02, "idle_min_s": 0.01, "idle_max_s": 0.02, **given}
    )


def test_results_are_read_from_what_a_handler_returns() -> None:
    """A Result, a mapping or None are what to submit; anything else is a TypeError."""
    assert result_of(None) == Result()
    assert result_of({"a": 1}) == Result(attributes={"a": 1})
    assert result_of(Result({"b": 2}, "why")) == Result({"b": 2}, "why")
    with pytest.raises(TypeError, match="not int"):
        result_of(3)
    with pytest.raises(TypeError, match="attributes are not JSON: Object of type set"):
        result_of({"tags": {1, 2}})
    with pytest.raises(TypeError, match="attributes are not JSON: Out of range float"):
        result_of(Result({"ratio": float("nan")}))


def test_handlers_load_as_function_or_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """module:function gives the function; module:Class builds it once and gives its handle."""
    (tmp_path / "handlers_for_test.py").write_text(
        "def work(uow):\n    return {'f': 1}\n\n"
        "class Worker:\n    def handle(self, uow):\n        return {'c': 2}\n\n"
        "class NoHandle:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_handler("handlers_for_test:work")(None) == {"f": 1}  # type: ignore[arg-type]
    assert load_handler("handlers_for_test:Worker")(None) == {"c": 2}  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="has no handle"):
        load_handler("handlers_for_test:NoHandle")
    with pytest.raises(ConfigurationError, match="has no missing"):
        load_handler("handlers_for_test:missing")
    with pytest.raises(ConfigurationError, match="cannot import no_such_module"):
        load_handler("no_such_module:work")
    with pytest.raises(ConfigurationError, match="is not module:function"):
        load_handler("just_a_module")
    sys.modules.pop("handlers_for_test", None)


def test_each_uow_is_submitted_with_the_handlers_result() -> None:
    """Three waiting UOWs are each checked out and submitted with the handler's attributes."""
    server = FakeServer(waiting=3)
    worker = Worker(
        server.connect,
        lambda uow: Result({"seen": uow.attributes["amount"]}, "checked"),
        options(max_uows=3),
    )
    stats = worker.run()
    assert (stats.submitted, stats.failed, stats.refused) == (3, 0, 0)
    bodies = [call[2] for call in server.actions("submit")]
    assert bodies == [{"reasoning": "checked", "attributes": {"seen": 7}}] * 3


def test_an_exception_fails_the_uow_with_its_message() -> None:
    """A handler that raises fails the UOW, the reason being the exception's message."""
    server = FakeServer(waiting=1)

    def broken(_: UOW) -> None:
        raise ValueError("vendor missing")

    stats = Worker(server.connect, broken, options(max_uows=1)).run()
    assert (stats.submitted, stats.failed) == (0, 1)
    assert [call[2] for call in server.actions("fail")] == [{"reason": "vendor missing"}]
    assert server.actions("submit") == []


def test_heartbeats_run_while_the_handler_works() -> None:
    """The handler waits for two heartbeats; the submit then uses the latest version seen."""
    server = FakeServer(waiting=1)

    def slow(_: UOW) -> Result:
        for _beat in range(2):
            assert server.beats.acquire(timeout=30), "no heartbeat while the handler ran"
        return Result(reasoning="slow but done")

    stats = Worker(server.connect, slow, options(max_uows=1)).run()
    assert stats.submitted == 1
    assert len(server.actions("heartbeat")) >= 2
    assert server.actions("submit")[0][2] == {"reasoning": "slow but done"}


def test_stop_finishes_the_held_uow_and_checks_out_nothing_more() -> None:
    """stop() while a handler runs: that UOW is submitted, the others stay waiting."""
    server = FakeServer(waiting=3)
    started, release = threading.Event(), threading.Event()

    def blocking(_: UOW) -> Result:
        started.set()
        assert release.wait(30)
        return Result(reasoning="finished after stop")

    worker = Worker(server.connect, blocking, options())
    runner = threading.Thread(target=worker.run)
    runner.start()
    assert started.wait(30)
    worker.stop()
    release.set()
    runner.join(30)
    assert not runner.is_alive()
    assert (worker.stats.submitted, len(server.actions("checkout")), len(server.waiting)) == (
        1,
        1,
        2,
    )


def test_concurrency_works_on_several_uows_at_once() -> None:
    """With concurrency 3, three handlers run at the same time (each waits for the others)."""
    server = FakeServer(waiting=3)
    together = threading.Barrier(3, timeout=30)

    def meet(_: UOW) -> Result:
        together.wait()
        return Result()

    stats = Worker(server.connect, meet, options(concurrency=3, max_uows=3)).run()
    assert stats.submitted == 3


def test_a_role_not_held_stops_the_worker_with_the_error() -> None:
    """A 403 on checkout is not retried forever: run() raises it."""

    def refuse(request: httpx.Request) -> httpx.Response:
        body = {"type": "urn:chameleon:problem:forbidden", "title": "Forbidden", "status": 403}
        return httpx.Response(403, json={**body, "detail": "actor does not hold role triage"})

    def connect() -> ChameleonClient:
        http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(refuse))
        return ChameleonClient(BASE, transport=Transport(BASE, "chm_x", http=http))

    with pytest.raises(NotAuthorizedError, match="does not hold role triage"):
        Worker(connect, lambda _: None, options()).run()


class RecordingStop(threading.Event):
    """A stop event whose waits return at once, recording each timeout; it sets itself after n."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []
        self.waits = waits

    def wait(self, timeout: float | None = None) -> bool:
        """Record the timeout instead of waiting."""
        self.timeouts.append(timeout)
        if len(self.timeouts) >= self.waits:
            self.set()
        return self.is_set()


def test_an_idle_worker_waits_longer_each_time_up_to_the_cap() -> None:
    """No work: the waits between checkouts double from the shortest up to --max-idle."""
    server = FakeServer(waiting=0)
    worker = Worker(server.connect, lambda _: None, options(idle_min_s=0.25, idle_max_s=2.0))
    stop = RecordingStop(waits=6)
    worker._stopping = stop
    worker.run()
    assert stop.timeouts == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert len(server.actions("checkout")) == 6


def test_idle_waits_start_again_at_the_shortest_once_work_comes() -> None:
    """After a UOW is found, the next idle wait is the shortest again."""
    server = FakeServer(waiting=0)
    worker = Worker(server.connect, lambda _: None, options(idle_min_s=0.25, idle_max_s=2.0))
    stop = RecordingStop(waits=5)
    worker._stopping = stop

    def arrive(timeout: float | None = None) -> bool:
        if len(stop.timeouts) == 2:
            server.waiting.append(uuid.uuid4())
        return RecordingStop.wait(stop, timeout)

    stop.wait = arrive  # type: ignore[method-assign]
    worker.run()
    assert stop.timeouts == [0.25, 0.5, 1.0, 0.25, 0.5]  # work arrived during the third wait
    assert worker.stats.submitted == 1


def test_a_bug_in_a_slot_stops_the_worker_with_an_error() -> None:
    """An unexpected exception in a slot (not the handler's) ends run() with a ServerError."""

    def connect() -> ChameleonClient:
        raise RuntimeError("cannot build the client")

    with pytest.raises(ServerError, match="a worker slot failed: RuntimeError: cannot build"):
        Worker(connect, lambda _: None, options()).run()


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://host", "http://", "not a url at all"])
def test_a_server_url_that_is_not_http_is_refused(url: str) -> None:
    """A URL without http(s) and a host is a ConfigurationError naming it, before any call."""
    with pytest.raises(ConfigurationError, match="server URL"):
        ChameleonClient(url, "chm_x")
