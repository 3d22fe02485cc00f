"""`chameleon checkpoint`, `keys export`, `prove` and the standalone verifier of the docs."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from chameleon_workflow.checkpoints import (
    Checkpoint,
    create_signing_key,
    load_signing_key,
    public_pem,
    read_checkpoint,
    write_checkpoint,
)
from chameleon_workflow.cli import app
from chameleon_workflow.db import make_engine
from chameleon_workflow.testing import append_only_disabled, make_uow

DOC = Path(__file__).resolve().parents[2] / "docs" / "checkpoints.md"


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def sealed(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database with one UOW, its signing key made by `chameleon init`, sealed by the CLI."""
    monkeypatch.setenv("CHAMELEON_DATABASE_URL", database_url)
    monkeypatch.setenv("CHAMELEON_SIGNING_KEY_FILE", str(tmp_path / "key.pem"))
    assert _cli("init")[0] == 0
    engine = make_engine(database_url)
    with Session(engine) as session:
        make_uow(session, attributes={"invoice": "INV-1", "amount": 12.5})
    engine.dispose()
    out = tmp_path / "checkpoint.json"
    code, output = _cli("checkpoint", "--output", str(out))
    assert code == 0, output
    return out


def _history_id(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT history_id FROM uow_history")).scalar_one())
    finally:
        engine.dispose()


def test_checkpoint_command_seals_and_writes_the_file(sealed: Path, tmp_path: Path) -> None:
    """The command reports what it sealed and writes the signed head.

    The seal is recorded in the admin ledger; a rerun seals only that record (and records
    nothing), a third run adds nothing.
    """
    head = read_checkpoint(sealed)
    signer = load_signing_key(tmp_path / "key.pem")
    assert (head.tree_size, head.key_id, head.signed_by(signer.public_key)) == (
        # workflow, interactions, history row, attributes, log seal, key ledger
        1 + 3 + 1 + 2 + 1 + 2,
        signer.key_id,
        True,
    )
    code, output = _cli("checkpoint", "--output", str(sealed))
    assert code == 0
    assert output.startswith("sealed 1 new rows in ")
    second = read_checkpoint(sealed)
    assert second.tree_size == 11
    code, output = _cli("checkpoint", "--output", str(sealed))
    assert output.startswith("sealed 0 new rows in ")
    assert f"checkpoint of 11 leaves, root {second.root_hash}, key {signer.key_id}" in output
    assert read_checkpoint(sealed) == second


def test_keys_export_writes_the_public_half(sealed: Path, tmp_path: Path) -> None:
    """`keys export` prints the PEM public key of the signing key, or writes it to a file."""
    signer = load_signing_key(tmp_path / "key.pem")
    code, output = _cli("keys", "export")
    assert (code, output) == (0, public_pem(signer.public_key).decode())
    target = tmp_path / "public.pem"
    code, output = _cli("keys", "export", "--output", str(target))
    assert (code, output.strip()) == (0, f"public key {signer.key_id} written to {target}")
    assert target.read_bytes() == public_pem(signer.public_key)


def test_documented_standalone_verifier_checks_a_real_proof(
    sealed: Path, database_url: str, tmp_path: Path
) -> None:
    """The doc's verifier (at most 60 lines) accepts a real proof, refuses a forged one."""
    section = DOC.read_text().split("## A standalone verifier", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    script = tmp_path / "verify_proof.py"
    script.write_text(match.group(1))
    assert len(match.group(1).splitlines()) <= 60
    history_id = _history_id(database_url)
    code, output = _cli("prove", history_id, "--checkpoint", str(sealed))
    assert code == 0, output
    proof = json.loads(output)
    (tmp_path / "proof.json").write_text(output)
    assert _cli("keys", "export", "--output", str(tmp_path / "public.pem"))[0] == 0
    head = proof["checkpoint"]

    def run(proof_file: str) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, str(script), proof_file, str(tmp_path / "public.pem")],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        return done.returncode, (done.stdout + done.stderr).strip()

    assert run(str(tmp_path / "proof.json")) == (
        0,
        f"OK: uow_history row {history_id} is leaf {proof['leaf_index']} of 10, "
        f"signed {head['timestamp']} by key {head['key_id']}",
    )
    forged = dict(proof, leaf_data=proof["leaf_data"].replace('"sequence":1', '"sequence":2'))
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    assert run(str(tmp_path / "forged.json")) == (
        1,
        "FAIL: this row is not the one the checkpoint sealed at that position",
    )
    resigned = dict(proof, checkpoint=dict(head, timestamp="2030-01-01T00:00:00.000000Z"))
    (tmp_path / "resigned.json").write_text(json.dumps(resigned))
    assert run(str(tmp_path / "resigned.json")) == (
        1,
        "FAIL: the checkpoint is not signed by this key",
    )


def test_prove_reports_a_changed_row_as_a_finding(sealed: Path, database_url: str) -> None:
    """A row edited after the checkpoint has no valid proof: exit 1, one line naming it."""
    history_id = _history_id(database_url)
    engine = make_engine(database_url)
    with append_only_disabled(engine), engine.begin() as connection:
        connection.execute(text("UPDATE uow_history SET reasoning = 'forged'"))
    engine.dispose()
    code, output = _cli("prove", history_id, "--checkpoint", str(sealed))
    assert code == 1
    assert output.strip() == (
        f"finding: uow_history {history_id} at position 4 does not lead to the checkpoint's "
        "root: it or the sealed record changed since; run `chameleon verify --checkpoint`"
    )


def test_prove_of_an_unknown_row_exits_2(sealed: Path) -> None:
    """A row that does not exist is bad input: exit 2 with one line."""
    code, output = _cli(
        "prove", "00000000-0000-4000-8000-000000000000", "--checkpoint", str(sealed)
    )
    assert (code, output.strip()) == (
        2,
        "error: no uow_history row with id 00000000-0000-4000-8000-000000000000",
    )


def test_checkpoint_without_a_key_is_refused(tmp_path: Path) -> None:
    """Sealing a SQLite database whose key file is gone exits 2 naming where it should be."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert _cli("init", "--database-url", url)[0] == 0
    key = tmp_path / "db.sqlite.signing-key.pem"
    key.unlink()
    code, output = _cli("checkpoint", "--database-url", url)
    assert (code, output.strip()) == (
        2,
        f"error: no signing key at {key}: create it with `chameleon init`",
    )


def test_postgres_needs_a_key_file_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL no key file is assumed: the command says which setting to give."""
    monkeypatch.delenv("CHAMELEON_SIGNING_KEY_FILE", raising=False)
    code, output = _cli("checkpoint", "--database-url", "postgresql://u@localhost/nowhere")
    assert (code, output.strip()) == (
        2,
        "error: no signing key file for this database: set CHAMELEON_SIGNING_KEY_FILE",
    )


@pytest.mark.parametrize("command", [["prove", "x"], ["verify"], ["checkpoint"]])
def test_checkpoint_commands_never_create_a_database(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a mistyped SQLite path every checkpoint command exits 2 and creates no file."""
    given = tmp_path / "given"
    given.mkdir()
    signer = create_signing_key(given / "key.pem")
    monkeypatch.setenv("CHAMELEON_SIGNING_KEY_FILE", str(given / "key.pem"))
    head = Checkpoint.signed(signer, 0, bytes(32), "2026-01-01T00:00:00.000000Z")
    write_checkpoint(head, given / "checkpoint.json")
    place = tmp_path / "place"
    place.mkdir()
    missing = place / "typo.db"
    options = [] if command == ["checkpoint"] else ["--checkpoint", str(given / "checkpoint.json")]
    code, output = _cli(*command, *options, "--database-url", f"sqlite:///{missing}")
    assert (code, output.strip()) == (
        2,
        f"error: no database at {missing}: create it with `chameleon init`",
    )
    assert list(place.iterdir()) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # compares a SQLite file's bytes
def test_verify_against_a_checkpoint_does_not_change_the_database(
    sealed: Path, database_url: str
) -> None:
    """`verify --checkpoint` is read-only: the SQLite file is byte-identical afterwards."""
    path = Path(database_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    code, output = _cli("verify", "--checkpoint", str(sealed))
    assert code == 0, output
    assert "checkpoint verification clean" in output
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
