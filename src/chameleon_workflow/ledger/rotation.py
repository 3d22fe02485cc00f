"""The key ledger's writer: which ledger key is current, recorded in the database under it.

``provision_keys`` is what every command that creates or migrates a database runs (``init``,
``db upgrade``, ``demo``, ``serve``): find the database's keys, making the key file when
there is none, and record the current key in ``ledger_keys`` if it is not the last one
recorded. ``rotate_keys`` adds a new current key to the key file (old keys stay, so old
links keep verifying) and records the rotation. Each ``ledger_keys`` row after the seal
names a key by id and fingerprint, never its secret, and is linked to the row before it
by a MAC under the key it names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from chameleon_workflow.config import load_settings
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import ConfigurationError, SchemaMismatchError
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.keys import (
    KeyProvider,
    find_keys,
    key_event_link,
    key_file_of,
    rotate_key_file,
)
from chameleon_workflow.models import LedgerKeyEvent, utcnow


@dataclass(frozen=True, slots=True)
class KeyChange:
    """The outcome of provisioning or rotating: the keys, and what was recorded."""

    keys: KeyProvider
    previous_id: str | None
    recorded: bool


def provision_keys(engine: Engine, clock: Callable[[], datetime] = utcnow) -> KeyChange:
    """Find (or make) the database's ledger keys and record the current one if it is new."""
    keys = find_keys(_url(engine), create=True)
    return _record(engine, keys, clock)


def rotate_keys(engine: Engine, clock: Callable[[], datetime] = utcnow) -> KeyChange:
    """Make a new current key in the database's key file and record the rotation."""
    path = key_file_of(_url(engine), load_settings())
    if path is None:
        raise ConfigurationError(
            "the ledger keys come from CHAMELEON_LEDGER_KEY, which Chameleon cannot change: "
            "put a new key first in it (keep the old ones after it) and run `chameleon init`"
        )
    find_keys(_url(engine))  # refuse a missing or unreadable key file before changing it
    _before, after = rotate_key_file(path)
    return _record(engine, after, clock)


def record_current_key(
    session: Session, keys: KeyProvider, clock: Callable[[], datetime] = utcnow
) -> str | None:
    """Append a key-ledger row for the current key unless it is the last one recorded.

    Returns the id of the key that was current before (None when nothing was written).
    """
    last = session.scalars(
        select(LedgerKeyEvent).order_by(LedgerKeyEvent.sequence.desc()).limit(1)
    ).first()
    if last is None:
        raise SchemaMismatchError("the key ledger has no seal row: is the database migrated?")
    if last.key_id == keys.current_id:
        return None
    now = clock()
    row = LedgerKeyEvent(
        sequence=last.sequence + 1,
        key_id=keys.current_id,
        fingerprint=keys.fingerprint(keys.current_id),
        legacy_history_rows=None,
        legacy_attribute_rows=None,
        legacy_digest=None,
        link_version=2,
    )
    values = {c: getattr(row, c) for c in ("sequence", "key_id", "fingerprint", "link_version")}
    values |= {"legacy_history_rows": None, "legacy_attribute_rows": None}
    values |= {"legacy_digest": None, "recorded_at": format_timestamp(now)}
    link = key_event_link(last.chain_hash, values, keys)
    if link is None:
        raise ConfigurationError(f"the current ledger key {keys.current_id} cannot make MACs")
    row.recorded_at, row.chain_hash = now, link
    session.add(row)
    return last.key_id or ""


def _record(engine: Engine, keys: KeyProvider, clock: Callable[[], datetime]) -> KeyChange:
    with translated_errors(), Session(engine) as session, session.begin():
        previous = record_current_key(session, keys, clock)
    return KeyChange(keys, previous or None, previous is not None)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)
