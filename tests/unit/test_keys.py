"""Where ledger keys come from, how a key file is kept, and what is refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chameleon_workflow.config import Settings
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.keys import (
    Keyring,
    LedgerKey,
    find_keys,
    key_file_beside,
    keys_from_text,
    read_key_file,
    rotate_key_file,
    write_key_file,
)

HEX = "ab" * 32


def _settings(**values: object) -> Settings:
    return Settings.model_validate({"ledger_key": None, "ledger_key_file": None} | values)


def test_key_file_sits_beside_a_sqlite_file_only() -> None:
    """The default key file is `<database file>.ledger-keys`; other databases have none."""
    assert key_file_beside("sqlite:///data/chameleon.db") == Path("data/chameleon.db.ledger-keys")
    assert key_file_beside("sqlite://") is None
    assert key_file_beside("postgresql+psycopg://u@h/db") is None


def test_environment_keys_first_is_current() -> None:
    """CHAMELEON_LEDGER_KEY holds hex secrets; the first is current, the rest verify old links."""
    keys = keys_from_text(f"{HEX}, {'cd' * 32}", "CHAMELEON_LEDGER_KEY")
    assert keys.current_id == LedgerKey.of(bytes.fromhex(HEX)).key_id
    assert len(keys.keys) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "CHAMELEON_LEDGER_KEY is empty"),
        ("zz", "must hold hex secrets"),
        ("abcd", "at least 32 bytes, got 2"),
    ],
)
def test_bad_environment_keys_are_refused(text: str, message: str) -> None:
    """A malformed or short key is a ConfigurationError naming the problem."""
    with pytest.raises(ConfigurationError, match=message):
        keys_from_text(text, "CHAMELEON_LEDGER_KEY")


def test_find_keys_order_and_conflicts(tmp_path: Path) -> None:
    """The environment key wins over the file beside; both variables at once are refused."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    from_env = find_keys(url, _settings(ledger_key=HEX))
    assert from_env.current_id == LedgerKey.of(bytes.fromhex(HEX)).key_id
    with pytest.raises(ConfigurationError, match="set only one of"):
        find_keys(url, _settings(ledger_key=HEX, ledger_key_file=tmp_path / "k"))
    with pytest.raises(ConfigurationError, match="no ledger key file at"):
        find_keys(url, _settings())
    with pytest.raises(ConfigurationError, match="no ledger key: set CHAMELEON_LEDGER_KEY_FILE"):
        find_keys("postgresql+psycopg://u@h/db", _settings())


def test_a_created_key_file_is_private_and_reread(tmp_path: Path) -> None:
    """`create` writes a 0600 file with one key; reading it again gives the same key."""
    path = tmp_path / "keys"
    made = find_keys("postgresql+psycopg://u@h/db", _settings(ledger_key_file=path), create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path).current_id == made.current_id
    assert [p.name for p in tmp_path.iterdir()] == ["keys"]  # no temporary file left


def test_rotation_adds_a_current_key_and_keeps_the_old(tmp_path: Path) -> None:
    """A rotated file holds the old key and a new current one, still mode 0600."""
    path = tmp_path / "keys"
    write_key_file(path, Keyring.of(LedgerKey.of(bytes.fromhex(HEX))))
    before, after = rotate_key_file(path)
    assert sorted(read_key_file(path).keys) == sorted([before.current_id, after.current_id])
    assert read_key_file(path).current_id == after.current_id != before.current_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    """A key file with group or other permissions is refused, naming the fix."""
    path = tmp_path / "keys"
    write_key_file(path, Keyring.of(LedgerKey.generate()))
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match=f"mode 0644\\): chmod 600 {path}"):
        read_key_file(path)


@pytest.mark.parametrize("content", ["not json", '{"keys": []}', '{"current": "x", "keys": []}'])
def test_a_malformed_key_file_is_refused(tmp_path: Path, content: str) -> None:
    """Anything but a Chameleon key file is a ConfigurationError, never a traceback."""
    path = tmp_path / "keys"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigurationError, match=r"is not a Chameleon key file|not in it"):
        read_key_file(path)


def test_the_secret_is_never_in_a_repr() -> None:
    """Printing a key shows its id, never its secret."""
    key = LedgerKey.of(bytes.fromhex(HEX))
    assert HEX not in repr(key)
    assert key.key_id in repr(key)


def test_creating_never_replaces_a_key_file_made_meanwhile(tmp_path: Path) -> None:
    """Two processes making the same key file at once: the first file stays, no temp is left."""
    path = tmp_path / "keys"
    first = Keyring.of(LedgerKey.generate())
    write_key_file(path, first, replace=False)
    write_key_file(path, Keyring.of(LedgerKey.generate()), replace=False)
    assert read_key_file(path).current_id == first.current_id
    assert [p.name for p in tmp_path.iterdir()] == ["keys"]
