"""Drive a real server process over HTTP: the load test's clients and the server benchmark.

``ServerProcess`` runs ``python -m chameleon_workflow.server`` on a free loopback port;
``drive`` runs client threads that each instantiate an invoice and walk it through
triage and approval (two checkout + submit cycles); ``server_figures`` measures
requests per second and the p50/p99 latency of one checkout + submit cycle.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chameleon_workflow.benchmarks.runner import Figure

INVOICE_YAML = Path(__file__).parent.parent / "examples" / "invoice_approval.yaml"
LOOPBACK = "127.0.0.1"
WALK = ("triage", "approval")


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A ``python -m chameleon_workflow.server`` child process on a loopback port."""

    def __init__(
        self, database_url: str, log_path: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.admin_token = secrets.token_urlsafe(24)
        self.log_path = log_path
        self._env = {
            **os.environ,
            "CHAMELEON_DATABASE_URL": database_url,
            "CHAMELEON_ADMIN_TOKEN": self.admin_token,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        """Start the process and wait until /health answers."""
        command = [sys.executable, "-m", "chameleon_workflow.server", "--host", LOOPBACK]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*command, "--port", str(self.port)], stdout=log, stderr=log, env=self._env
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout_s} s: {self.log()}")

    def stop(self, timeout_s: float = 30.0) -> int:
        """Send SIGTERM and wait for the exit status (SIGKILL after the timeout)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def stop_cleanly(self) -> bool:
        """Stop with SIGTERM; tell whether the app shut down gracefully (lifespan completed)."""
        status = self.stop()
        # uvicorn re-raises the signal it handled once shutdown is done: -SIGTERM is normal.
        return status in (0, -signal.SIGTERM) and "Application shutdown complete." in self.log()

    def log(self) -> str:
        """Return what the server wrote to stdout and stderr."""
        return self.log_path.read_text(errors="replace")

    def admin(self) -> dict[str, str]:
        """Return the admin's authorization header."""
        return {"Authorization": f"Bearer {self.admin_token}"}


@dataclass(frozen=True, slots=True)
class Cast:
    """An instance with the invoice workflow and actors holding every walking role."""

    instance_id: str
    actor_ids: tuple[str, ...]
    tokens: tuple[str, ...]


def setup_invoice(client: httpx.Client, admin: Mapping[str, str], actors: int) -> Cast:
    """Create an instance, import the invoice workflow and register ``actors`` actors."""
    name = f"bench-{secrets.token_hex(4)}"
    instance = _ok(client.post("/instances", json={"name": name}, headers=admin))["id"]
    body = {"instance": instance, "yaml": INVOICE_YAML.read_text()}
    _ok(client.post("/workflows", json=body, headers=admin))
    tokens, actor_ids = [], []
    for n in range(actors):
        actor = {"instance_id": instance, "identity_key": f"worker-{n}"}
        created = _ok(
            client.post(
                "/actors",
                json={**actor, "name": f"Worker {n}", "actor_type": "AI_AGENT"},
                headers=admin,
            )
        )
        for role in WALK:
            _ok(
                client.post(
                    f"/actors/{created['actor_id']}/roles", json={"role": role}, headers=admin
                )
            )
        tokens.append(created["token"])
        actor_ids.append(created["actor_id"])
    return Cast(instance, tuple(actor_ids), tuple(tokens))


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url} -> {response.status_code}: {response.text}")
    return response.json()


@dataclass
class ClientLog:
    """What one client thread did: transitions it caused and every claim it won."""

    created: int = 0
    transitions: int = 0
    requests: int = 0
    conflicts: int = 0
    claims: list[tuple[str, str]] = field(default_factory=list)
    cycle_seconds: list[float] = field(default_factory=list)


def _client_loop(url: str, cast: Cast, token: str, until: float, out: ClientLog) -> None:
    """Instantiate one invoice per round, then checkout + submit at each walking role."""
    headers = {"Authorization": f"Bearer {token}"}
    invoice = {"workflow": "invoice_approval", "attributes": {"invoice_id": "B", "amount": 5}}
    with httpx.Client(base_url=url, headers=headers, timeout=30.0) as client:
        while time.monotonic() < until:
            out.requests += 1
            _ok(client.post(f"/instances/{cast.instance_id}/uows", json=invoice))
            out.created += 1
            for role in WALK:
                _cycle(client, role, out)


def _cycle(client: httpx.Client, role: str, out: ClientLog) -> None:
    started = time.perf_counter()
    claimed = client.post(f"/roles/{role}/checkout")
    out.requests += 1
    if claimed.status_code in (204, 409):  # empty queue, or lost a race: not a transition
        out.conflicts += claimed.status_code == 409
        return
    uow = _ok(claimed)
    out.transitions += 1
    out.claims.append((uow["uow_id"], uow["interaction"]))
    submitted = client.post(f"/uows/{uow['uow_id']}/submit", json={"reasoning": "bench"})
    out.requests += 1
    _ok(submitted)
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


def server_figures(url: str, *, clients: int = 4, seconds: float = 10) -> list[Figure]:
    """Measure requests/s and p50/p99 of the checkout + submit cycle against a real server.

    ``url`` is the database the server runs on (SQLite file or PostgreSQL); the server is a
    separate process on a free loopback port, the clients are threads of this process.
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
    return [
        Figure("server requests", backend, requests / elapsed, "req/s", notes=note),
        Figure("server checkout + submit", backend, len(cycles) / elapsed, "cycles/s", notes=note),
        Figure("  cycle latency p50", backend, _percentile(cycles, 50) * 1000, "ms", notes=note),
        Figure("  cycle latency p99", backend, _percentile(cycles, 99) * 1000, "ms", notes=note),
    ]


def _percentile(sorted_values: list[float], pct: int) -> float:
    if not sorted_values:
        return 0.0
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[pct - 1]
