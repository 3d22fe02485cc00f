"""The server benchmark: client threads drive a real server process over HTTP.

The server is the shipped test harness's ``ServerProcess`` (``python -m
chameleon_workflow.server`` on a free loopback port); ``drive`` runs client threads
that each instantiate an invoice and walk it through triage and approval (two checkout +
submit cycles) over ``http.client`` keep-alive connections; ``server_figures`` measures
requests per second and the p50/p99 latency of one checkout + submit cycle.
"""

from __future__ import annotations

import http.client
import math
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from chameleon_workflow.benchmarks.figures import Figure
from chameleon_workflow.testing import INVOICE_WALK, Cast, ServerProcess, setup_invoice

#: The cycle rate against the engine's own step rate, and the p99 against the p50.
CYCLE_TARGET = 0.5
SPREAD_TARGET = 4.0


@dataclass
class ClientLog:
    """What one client thread did: transitions it caused and every claim it won."""

    created: int = 0
    transitions: int = 0
    requests: int = 0
    conflicts: int = 0
    claims: list[tuple[str, str]] = field(default_factory=list)
    cycle_seconds: list[float] = field(default_factory=list)


class _Client:
    """One keep-alive HTTP/1.1 connection to the server, as light on the client side as can be.

    The clients run on the machine they measure, so their own CPU is taken from the
    server's: ``http.client`` costs a fraction of httpx per request.
    """

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=30
        )
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        """POST ``body`` as JSON; return the status and the decoded JSON body (None if empty)."""
        payload = b"" if body is None else orjson.dumps(body)
        self.conn.request("POST", path, body=payload, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, orjson.loads(data) if data else None

    def checked(self, path: str, body: Any = None) -> Any:
        """POST and return the JSON body; raise RuntimeError on an error status."""
        status, data = self.post(path, body)
        if status >= 300:
            raise RuntimeError(f"POST {path} -> {status}: {data}")
        return data

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _client_loop(url: str, cast: Cast, token: str, until: float, out: ClientLog) -> None:
    """Instantiate one invoice per round, then checkout + submit at each walking role."""
    invoice = {"workflow": "invoice_approval", "attributes": {"invoice_id": "B", "amount": 5}}
    client = _Client(url, token)
    try:
        while time.monotonic() < until:
            out.requests += 1
            client.checked(f"/instances/{cast.instance_id}/uows", invoice)
            out.created += 1
            for role in INVOICE_WALK:
                _cycle(client, role, out)
    finally:
        client.close()


def _cycle(client: _Client, role: str, out: ClientLog) -> None:
    started = time.perf_counter()
    status, claimed = client.post(f"/roles/{role}/checkout")
    out.requests += 1
    if status in (204, 409):  # empty queue, or lost a race: not a transition
        out.conflicts += status == 409
        return
    if status >= 300:
        raise RuntimeError(f"checkout as {role} -> {status}: {claimed}")
    out.transitions += 1
    out.claims.append((claimed["uow_id"], claimed["interaction"]))
    client.checked(f"/uows/{claimed['uow_id']}/submit", {"reasoning": "bench"})
    out.requests += 1
    out.transitions += 1
    out.cycle_seconds.append(time.perf_counter() - started)


def drive(url: str, cast: Cast, seconds: float) -> list[ClientLog]:
    """Run one client thread per actor token for ``seconds``; return each one's log."""
    until = time.monotonic() + seconds
    logs = [ClientLog() for _ in cast.tokens]
    errors: list[BaseException] = []

    def run(token: str, out: ClientLog) -> None:
        try:
            _client_loop(url, cast, token, until, out)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(t, log))
        for t, log in zip(cast.tokens, logs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return logs


def server_figures(
    url: str, *, clients: int = 4, seconds: float = 10, step_rate: float | None = None
) -> list[Figure]:
    """Measure requests/s and p50/p99 of the checkout + submit cycle against a real server.

    ``url`` is the database the server runs on (SQLite file or PostgreSQL); the server is a
    separate process on a free loopback port, the clients are threads of this process.
    ``step_rate``, the engine's own step rate on that back end in the same run, is the
    cycle rate's baseline (target: at least half of it, and a p99 within 4 times the p50).
    """
    log_path = Path(tempfile.gettempdir()) / f"chameleon-bench-{os.getpid()}.log"
    server = ServerProcess(url, log_path).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            cast = setup_invoice(client, server.admin(), clients)
        started = time.perf_counter()
        logs = drive(server.url, cast, seconds)
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    cycles = sorted(s for log in logs for s in log.cycle_seconds)
    conflicts = sum(log.conflicts for log in logs)
    note = f"{clients} clients for {elapsed:.1f} s, loopback; {conflicts} conflicts"
    requests = sum(log.requests for log in logs)
    rate = len(cycles) / elapsed
    p50, p99 = _percentile(cycles, 50) * 1000, _percentile(cycles, 99) * 1000
    spread = p99 / p50 if p50 else math.inf
    cycle = Figure("server checkout + submit", backend, rate, "cycles/s", notes=note)
    if step_rate:
        cycle = replace(
            cycle,
            baseline=step_rate,
            ratio=rate / step_rate,
            target=">= 0.5x step, p99 <= 4x p50",
            met=rate / step_rate >= CYCLE_TARGET and spread <= SPREAD_TARGET,
            notes=f"{note}; baseline: the engine step, 1 worker, same run; p99/p50 {spread:.1f}",
        )
    return [
        Figure("server requests", backend, requests / elapsed, "req/s", notes=note),
        cycle,
        Figure("  cycle latency p50", backend, p50, "ms", notes=note),
        Figure("  cycle latency p99", backend, p99, "ms", notes=note),
    ]


def _percentile(sorted_values: list[float], pct: int) -> float:
    if not sorted_values:
        return 0.0
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[pct - 1]
