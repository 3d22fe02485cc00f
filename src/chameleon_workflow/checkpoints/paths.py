"""Where the signing key and the checkpoint file live when no setting names them.

SQLite: beside the database file (``chameleon.db`` -> ``chameleon.db.signing-key.pem``
and ``chameleon.db.checkpoint.json``). PostgreSQL has no file to stand beside: the key
comes from ``CHAMELEON_SIGNING_KEY_FILE``, and the checkpoint file defaults to
``checkpoint.json`` in the key's directory. ``CHAMELEON_CHECKPOINT_FILE`` overrides it.
"""

from __future__ import annotations

from pathlib import Path

from chameleon_workflow.config import Settings
from chameleon_workflow.db import normalize_url, sqlite_path
from chameleon_workflow.errors import ConfigurationError

KEY_SUFFIX = ".signing-key.pem"
CHECKPOINT_SUFFIX = ".checkpoint.json"


def _database_file(url: str) -> Path | None:
    if not normalize_url(url).startswith("sqlite"):
        return None
    path = sqlite_path(url)
    return None if path is None else Path(path)


def default_signing_key_path(url: str) -> Path | None:
    """Return the key file beside a SQLite database, or None when there is no file."""
    database = _database_file(url)
    return None if database is None else database.with_name(database.name + KEY_SUFFIX)


def signing_key_path(url: str, settings: Settings) -> Path:
    """Return where the signing key of the database at ``url`` lives."""
    if settings.signing_key_file:
        return Path(settings.signing_key_file)
    found = default_signing_key_path(url)
    if found is None:
        raise ConfigurationError(
            "no signing key file for this database: set CHAMELEON_SIGNING_KEY_FILE"
        )
    return found


def checkpoint_path(url: str, settings: Settings) -> Path:
    """Return where the newest checkpoint of the database at ``url`` is written."""
    if settings.checkpoint_file:
        return Path(settings.checkpoint_file)
    database = _database_file(url)
    if database is not None:
        return database.with_name(database.name + CHECKPOINT_SUFFIX)
    return signing_key_path(url, settings).parent / "checkpoint.json"
