"""The admin ledger: who set up or changed what outside the flow of work, chained and keyed.

Creating an instance, importing a workflow, registering an actor, granting or revoking a
role, issuing or revoking a token, remediating a UOW and sealing a checkpoint each append
one ``admin_events`` row **in the same transaction** as the action, so the action and its
record commit together or not at all. Rows run 1..n with no gap; each row's
``chain_hash`` is the HMAC-SHA256, under the ledger key named by ``key_id``, of the
previous row's link (64 zeros before row 1) followed by the RFC 8785 canonical JSON of
its ``ADMIN_LINK_FIELDS`` (``admin_body``). The table is append-only, and the rows are
checkpoint leaves, so a deleted tail is caught against a checkpoint.

Appending takes the tail's place under a lock: a transaction-scoped advisory lock on
PostgreSQL; on SQLite the write lock the action's own write already holds. Admin actions
are rare, so this one serialisation point costs nothing on the paths that carry work.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.orm import Session

from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.hashing import GENESIS_HASH, canonical_record, format_timestamp
from chameleon_workflow.keys import KeyProvider, find_keys
from chameleon_workflow.models import AdminEvent, utcnow
from chameleon_workflow.states import AdminAction

#: What a row's link covers besides the previous link, in this order.
ADMIN_LINK_FIELDS = (
    "sequence",
    "recorded_at",
    "principal",
    "actor_id",
    "action",
    "instance_id",
    "subject_id",
    "details",
    "key_id",
)
_NESTED = ("details",)
#: The advisory lock that serialises appends on PostgreSQL ("chmladm" in ASCII).
ADMIN_LOCK = 0x63686D6C61646D
ADMIN = "admin"
ACTOR = "actor"
SYSTEM = "system"

_keys_lock = threading.Lock()
_keys_by_url: dict[str, KeyProvider] = {}


def admin_body(previous: str | None, values: Mapping[str, Any]) -> bytes:
    """Return what a row's link covers: the previous link, then the row's canonical form.

    ``values`` holds ``ADMIN_LINK_FIELDS`` with ids and the time as canonical text.
    """
    record = {name: values[name] for name in ADMIN_LINK_FIELDS}
    return (previous or GENESIS_HASH).encode("ascii") + canonical_record(record, _NESTED)


def admin_link(keys: KeyProvider, previous: str | None, values: Mapping[str, Any]) -> str | None:
    """Return a row's link under the key it names (None: that key is not held)."""
    return keys.mac(str(values["key_id"]), admin_body(previous, values))


def _bind(session: Session | Connection) -> Connection | Engine:
    return session.get_bind() if isinstance(session, Session) else session


def keys_of(session: Session | Connection) -> KeyProvider:
    """Return the ledger keys of the session's database (found once per database URL)."""
    url = _bind(session).engine.url.render_as_string(hide_password=False)
    with _keys_lock:
        keys = _keys_by_url.get(url)
        if keys is None:
            keys = _keys_by_url[url] = find_keys(url)
        return keys


def record_admin_event(
    session: Session | Connection,
    action: AdminAction,
    *,
    principal: str = ADMIN,
    actor_id: uuid.UUID | None = None,
    instance_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | str | int | None = None,
    details: Mapping[str, Any] | None = None,
    keys: KeyProvider | None = None,
    now: datetime | None = None,
) -> int:
    """Append one admin-ledger row in the session's transaction; return its sequence."""
    keys = keys if keys is not None else keys_of(session)
    if _bind(session).dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMIN_LOCK})
    tail = session.execute(
        select(AdminEvent.sequence, AdminEvent.chain_hash)
        .order_by(AdminEvent.sequence.desc())
        .limit(1)
    ).first()
    sequence, previous = (1, None) if tail is None else (tail[0] + 1, tail[1])
    moment = now or utcnow()
    key_id = keys.current_id
    row: dict[str, Any] = {
        "sequence": sequence,
        "recorded_at": moment,
        "principal": principal,
        "actor_id": actor_id,
        "action": str(action),
        "instance_id": instance_id,
        "subject_id": None if subject_id is None else str(subject_id),
        "details": dict(details) if details is not None else None,
        "key_id": key_id,
    }
    link = admin_link(keys, previous, canonical_values(row))
    if link is None:
        raise ConfigurationError(f"the current ledger key {key_id} is not held")
    session.execute(insert(AdminEvent).values(**row, chain_hash=link))
    return sequence


def canonical_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a row's linked values in canonical form (ids and time as text)."""
    values = {name: row[name] for name in ADMIN_LINK_FIELDS}
    for name in ("actor_id", "instance_id"):
        if values[name] is not None:
            values[name] = str(values[name])
    if isinstance(values["recorded_at"], datetime):
        values["recorded_at"] = format_timestamp(values["recorded_at"])
    return values
