"""An outage is one log line per failed request, and a /metrics scrape reads no table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from faultkit import serving
from sqlalchemy import event

from chameleon_workflow.server.app import create_app
from chameleon_workflow.server.settings import ServerSettings
from chameleon_workflow.testing import free_port

ADMIN = "admin-token-for-the-log-noise-tests"
METRICS = "metrics-token-for-the-scraper-only"


def _unreachable(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'chameleon.db'}"
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_failed_request_is_one_line_and_one_traceback_in_all(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """20 requests against an unreachable database: 20 lines with request ids, 1 traceback."""
    settings = ServerSettings(
        database_url=_unreachable(backend, tmp_path), admin_token=ADMIN, db_retry_attempts=1
    )
    app = create_app(settings)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with (
            caplog.at_level(logging.INFO, logger="chameleon_workflow.server"),
            serving(app) as url,
            httpx.Client(base_url=url, timeout=30) as client,
        ):
            responses = [client.get("/verify", headers=admin) for _ in range(20)]
    finally:
        app.state.services.engine.engine.dispose()
    assert {(r.status_code, r.headers["retry-after"]) for r in responses} == {(503, "1")}
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == 20
    failed = [r for r in caplog.records if " -> 503: " in r.getMessage()]
    assert [r.getMessage().split(" ")[1] for r in failed] == ids
    assert all(
        r.getMessage().startswith(f"request {i} GET /verify -> 503: ")
        for r, i in zip(failed, ids, strict=True)
    )
    assert [r.exc_info is not None for r in failed] == [True] + [False] * 19


def test_a_client_request_id_is_kept(database_url: str) -> None:
    """A sane X-Request-ID sent by the client comes back; a hostile one is replaced."""
    app = create_app(ServerSettings(database_url=database_url, admin_token=ADMIN))
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            kept = client.get("/health", headers={"X-Request-ID": "trace-42.a_b"})
            replaced = client.get("/health", headers={"X-Request-ID": "x" * 65})
    finally:
        app.state.services.engine.engine.dispose()
    assert kept.headers["x-request-id"] == "trace-42.a_b"
    assert len(replaced.headers["x-request-id"]) == 16


def test_a_scrape_runs_no_sql_and_can_need_a_token(database_url: str) -> None:
    """/metrics answers from memory (no statement at all) and wants its token when one is set."""
    settings = ServerSettings(database_url=database_url, admin_token=ADMIN, metrics_token=METRICS)
    app = create_app(settings)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    db = app.state.services.engine.engine
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            missing = client.get("/metrics")
            wrong = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}x"})
            event.listen(db, "before_cursor_execute", count)
            scrapes = [
                client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
                for token in (METRICS, ADMIN, METRICS)
            ]
            event.remove(db, "before_cursor_execute", count)
    finally:
        db.dispose()
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["detail"] == "missing bearer token"
    assert [s.status_code for s in scrapes] == [200, 200, 200]
    assert "chameleon_transitions_total" in scrapes[0].text.replace("# HELP ", "")
    assert statements == []
