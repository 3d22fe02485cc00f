"""`chameleon serve` as an operator runs it: a real process on loopback, stopped by a signal."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from chameleon_workflow.db import normalize_url
from chameleon_workflow.testing import LOOPBACK, free_port

ADMIN_TOKEN = "e2e-admin-token-of-thirty-two-chars"
BASE_ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}


class Served:
    """One `chameleon serve` child process and its captured output."""

    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
        self.out = tmp_path / "serve.out"
        self.err = tmp_path / "serve.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chameleon_workflow", "serve", *args],
                stdout=out,
                stderr=err,
                env={**BASE_ENV, **env},
            )

    def wait_healthy(self, url: str, timeout_s: float = 60.0) -> None:
        """Poll /health until it answers 200; fail with the log if the process dies first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}: {self.stderr()}")
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"serve never became healthy: {self.stderr()}")

    def stop(self, signum: int) -> int:
        """Send a signal and return the exit status (killing it if it hangs)."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def stderr(self) -> str:
        """Return what the process wrote to stderr."""
        return self.err.read_text(errors="replace")


def _serve_args(database_url: str, port: int) -> list[str]:
    return ["--database-url", database_url, "--host", LOOPBACK, "--port", str(port)]


def _instances(database_url: str) -> list[str]:
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT name FROM instance_context")).scalars())
    finally:
        engine.dispose()


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chameleon_workflow", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**BASE_ENV, **(env or {})},
    )


def test_serve_answers_and_stops_cleanly_on_sigterm(database_url: str, tmp_path: Path) -> None:
    """serve migrates, answers /health and an admin call, and exits 0 after SIGTERM."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    env = {"CHAMELEON_ADMIN_TOKEN": ADMIN_TOKEN}
    if not database_url.startswith("sqlite"):  # no key file beside a PostgreSQL database
        env["CHAMELEON_LEDGER_KEY"] = os.environ["CHAMELEON_LEDGER_KEY"]
    served = Served(tmp_path, _serve_args(database_url, port), env)
    served.wait_healthy(url)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        health = client.get("/health").json()
        created = client.post("/instances", json={"name": "served"}, headers=admin)
        anonymous = client.post("/instances", json={"name": "nobody"})
    status = served.stop(signal.SIGTERM)
    log = served.stderr()
    assert (status, health["status"], health["database"]) == (0, "ok", True), log
    assert created.status_code == 201, created.text
    assert uuid.UUID(created.json()["id"]).version == 4
    assert anonymous.status_code == 401
    assert _instances(database_url) == ["served"]
    if database_url.startswith("sqlite"):  # no key in its environment: made beside the file
        key_file = Path(database_url.removeprefix("sqlite:///") + ".ledger-keys")
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "Application shutdown complete." in log
    assert log.splitlines()[-1] == "chameleon: stopped by SIGTERM"
    assert "Traceback" not in log
    assert "generated admin token" not in log


@pytest.mark.parametrize("backend", ["sqlite"])  # the token logic does not touch the database
def test_serve_generates_an_admin_token_and_stops_on_sigint(
    database_url: str, tmp_path: Path
) -> None:
    """Without CHAMELEON_ADMIN_TOKEN serve prints a generated one that works; SIGINT exits 0."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    served = Served(tmp_path, _serve_args(database_url, port), {})
    served.wait_healthy(url)
    found = re.search(r"^chameleon: generated admin token (\S+)$", served.stderr(), re.M)
    assert found is not None, served.stderr()
    verified = httpx.get(
        f"{url}/verify", headers={"Authorization": f"Bearer {found[1]}"}, timeout=30.0
    )
    status = served.stop(signal.SIGINT)
    assert status == 0, served.stderr()
    assert verified.status_code == 200
    assert (verified.json()["ok"], verified.json()["uows_checked"]) == (True, 0)
    assert served.stderr().splitlines()[-1] == "chameleon: stopped by SIGINT"


def test_serve_on_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    """A port someone else listens on makes serve exit 2 with a message, no traceback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(
            *_serve_args(f"sqlite:///{tmp_path / 'busy.db'}", port),
            env={"CHAMELEON_ADMIN_TOKEN": ADMIN_TOKEN},
        )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "error: the server could not start (see above)"
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_bad_settings(tmp_path: Path) -> None:
    """A malformed CHAMELEON_* variable exits 2 naming it, before anything is served."""
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    result = _run("--database-url", url, env={"CHAMELEON_SWEEP_INTERVAL_S": "0"})
    assert result.returncode == 2
    assert result.stderr == (
        "error: bad configuration: CHAMELEON_SWEEP_INTERVAL_S: Input should be greater than 0\n"
    )
    assert not (tmp_path / "bad.db").exists()


def test_serve_refuses_an_unsupported_database_url() -> None:
    """An unsupported database URL exits 2 with the engine's message."""
    result = _run("--database-url", "mysql://root@localhost/db")
    assert result.returncode == 2
    assert result.stderr == (
        "error: unsupported database URL 'mysql://root@localhost/db': "
        "use sqlite:///FILE or postgresql+psycopg://...\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "Invalid value for '--port'"),
        (["--admin-token", "x"], "No such option: --admin-token"),
    ],
)
def test_serve_refuses_bad_options(args: list[str], message: str) -> None:
    """An out-of-range port, or an admin token on the command line, is a usage error (exit 2)."""
    result = _run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
