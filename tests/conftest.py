"""Fixtures shared by every test: one contract suite, two back ends.

PostgreSQL comes from ``CHAMELEON_TEST_POSTGRES_URL`` (a server URL whose user may create
databases). Without it the PostgreSQL half is skipped with a message; with
``CHAMELEON_REQUIRE_POSTGRES=1`` (CI) a missing or unreachable server fails the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import Settings, scratch_database_name
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.schema import upgrade_database
from pg_clones import PgClones

#: The ledger key every test links and verifies under, unless it sets its own: a fixed key,
#: so that subprocesses (the CLI, the server) find the same one through the environment.
TEST_LEDGER_KEY = "7e57" * 16
os.environ["CHAMELEON_LEDGER_KEY"] = TEST_LEDGER_KEY
os.environ.pop("CHAMELEON_LEDGER_KEY_FILE", None)

#: Hypothesis' 200 ms deadline per example is a timing assertion, which tests never make: on a
#: busy shared machine (or two xdist workers on two cores) it failed property tests whose
#: properties held. Each property still runs its full number of examples.
settings.register_profile("chameleon", deadline=None)
settings.load_profile("chameleon")

PG_URL = os.environ.get("CHAMELEON_TEST_POSTGRES_URL", "")
REQUIRE_PG = os.environ.get("CHAMELEON_REQUIRE_POSTGRES", "") == "1"
TEMPLATE_DB = scratch_database_name("tpl", str(os.getpid()))  # CHAMELEON_TEST_DB_PREFIX
TEST_SETTINGS = Settings(database_url="sqlite://", sqlite_busy_timeout_ms=2000)


def _pg_admin_conninfo(dbname: str = "postgres") -> str:
    base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    head, _, _ = base.rpartition("/")
    return f"{head}/{dbname}"


def _pg_url(dbname: str) -> str:
    return _pg_admin_conninfo(dbname).replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite file once; each test copies it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}", TEST_SETTINGS)
    upgrade_database(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _fresh_pg_url(template: str) -> str:
    name = scratch_database_name("t", uuid.uuid4().hex[:16])
    with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _pg_url(name)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """Migrate one PostgreSQL template database once; each test clones it."""
    if not PG_URL:
        message = "CHAMELEON_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped"
        if REQUIRE_PG:
            pytest.fail(message + " but CHAMELEON_REQUIRE_POSTGRES=1")
        pytest.skip(message)
    try:
        admin = psycopg.connect(_pg_admin_conninfo(), autocommit=True)
    except psycopg.OperationalError as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    engine = make_engine(_pg_url(TEMPLATE_DB), TEST_SETTINGS)
    upgrade_database(engine)
    engine.dispose()
    yield TEMPLATE_DB
    with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_clones(pg_template: str) -> Iterator[PgClones]:
    """Hand out databases in the template's state; every one is dropped by the end of the run."""
    clones = PgClones(pg_template, _pg_admin_conninfo, _pg_url)
    try:
        yield clones
    finally:
        clones.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Name the back end a contract test runs against."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Give each test a freshly migrated, empty database of its back end."""
    if backend == "sqlite":
        target = tmp_path / "chameleon.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    clones: PgClones = request.getfixturevalue("pg_clones")
    url = clones.take()
    yield url
    clones.give_back(url)


@pytest.fixture
def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """Give a test an empty, never-migrated database of its back end."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    clones: PgClones = request.getfixturevalue("pg_clones")  # skip or fail like other PG tests
    url = _fresh_pg_url("template0")
    yield url
    clones.give_back(url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Yield an engine on the test's own database."""
    eng = make_engine(database_url, TEST_SETTINGS)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory of the test's database."""
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield one session; rolled back and closed at the end of the test."""
    with session_factory() as sess:
        yield sess
        sess.rollback()
