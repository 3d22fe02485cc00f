"""SIGTERM on the real server process drains the telemetry buffer: no row is lost."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from chameleon_workflow.db import normalize_url
from chameleon_workflow.testing import ServerProcess, setup_invoice

#: The flusher never fires on its own during the test: only the shutdown drain writes.
IDLE_FLUSHER = {
    "CHAMELEON_TELEMETRY_FLUSH_INTERVAL_S": "3600",
    "CHAMELEON_TELEMETRY_FLUSH_SIZE_TRIGGER": "100000",
    "CHAMELEON_TELEMETRY_MAX_QUEUE_SIZE": "100000",
    "CHAMELEON_TELEMETRY_BATCH_SIZE": "50",
}


def _recorded(metrics: str) -> int:
    found = re.findall(r"^chameleon_telemetry_recorded_total\{[^}]*\} (\S+)$", metrics, re.M)
    return sum(int(float(value)) for value in found)


def _log_rows(database_url: str, where: str) -> int:
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            query = f"SELECT count(*) FROM interaction_logs WHERE {where}"
            return int(conn.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


def test_sigterm_writes_every_recorded_entry(database_url: str, tmp_path: Path) -> None:
    """Entries still buffered at SIGTERM are all in interaction_logs once the process exits."""
    server = ServerProcess(database_url, tmp_path / "server.log", IDLE_FLUSHER).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            cast = setup_invoice(client, server.admin(), actors=1)
            body = {"workflow": "invoice_approval", "attributes": {"invoice_id": "S", "amount": 1}}
            for _ in range(60):
                created = client.post(
                    f"/instances/{cast.instance_id}/uows",
                    json=body,
                    headers={"Authorization": f"Bearer {cast.tokens[0]}"},
                )
                assert created.status_code == 201
            recorded = _recorded(client.get("/metrics").text)
            pending = client.get("/health").json()["buffer_pending"]
    finally:
        assert server.stop_cleanly(), server.log()
    assert recorded == pending == 60  # one STATE_TRANSITION each, none flushed before SIGTERM
    assert _log_rows(database_url, "log_type = 'STATE_TRANSITION'") == recorded
    # The drain ended the server's stream cleanly: its open row, then its close row.
    assert _log_rows(database_url, "log_type = 'STREAM_OPENED'") == 1
    assert _log_rows(database_url, "log_type = 'STREAM_CLOSED' AND stream_seq > 0") == 1
