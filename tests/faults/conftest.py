"""Fixtures of the fault-injection suite: an invoice desk, and a private PostgreSQL cluster.

Faults that only need a connection to die (``pg_terminate_backend``) use the shared
PostgreSQL of the other tests; faults that stop, restart or kill the database use a
cluster the suite starts itself (``pg_cluster``), so the shared server is never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import Desk, make_desk
from pg_cluster import Cluster, start_cluster
from sqlalchemy.orm import Session, sessionmaker

#: No fault test may hang the run: each is bounded (pytest-timeout) well under a minute.
FAULT_TEST_TIMEOUT_S = 90


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Bound every test of this folder in time."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.timeout(FAULT_TEST_TIMEOUT_S))


@pytest.fixture
def desk(session_factory: sessionmaker[Session]) -> Desk:
    """Set up the invoice workflow and a worker on the test's database."""
    return make_desk(session_factory)


@pytest.fixture(scope="session")
def cluster_session() -> Iterator[Cluster]:
    """Start one private PostgreSQL cluster for the whole run (FAIL when required but absent)."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def cluster(cluster_session: Cluster) -> Iterator[Cluster]:
    """Give a test the private cluster, running, with a fresh database; restart it after."""
    cluster_session.ensure_running()
    cluster_session.new_database()
    yield cluster_session
    cluster_session.ensure_running()
