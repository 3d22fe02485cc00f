"""What an attacker with write access does, with the project's own hashing code but no key."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from chameleon_workflow.chain import KeyedRecord, LedgerRecord
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.keys import Keyring, LedgerKey
from chameleon_workflow.ledger.writes import rows_digest
from chameleon_workflow.models import UnitsOfWorkHistory, UOWAttribute
from chameleon_workflow.testing import append_only_disabled

#: Turns a record and the previous link into (its link, its link_version).
Linker = Callable[[KeyedRecord, str | None], tuple[str, int]]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def records(session: Session, uow_id: uuid.UUID) -> list[KeyedRecord]:
    """Read a UOW's history rows back as the records they were linked from."""
    rows = session.scalars(
        select(UnitsOfWorkHistory)
        .where(UnitsOfWorkHistory.uow_id == uow_id)
        .order_by(UnitsOfWorkHistory.sequence)
    )
    return [
        KeyedRecord(
            history_id=str(r.history_id),
            instance_id=str(r.instance_id),
            uow_id=str(r.uow_id),
            sequence=r.sequence,
            event_type=str(r.event_type),
            previous_status=_text(r.previous_status),
            new_status=str(r.new_status),
            previous_state_hash=r.previous_state_hash,
            new_state_hash=r.new_state_hash,
            previous_interaction_id=_text(r.previous_interaction_id),
            new_interaction_id=_text(r.new_interaction_id),
            actor_id=_text(r.actor_id),
            transition_timestamp=format_timestamp(r.transition_timestamp),
            reasoning=r.reasoning,
            transition_metadata=r.transition_metadata,
            holder_id=_text(r.holder_id),
            retry_count=r.retry_count if r.retry_count is not None else 0,
            attributes_digest=r.attributes_digest,
            local_workflow_id=_text(r.local_workflow_id),
            parent_id=_text(r.parent_id),
            key_id=str(r.key_id),
            changes=r.changes,
        )
        for r in rows
    ]


def attributes_digest_at(session: Session, uow_id: uuid.UUID, sequence: int) -> str | None:
    """Recompute, as the writer does, the digest of the attribute rows a history row wrote."""
    rows = session.scalars(
        select(UOWAttribute).where(
            UOWAttribute.uow_id == uow_id, UOWAttribute.history_sequence == sequence
        )
    )
    return rows_digest([{c: getattr(r, c) for c in _ENTRY} for r in rows])


_ENTRY = ("key", "version", "value_digest", "is_deleted", "actor_id", "reasoning")
_ENTRY += ("created_at", "instance_id")


def guessed_key(key_id: str) -> Keyring:
    """Return a keyring that claims the real key's id with a secret the attacker made up."""
    return Keyring([LedgerKey(key_id, b"\x01" * 32, "")], key_id, "the attacker's guess")


def keyed_with(keys: Keyring) -> Linker:
    """Link as format 2 under ``keys`` (the attacker's, not the ledger's)."""
    return lambda record, previous: (record.link(previous, keys), 2)


def unkeyed(record: KeyedRecord, previous: str | None) -> tuple[str, int]:
    """Link as format 1, the unkeyed SHA-256 chain anyone can compute."""
    names = [f.name for f in dataclasses.fields(LedgerRecord)]
    return LedgerRecord(**{n: getattr(record, n) for n in names}).link(previous), 1


def rewrite(
    engine: Engine, forged: Sequence[KeyedRecord], link: Linker, start: int = 1
) -> str | None:
    """Store ``forged`` rows from sequence ``start`` on, each relinked with ``link``.

    The append-only triggers are lifted for the rewrite (the database owner can); the UOW
    row's content_hash and chain head follow. Returns the new head.
    """
    previous: str | None = None
    json = "CAST(:changes AS jsonb)" if engine.dialect.name == "postgresql" else ":changes"
    with append_only_disabled(engine), engine.begin() as conn:
        for record in forged:
            if record.sequence < start:
                previous = _stored_link(conn, record)
                continue
            previous, version = link(record, previous)
            conn.execute(
                text(
                    "UPDATE uow_history SET previous_state_hash = :p, new_state_hash = :n, "
                    "attributes_digest = :d, chain_hash = :c, link_version = :v, "
                    f"changes = {json} WHERE history_id = :h"
                ),
                {
                    "p": record.previous_state_hash,
                    "n": record.new_state_hash,
                    "d": record.attributes_digest,
                    "c": previous,
                    "v": version,
                    "changes": _json(record.changes),
                    "h": _id(engine, record.history_id),
                },
            )
        last = forged[-1]
        conn.execute(
            text("UPDATE units_of_work SET content_hash = :h, chain_head = :c WHERE uow_id = :u"),
            {"h": last.new_state_hash, "c": previous, "u": _id(engine, last.uow_id)},
        )
    return previous


def _stored_link(conn: Any, record: KeyedRecord) -> str:
    found = conn.execute(
        text("SELECT chain_hash FROM uow_history WHERE uow_id = :u AND sequence = :s"),
        {"u": _id(conn.engine, record.uow_id), "s": record.sequence},
    ).scalar_one()
    return str(found)


def _id(engine: Engine, value: str) -> Any:
    return value if engine.dialect.name == "sqlite" else uuid.UUID(value)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
