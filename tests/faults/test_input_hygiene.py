"""Hostile or careless input is one clear error: binary workflow files, weak tokens, duplicates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from faultkit import Desk

from chameleon_workflow.errors import ConfigurationError, IntegrityViolationError
from chameleon_workflow.server.settings import load_server_settings
from chameleon_workflow.testing import ServerProcess


def _chameleon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chameleon_workflow", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "200", **(env or {})},
    )


def test_import_of_a_binary_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`chameleon import` of a non-UTF-8 file names it in one line, exit 2, no traceback."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert _chameleon("init", "--database-url", url).returncode == 0
    binary = tmp_path / "workflow.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    result = _chameleon("import", str(binary), "--database-url", url)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: invalid workflow:\n"
        "  - workflow.yaml: not UTF-8 text (byte 0); a workflow is a YAML file\n"
    )


def test_a_short_admin_token_is_refused() -> None:
    """A 1-character (or any under 32) admin token is a configuration error naming it."""
    with pytest.raises(ConfigurationError) as caught:
        load_server_settings(admin_token="x")
    assert str(caught.value) == (
        "bad configuration: CHAMELEON_ADMIN_TOKEN: Value error, a token must be at least 32 "
        "characters (python3 -c 'import secrets; print(secrets.token_urlsafe(32))' makes one)"
    )
    assert load_server_settings(admin_token="t" * 32).admin_token is not None


def test_serve_with_a_short_admin_token_exits_2(tmp_path: Path) -> None:
    """`chameleon serve` with CHAMELEON_ADMIN_TOKEN=x stops at once with one line."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    result = _chameleon("serve", "--database-url", url, env={"CHAMELEON_ADMIN_TOKEN": "x"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: bad configuration: CHAMELEON_ADMIN_TOKEN: ")
    assert "Traceback" not in result.stderr


def test_duplicate_names_are_one_message_on_every_back_end(desk: Desk) -> None:
    """A second instance or actor of the same name says so, the same way on both back ends."""
    desk.engine.create_instance("twice")
    with pytest.raises(IntegrityViolationError) as instance:
        desk.engine.create_instance("twice")
    assert str(instance.value) == "an instance named 'twice' already exists"
    with pytest.raises(IntegrityViolationError) as actor:
        desk.engine.register_actor(desk.instance_id, "worker", "Again", "HUMAN")
    assert str(actor.value) == f"instance {desk.instance_id} already has an actor 'worker'"


def test_duplicate_instance_over_http_is_a_409_naming_it(database_url: str, tmp_path: Path) -> None:
    """POST /instances with a taken name answers 409 with the same message on both back ends."""
    server = ServerProcess(database_url, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            first = client.post("/instances", json={"name": "dup"}, headers=server.admin())
            second = client.post("/instances", json={"name": "dup"}, headers=server.admin())
    finally:
        assert server.stop_cleanly(), server.log()
    assert first.status_code == 201
    assert second.json() == {
        "type": "urn:chameleon:problem:integrity-violation",
        "title": "Conflict",
        "status": 409,
        "detail": "an instance named 'dup' already exists",
    }
