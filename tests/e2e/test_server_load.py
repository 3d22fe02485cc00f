"""Bounded load: concurrent clients cycle checkout/submit; nothing lost, nothing claimed twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from chameleon_workflow.benchmarks.server import drive
from chameleon_workflow.db import normalize_url
from chameleon_workflow.testing import ServerProcess, setup_invoice

CLIENTS = 4
SECONDS = 8.0


def _history_rows(database_url: str) -> tuple[int, int]:
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            uows = conn.execute(text("SELECT count(*) FROM units_of_work")).scalar_one()
            rows = conn.execute(text("SELECT count(*) FROM uow_history")).scalar_one()
            return int(uows), int(rows)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_concurrent_checkout_submit_loses_nothing(database_url: str, tmp_path: Path) -> None:
    """Every transition a client saw is one history row; no UOW step is claimed twice."""
    server = ServerProcess(database_url, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            cast = setup_invoice(client, server.admin(), actors=CLIENTS)
            logs = drive(server.url, cast, SECONDS)
            report = client.get("/verify", headers=server.admin()).json()
    finally:
        assert server.stop_cleanly(), server.log()
    created = sum(log.created for log in logs)
    transitions = sum(log.transitions for log in logs)
    claims = Counter(claim for log in logs for claim in log.claims)
    assert created > 0
    assert transitions > 0
    assert [claim for claim, n in claims.items() if n > 1] == []
    # One CREATED row per UOW, then one row per checkout and per submit a client was told of.
    assert _history_rows(database_url) == (created, created + transitions)
    assert (report["ok"], report["findings"]) == (True, [])
    assert report["uows_checked"] == created
