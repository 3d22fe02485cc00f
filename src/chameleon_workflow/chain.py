"""The recorded fields of a history row and how a row links to the one before it.

Both the writer (``ledger``) and the verifier (``audit``) build their links here;
docs/ledger.md publishes both formats with test vectors. Format version 1 (rows written
before keyed links; still verified exactly as before) is ``LedgerRecord``:

    chain_hash = SHA-256( previous_chain_hash_hex || canonical_json(hash_input) )

Format version 2 (every row written now) is ``KeyedRecord``, a MAC under the ledger key
named in the row:

    chain_hash = HMAC-SHA256( key[key_id], previous_chain_hash_hex || canonical_json(hash_input) )

Its input adds the holder, the retry count, the creation facts and the digest of the
attribute rows written with the row, and leaves out ``changes``: a link commits to salted
digests of attribute values (``value_digest``), never to a value, so a value can later
be erased while the chain still verifies; verification checks ``changes`` against the
attribute rows instead. ``previous_chain_hash_hex`` is 64 zeros for a UOW's first row.
Ids are lowercase hyphenated UUID text, the timestamp is ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
(UTC), absent values are JSON null.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter, itemgetter
from typing import Any

import orjson

from chameleon_workflow.hashing import GENESIS_HASH, canonical_json, canonical_record, stored_json
from chameleon_workflow.keys import KeyProvider

_NESTED = ("transition_metadata", "changes")


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """The hashed content of one ``uow_history`` row, in canonical text form."""

    history_id: str
    instance_id: str
    uow_id: str
    sequence: int
    event_type: str
    previous_status: str | None
    new_status: str
    previous_state_hash: str | None
    new_state_hash: str
    previous_interaction_id: str | None
    new_interaction_id: str | None
    actor_id: str | None
    transition_timestamp: str
    reasoning: str | None
    transition_metadata: Any
    changes: Any

    def hash_input(self) -> dict[str, Any]:
        """Return the mapping whose canonical JSON the chain hash covers."""
        return {
            "history_id": self.history_id,
            "instance_id": self.instance_id,
            "uow_id": self.uow_id,
            "sequence": self.sequence,
            "event_type": self.event_type,
            "previous_status": self.previous_status,
            "new_status": self.new_status,
            "previous_state_hash": self.previous_state_hash,
            "new_state_hash": self.new_state_hash,
            "previous_interaction_id": self.previous_interaction_id,
            "new_interaction_id": self.new_interaction_id,
            "actor_id": self.actor_id,
            "transition_timestamp": self.transition_timestamp,
            "reasoning": self.reasoning,
            "transition_metadata": self.transition_metadata,
            "changes": self.changes,
        }

    def link(self, previous_chain_hash: str | None) -> str:
        """Return this row's chain hash given the previous row's (None for the first row)."""
        return chain_link(previous_chain_hash, _record_values(self))


#: The hashed fields, in LedgerRecord order (also the order ``chain_link`` takes them in).
HASHED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LedgerRecord))
_record_values = attrgetter(*HASHED_FIELDS)


def chain_link(previous_chain_hash: str | None, values: Sequence[Any]) -> str:
    """Return the chain hash of a row given as its values in ``HASHED_FIELDS`` order.

    The one definition behind ``LedgerRecord.link``; verification calls it straight on
    database rows, skipping a record object per row.
    """
    prev = (previous_chain_hash or GENESIS_HASH).encode("ascii")
    body = canonical_record(dict(zip(HASHED_FIELDS, values, strict=True)), _NESTED)
    return hashlib.sha256(prev + body).hexdigest()


def attribute_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Describe how attributes changed: added, removed and changed (with old and new)."""
    added = {k: v for k, v in after.items() if k not in before}
    removed = {k: v for k, v in before.items() if k not in after}
    changed = {
        k: {"old": before[k], "new": v}
        for k, v in after.items()
        if k in before and not _same(before[k], v)
    }
    return {"added": added, "removed": removed, "changed": changed}


def _same(a: Any, b: Any) -> bool:
    # Compare as JSON, not as Python: 1 and 1.0 are one number, True and 1 are not.
    return a is b or canonical_json(a) == canonical_json(b)


def is_empty_diff(diff: dict[str, Any]) -> bool:
    """Tell whether a diff records no change at all."""
    return not (diff["added"] or diff["removed"] or diff["changed"])


#: The hashed fields in canonical (sorted) key order, then the stored chain hash: the column
#: layout verification reads history rows in (JSON columns as their stored text).
STORED_ROW_FIELDS: tuple[str, ...] = (*sorted(HASHED_FIELDS), "chain_hash")
_in_record_order = itemgetter(*(STORED_ROW_FIELDS.index(f) for f in HASHED_FIELDS))
_SORTED = orjson.OPT_SORT_KEYS


def stored_link_matches(previous_chain_hash: str, row: Sequence[Any]) -> bool:
    """Tell whether a stored history row's chain hash is its link from ``previous_chain_hash``.

    ``row`` holds the columns named in ``STORED_ROW_FIELDS``. The answer is exactly
    ``chain_link(previous, decoded row) == row's chain_hash``; it is reached quickly by
    hashing plain sorted orjson output first. orjson renders every value it is given
    faithfully (what it cannot render - NaN never comes out of ``orjson.loads``, other
    types are screened below - raises or is screened), so if those bytes hash to the
    stored link they *are* the canonical bytes that were hashed when the row was written,
    and they parse back to this row's values: the reference computes the same bytes. When
    they do not match (floats such as ``1.0`` that JCS writes differently, keys JCS orders
    by UTF-16, or a real tamper) the reference serializer decides.
    """
    # Unpacked by name rather than zipped with the field names: half the cost per row.
    (
        actor_id,
        changes,
        event_type,
        history_id,
        instance_id,
        new_interaction_id,
        new_state_hash,
        new_status,
        previous_interaction_id,
        previous_state_hash,
        previous_status,
        reasoning,
        sequence,
        meta,
        transition_timestamp,
        uow_id,
        stored,
    ) = row
    if (
        type(sequence) is int
        and (meta is None or type(meta) is str)
        and (changes is None or type(changes) is str)
    ):
        try:
            body = orjson.dumps(
                {
                    "actor_id": actor_id,
                    "changes": None if changes is None else orjson.loads(changes),
                    "event_type": event_type,
                    "history_id": history_id,
                    "instance_id": instance_id,
                    "new_interaction_id": new_interaction_id,
                    "new_state_hash": new_state_hash,
                    "new_status": new_status,
                    "previous_interaction_id": previous_interaction_id,
                    "previous_state_hash": previous_state_hash,
                    "previous_status": previous_status,
                    "reasoning": reasoning,
                    "sequence": sequence,
                    "transition_metadata": None if meta is None else orjson.loads(meta),
                    "transition_timestamp": transition_timestamp,
                    "uow_id": uow_id,
                },
                option=_SORTED,
            )
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            pass  # the reference path below raises or decides, exactly as it always did
        else:
            if hashlib.sha256(previous_chain_hash.encode() + body).hexdigest() == stored:
                return True
    values = list(_in_record_order(row))
    values[-2], values[-1] = stored_json(meta), stored_json(changes)
    return bool(chain_link(previous_chain_hash, values) == stored)


# ------------------------------------------------------------ format version 2: keyed links

#: The link format every new row is written in.
LINK_VERSION = 2
_KEYED_NESTED = ("transition_metadata",)


@dataclass(frozen=True, slots=True)
class KeyedRecord:
    """The linked content of one ``uow_history`` row in format 2, and its stored ``changes``."""

    history_id: str
    instance_id: str
    uow_id: str
    sequence: int
    event_type: str
    previous_status: str | None
    new_status: str
    previous_state_hash: str | None
    new_state_hash: str
    previous_interaction_id: str | None
    new_interaction_id: str | None
    actor_id: str | None
    transition_timestamp: str
    reasoning: str | None
    transition_metadata: Any
    holder_id: str | None
    retry_count: int
    attributes_digest: str | None
    local_workflow_id: str | None
    parent_id: str | None
    key_id: str
    #: Stored with the row but not linked: verification checks it against the attribute rows.
    changes: Any = field(default=None, compare=False)

    def hash_input(self) -> dict[str, Any]:
        """Return the mapping whose canonical JSON the MAC covers (``changes`` left out)."""
        values = dict(zip(KEYED_FIELDS, _keyed_values(self), strict=True))
        values["link_version"] = LINK_VERSION
        return values

    def link(self, previous_chain_hash: str | None, keys: KeyProvider) -> str:
        """Return this row's chain hash: the MAC under ``key_id`` from the previous link."""
        prev = (previous_chain_hash or GENESIS_HASH).encode("ascii")
        mac = keys.mac(self.key_id, prev + canonical_record(self.hash_input(), _KEYED_NESTED))
        if mac is None:
            raise KeyError(f"ledger key {self.key_id} is not held")
        return mac


#: The linked fields of format 2 other than the constant ``link_version``.
KEYED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(KeyedRecord) if f.name != "changes")
_keyed_values = attrgetter(*KEYED_FIELDS)
#: The columns format 2 adds, read after ``STORED_ROW_FIELDS`` by verification.
KEYED_COLUMNS: tuple[str, ...] = (
    "link_version",
    "key_id",
    "holder_id",
    "retry_count",
    "attributes_digest",
    "local_workflow_id",
    "parent_id",
)
#: Every column verification reads of a history row, in this order.
STORED_KEYED_FIELDS: tuple[str, ...] = (*STORED_ROW_FIELDS, *KEYED_COLUMNS)
_KEY_AT, _STORED_AT = STORED_KEYED_FIELDS.index("key_id"), STORED_KEYED_FIELDS.index("chain_hash")


def stored_keyed_link_matches(
    keys: KeyProvider, previous_chain_hash: str, row: Sequence[Any]
) -> bool | None:
    """Tell whether a stored format-2 row's chain hash is its MAC (None: its key is not held).

    ``row`` holds the columns of ``STORED_KEYED_FIELDS``. As in ``stored_link_matches``,
    sorted orjson (``keyed_link_body``) is tried first; the reference decides otherwise.
    """
    prev, key_id, stored = previous_chain_hash.encode("ascii"), row[_KEY_AT], row[_STORED_AT]
    body = keyed_link_body(row)
    if body is not None:
        mac = keys.mac(key_id, prev + body)
        if mac is None or mac == stored:
            return None if mac is None else True
    return reference_keyed_link_matches(keys, previous_chain_hash, row)


def reference_keyed_link_matches(
    keys: KeyProvider, previous_chain_hash: str, row: Sequence[Any]
) -> bool | None:
    """Decide a format-2 row's MAC with the reference serializer (None: key not held)."""
    named = dict(zip(STORED_KEYED_FIELDS, row, strict=True))
    values = {name: named[name] for name in KEYED_FIELDS}
    values["link_version"] = LINK_VERSION
    values["transition_metadata"] = stored_json(named["transition_metadata"])
    prev = previous_chain_hash.encode("ascii")
    mac = keys.mac(named["key_id"], prev + canonical_record(values, _KEYED_NESTED))
    return None if mac is None else mac == named["chain_hash"]


def keyed_link_body(row: Sequence[Any]) -> bytes | None:
    """Return a format-2 row's MAC input as sorted orjson (None: left to the reference).

    ``row`` holds the columns of ``STORED_KEYED_FIELDS``. orjson renders faithfully what
    it is given (other types are screened out), so bytes that carry the stored MAC are the
    canonical bytes the writer linked; otherwise ``reference_keyed_link_matches`` decides.
    """
    (
        actor_id,
        _changes,
        event_type,
        history_id,
        instance_id,
        new_interaction_id,
        new_state_hash,
        new_status,
        previous_interaction_id,
        previous_state_hash,
        previous_status,
        reasoning,
        sequence,
        meta,
        transition_timestamp,
        uow_id,
        _stored,
        _version,
        key_id,
        holder_id,
        retry_count,
        attributes_digest,
        local_workflow_id,
        parent_id,
    ) = row
    if type(sequence) is not int or type(retry_count) is not int:
        return None
    try:
        if meta is not None:
            if type(meta) is not str:
                return None
            meta = orjson.loads(meta)
        return orjson.dumps(
            {
                "actor_id": actor_id,
                "attributes_digest": attributes_digest,
                "event_type": event_type,
                "history_id": history_id,
                "holder_id": holder_id,
                "instance_id": instance_id,
                "key_id": key_id,
                "link_version": LINK_VERSION,
                "local_workflow_id": local_workflow_id,
                "new_interaction_id": new_interaction_id,
                "new_state_hash": new_state_hash,
                "new_status": new_status,
                "parent_id": parent_id,
                "previous_interaction_id": previous_interaction_id,
                "previous_state_hash": previous_state_hash,
                "previous_status": previous_status,
                "reasoning": reasoning,
                "retry_count": retry_count,
                "sequence": sequence,
                "transition_metadata": meta,
                "transition_timestamp": transition_timestamp,
                "uow_id": uow_id,
            },
            option=_SORTED,
        )
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None  # the reference path raises or decides


def value_digest(salt: str, value: Any) -> str:
    """Return an attribute value's salted digest: SHA-256(salt hex text || canonical value)."""
    return hashlib.sha256(salt.encode("ascii") + canonical_json(value)).hexdigest()


#: The facts of an attribute row its history row commits to, in ``attribute_entry`` order.
ATTRIBUTE_ENTRY_FIELDS = (
    "key", "version", "value_digest", "is_deleted", "actor_id", "reasoning", "created_at",
    "instance_id",
)  # fmt: skip


def attributes_digest(entries: Sequence[tuple[Any, ...]]) -> str | None:
    """Return the digest of the attribute rows one history row wrote (None when none).

    Each entry holds the ``ATTRIBUTE_ENTRY_FIELDS`` as canonical text (ids, timestamps),
    ``version`` an int and ``is_deleted`` a bool; the digest is SHA-256 over the
    canonical JSON list of those objects in key order.
    """
    if not entries:
        return None
    return hashlib.sha256(canonical_json(attribute_objects(entries), "attribute rows")).hexdigest()


def attribute_objects(entries: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Return the entries as the objects ``attributes_digest`` hashes, in key order."""
    ordered = sorted(entries, key=itemgetter(0))
    return [dict(zip(ATTRIBUTE_ENTRY_FIELDS, e, strict=True)) for e in ordered]
