"""Tests that need the private cluster fail, not skip, when CI requires PostgreSQL."""

from __future__ import annotations

import pytest
from pg_cluster import start_cluster


def test_missing_binaries_fail_when_postgres_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without initdb and CHAMELEON_REQUIRE_POSTGRES=1, starting the cluster fails the test."""
    monkeypatch.setenv("CHAMELEON_PG_BINDIR", "/nonexistent")
    monkeypatch.setenv("CHAMELEON_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception) as caught:
        start_cluster()
    assert str(caught.value) == (
        "PostgreSQL binaries (initdb, pg_ctl) not found: set CHAMELEON_PG_BINDIR "
        "(CHAMELEON_REQUIRE_POSTGRES=1)"
    )


def test_missing_binaries_skip_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without initdb and without the requirement, the tests that need the cluster skip."""
    monkeypatch.setenv("CHAMELEON_PG_BINDIR", "/nonexistent")
    monkeypatch.delenv("CHAMELEON_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception) as caught:
        start_cluster()
    assert str(caught.value) == (
        "PostgreSQL binaries (initdb, pg_ctl) not found: set CHAMELEON_PG_BINDIR"
    )
