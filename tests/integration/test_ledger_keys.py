"""The ledger key: found or made the same way everywhere, rotated, and never in the database."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from ledger_walks import walked
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.keys import Keyring, fingerprint_of, key_file_beside, read_key_file
from chameleon_workflow.ledger.rotation import provision_keys, rotate_keys
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import LedgerKeyEvent


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def key_file(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keys from a key file: beside a SQLite file, else where CHAMELEON_LEDGER_KEY_FILE says."""
    monkeypatch.delenv("CHAMELEON_LEDGER_KEY")
    beside = key_file_beside(_url(engine))
    if beside is not None:
        return beside
    path = tmp_path / "ledger-keys"
    monkeypatch.setenv("CHAMELEON_LEDGER_KEY_FILE", str(path))
    return path


def _events(session: Session) -> list[tuple[int, str | None, str | None]]:
    rows = session.scalars(select(LedgerKeyEvent).order_by(LedgerKeyEvent.sequence))
    found = [(r.sequence, r.key_id, r.fingerprint) for r in rows]
    session.rollback()
    return found


def test_provisioning_makes_a_private_key_file_and_records_the_key(
    engine: Engine, session: Session, key_file: Path
) -> None:
    """The first provisioning writes a 0600 key file and records its key; later ones reuse it."""
    assert not key_file.exists()
    first = provision_keys(engine)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    held = read_key_file(key_file)
    assert (first.keys.current_id, first.recorded) == (held.current_id, True)
    again = provision_keys(engine)
    assert (again.keys.current_id, again.recorded) == (held.current_id, False)
    secret = held.keys[held.current_id].secret
    assert _events(session) == [(0, None, None), (1, held.current_id, fingerprint_of(secret))]


def test_rotation_keeps_old_rows_verifiable(
    engine: Engine, session: Session, key_file: Path, play: Any
) -> None:
    """After a rotation new rows use the new key, old ones verify under the kept old key."""
    old = provision_keys(engine).keys.current_id
    walked(UOWPersistenceService(), session, play)
    rotated = rotate_keys(engine)
    new = rotated.keys.current_id
    assert (rotated.previous_id, new != old) == (old, True)
    assert sorted(read_key_file(key_file).keys) == sorted([old, new])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    service = UOWPersistenceService()
    uow = walked(service, session, play)
    assert {r.key_id for r in service.get_uow_history(session, uow.uow_id)} == {new}
    session.rollback()
    assert service.verify_database(session).findings == ()
    assert [(s, k) for s, k, _ in _events(session)] == [(0, None), (1, old), (2, new)]
    only_new = Keyring([read_key_file(key_file).keys[new]], new, "a keyring without the old key")
    findings = UOWPersistenceService(keys=only_new).verify_database(session).findings
    assert [(f.kind.value, f.detail.split(",")[0]) for f in findings] == [
        (
            "UNKNOWN_KEY",
            f"6 rows are linked under ledger key {old}",  # five history rows, one key event
        )
    ]


def test_keys_rotate_on_the_command_line(engine: Engine, session: Session, key_file: Path) -> None:
    """`chameleon keys rotate` makes a new current key, keeps the old one and says which."""
    old = provision_keys(engine).keys.current_id
    result = CliRunner().invoke(app, ["keys", "rotate", "--database-url", _url(engine)])
    assert result.exit_code == 0, result.output
    document = json.loads(key_file.read_text())
    new = document["current"]
    assert [k["id"] for k in document["keys"]] == [old, new]
    assert (
        result.output == f"ledger key rotated: {new} is current, {old} kept (key file {key_file})\n"
    )
    assert [(s, k) for s, k, _ in _events(session)] == [(0, None), (1, old), (2, new)]


def test_keys_from_the_environment_are_not_rotated(engine: Engine) -> None:
    """With CHAMELEON_LEDGER_KEY there is no file to rotate: exit 2, one line saying what to do."""
    result = CliRunner().invoke(app, ["keys", "rotate", "--database-url", _url(engine)])
    assert result.exit_code == 2
    assert result.output.startswith(
        "error: the ledger keys come from CHAMELEON_LEDGER_KEY, which Chameleon cannot change"
    )


def test_verify_without_a_key_is_an_error(
    engine: Engine, session: Session, key_file: Path, play: Any
) -> None:
    """Without its key `chameleon verify` exits 2 naming where it looked; the API raises."""
    provision_keys(engine)
    walked(UOWPersistenceService(), session, play)
    key_file.unlink()
    result = CliRunner().invoke(app, ["verify", "--database-url", _url(engine)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: no ledger key file at {key_file}: create it with")
    with pytest.raises(ConfigurationError, match="no ledger key file at"):
        UOWPersistenceService().verify_database(session)


def test_verify_with_a_wrong_key_exits_1_naming_the_key(
    engine: Engine, session: Session, play: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows linked under another key are reported as UNKNOWN_KEY with that key's id."""
    uow = walked(UOWPersistenceService(), session, play)
    key_id = UOWPersistenceService().get_uow_history(session, uow.uow_id)[0].key_id
    session.rollback()
    monkeypatch.setenv("CHAMELEON_LEDGER_KEY", "ab" * 32)
    result = CliRunner().invoke(app, ["verify", "--database-url", _url(engine)])
    assert result.exit_code == 1
    assert f"UNKNOWN_KEY: 5 rows are linked under ledger key {key_id}" in result.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the database is one file
def test_no_secret_is_ever_in_the_database(
    engine: Engine, session: Session, key_file: Path, play: Any
) -> None:
    """The database holds key ids and fingerprints, never a secret, in any form."""
    provision_keys(engine)
    walked(UOWPersistenceService(), session, play)
    rotate_keys(engine)
    walked(UOWPersistenceService(), session, play)
    session.close()
    engine.dispose()
    stored = b"".join(
        p.read_bytes() for p in key_file.parent.glob("chameleon.db*") if p != key_file
    )
    for key in read_key_file(key_file).keys.values():
        for form in (key.secret, key.secret.hex().encode(), key.secret.hex().upper().encode()):
            assert form not in stored
