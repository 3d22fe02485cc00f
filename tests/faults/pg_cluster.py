"""A private PostgreSQL cluster the fault tests start, stop, restart and kill themselves.

``initdb`` and ``pg_ctl`` run on a free loopback port in a temporary folder. PostgreSQL
refuses to run as root, so under root (CI) every command runs as the ``postgres`` user
(``runuser``) and the folder belongs to it. The binaries are found through
``CHAMELEON_PG_BINDIR``, then ``initdb`` on the PATH, then the newest
``/usr/lib/postgresql/*/bin``. Without them the tests that need the cluster are skipped,
or FAIL when ``CHAMELEON_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from chameleon_workflow.db import make_engine
from chameleon_workflow.schema import upgrade_database
from chameleon_workflow.testing import free_port

#: Durability is not under test (the database is stopped, never the machine): skip fsync.
SERVER_OPTIONS = "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"


def find_bindir() -> Path | None:
    """Return the folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    given = os.environ.get("CHAMELEON_PG_BINDIR")
    if given:
        return Path(given) if (Path(given) / "initdb").is_file() else None
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class Cluster:
    """One private cluster: its binaries, folder and port, and the database of the test."""

    bindir: Path
    folder: Path
    port: int
    run_as: str | None
    database_url: str = ""
    databases: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        """Return the data directory."""
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        """Return a SQLAlchemy URL of one database of the cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *command: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary (as the postgres user under root); raise on failure."""
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self.run_as is not None:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
            cwd=self.folder,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr}")
        return result

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} {SERVER_OPTIONS}"
        log = str(self.folder / "server.log")
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean, ends sessions) or ``immediate`` (like a crash)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """Tell whether the server is up."""
        try:
            self.run("pg_ctl", "-D", str(self.data), "status")
        except RuntimeError:
            return False
        return True

    def ensure_running(self) -> None:
        """Start the server unless it runs."""
        if not self.running():
            self.start()

    def new_database(self) -> str:
        """Create and migrate a fresh database; it becomes ``database_url``."""
        name = f"faults_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        self.database_url = self.url(name)
        engine = make_engine(self.database_url)
        try:
            upgrade_database(engine)
        finally:
            engine.dispose()
        return self.database_url

    def destroy(self) -> None:
        """Stop the server at once and remove its folder."""
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster() -> Cluster:
    """Create and start a private cluster; skip (or FAIL when required) without PostgreSQL."""
    required = os.environ.get("CHAMELEON_REQUIRE_POSTGRES", "") == "1"
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found: set CHAMELEON_PG_BINDIR"
        if required:
            pytest.fail(message + " (CHAMELEON_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    run_as = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="chameleon-pg-"))
    if run_as is not None:
        owner = pwd.getpwnam(run_as)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(bindir, folder, free_port(), run_as)
    try:
        cluster.run(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if required:
            pytest.fail(f"could not start a private PostgreSQL cluster: {exc}")
        pytest.skip(f"could not start a private PostgreSQL cluster: {exc}")
    return cluster
