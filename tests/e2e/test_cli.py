"""The `chameleon` command as a user runs it: a real process, exit codes and output."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from chameleon_workflow.checkpoints.keys import load_signing_key
from chameleon_workflow.schema import SCRIPT_LOCATION


def _run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chameleon_workflow", *args, "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    """Point the command at a fresh SQLite file that `chameleon init` created."""
    target = f"sqlite:///{tmp_path / 'cli.db'}"
    assert _run("init", url=target).returncode == 0
    return target


def _head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_init_creates_the_schema(tmp_path: Path) -> None:
    """`chameleon init` migrates an empty database, makes its key file (0600) and says so."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = _run("init", url=url)
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "new.db.ledger-keys"
    current = json.loads(key_file.read_text())["current"]
    ready = (
        f"database ready at revision {_head_revision()} ({url})\n"
        f"ledger key {current} (key file {key_file})\n"
    )
    signing = tmp_path / "new.db.signing-key.pem"
    key_id = load_signing_key(signing).key_id
    assert result.stdout == ready + (
        f"checkpoint signing key {key_id} created at {signing} (mode 0600; back it up)\n"
    )
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(signing.stat().st_mode) == 0o600
    again = _run("init", url=url)  # idempotent: the same keys are found, not replaced
    assert (again.returncode, again.stdout) == (0, ready)
    assert load_signing_key(signing).key_id == key_id


def test_verify_of_an_empty_database_is_clean(url: str) -> None:
    """`chameleon verify` exits 0 and reports a clean result on an empty database."""
    result = _run("verify", url=url)
    assert result.returncode == 0, result.stderr
    assert "verification clean" in result.stdout


def test_bad_uow_id_is_a_clear_error(url: str) -> None:
    """A malformed id exits 2 with a one-line message and no traceback."""
    result = _run("history", "not-a-uuid", url=url)
    assert result.returncode == 2
    expected = "error: UOW id 'not-a-uuid' is neither a UUID nor a prefix of one"
    assert result.stderr.strip() == expected
    assert "Traceback" not in result.stderr


def test_unknown_uow_is_not_found(url: str) -> None:
    """An unknown id exits 2 naming the id."""
    missing = uuid.uuid4()
    result = _run("history", str(missing), url=url)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no unit of work with id {missing}"


def test_bad_log_type_is_a_clear_error(url: str) -> None:
    """An unknown log type exits 2 listing the valid ones."""
    result = _run("logs", "--type", "NOPE", url=url)
    assert result.returncode == 2
    assert "unknown log type 'NOPE'" in result.stderr
    assert "GUARDIAN_DECISION" in result.stderr


def test_unsupported_url_is_a_clear_error(tmp_path: Path) -> None:
    """A database URL of an unsupported kind exits 2 and says what is supported."""
    result = _run("init", url="mysql://root@localhost/db")
    assert result.returncode == 2
    assert "unsupported database URL" in result.stderr
