"""The server seals in the background when asked to and serves the newest checkpoint to admins."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from chameleon_workflow.checkpoints import (
    LEDGER_TABLES,
    Checkpoint,
    create_signing_key,
    verify_checkpoint,
)
from chameleon_workflow.db import make_engine
from chameleon_workflow.testing import ServerProcess, setup_invoice


def _ledger_size(url: str) -> int:
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as connection:
            return sum(
                int(connection.execute(select(func.count()).select_from(t.table)).scalar_one())
                for t in LEDGER_TABLES
            )
    finally:
        engine.dispose()


def _settled(client: httpx.Client, admin: dict[str, str], url: str, file: Path) -> Any:
    """Wait until the served checkpoint covers every ledger row and the file says the same."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = client.get("/checkpoints/latest", headers=admin)
        if response.status_code == 200 and file.exists():
            served = response.json()
            if served["tree_size"] == _ledger_size(url) and json.loads(file.read_text()) == served:
                return served
        time.sleep(0.1)
    raise AssertionError("the checkpoint never caught up with the ledger")


def test_server_seals_in_the_background_and_serves_the_latest(
    database_url: str, tmp_path: Path
) -> None:
    """With an interval set, the ledger is sealed; /checkpoints/latest serves the signed head."""
    signer = create_signing_key(tmp_path / "key.pem")
    checkpoint_file = tmp_path / "out" / "checkpoint.json"
    env = {
        "CHAMELEON_CHECKPOINT_INTERVAL_S": "0.2",
        "CHAMELEON_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
        "CHAMELEON_CHECKPOINT_FILE": str(checkpoint_file),
        "CHAMELEON_TELEMETRY_FLUSH_INTERVAL_S": "0.1",
    }
    server = ServerProcess(database_url, tmp_path / "server.log", env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            assert client.get("/checkpoints/latest").status_code == 401
            setup_invoice(client, server.admin(), 1)
            served = _settled(client, server.admin(), database_url, checkpoint_file)
    finally:
        assert server.stop_cleanly(), server.log()
    assert "Traceback" not in server.log()
    head = Checkpoint.from_json(served)
    assert (head.key_id, head.signed_by(signer.public_key)) == (signer.key_id, True)
    engine = make_engine(database_url, read_only=True)
    try:
        with engine.connect() as connection:
            report = verify_checkpoint(connection, head, signer.public_key)
    finally:
        engine.dispose()
    assert (report.ok, report.leaves_checked) == (True, head.tree_size)


def test_server_that_never_sealed_says_so(database_url: str, tmp_path: Path) -> None:
    """Without background checkpoints nothing seals, and the latest checkpoint is a clear 404.

    (With an interval set the key ledger's first row is sealed at once, so the empty
    answer can only be seen on a server that does not seal.)
    """
    server = ServerProcess(database_url, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            empty = client.get("/checkpoints/latest", headers=server.admin())
    finally:
        assert server.stop_cleanly(), server.log()
    assert (empty.status_code, empty.json()["detail"]) == (
        404,
        "no checkpoint yet: the ledger was never sealed",
    )


def test_server_without_a_signing_key_refuses_to_start(database_url: str, tmp_path: Path) -> None:
    """Asking for background checkpoints without a key stops the server at start, saying why."""
    missing = tmp_path / "missing.pem"
    env = {"CHAMELEON_CHECKPOINT_INTERVAL_S": "1", "CHAMELEON_SIGNING_KEY_FILE": str(missing)}
    server = ServerProcess(database_url, tmp_path / "server.log", env)
    message = f"no signing key at {missing}: create it with `chameleon init`"
    try:
        with pytest.raises(RuntimeError, match=re.escape(message)):
            server.start(timeout_s=15)
    finally:
        server.stop()
