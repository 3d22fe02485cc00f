"""How a log row is linked into its writer's stream, and the seal of rows written before.

Each log row of a stream links to the one before it: ``chain_hash`` is the HMAC-SHA256,
under the ledger key named by ``key_id``, of the previous row's link (hex; 64 zeros for a
stream's first row) followed by the RFC 8785 canonical JSON of the row's
``LOG_LINK_FIELDS`` (``log_body``). Rows written before streams existed have no stream;
migration 0006 sealed their number and digest (``legacy_digest``) in the one row of the
legacy stream (``LEGACY_STREAM_ID``), linked in format 1: plain SHA-256 (``legacy_link``).
The writer is ``telemetry.streams``; verification ``audit.streams``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chameleon_workflow.hashing import GENESIS_HASH, canonical_json, canonical_record
from chameleon_workflow.keys import KeyProvider

#: The columns a stream link covers, in the order ``log_body`` takes them.
LOG_LINK_FIELDS = (
    "log_id",
    "instance_id",
    "uow_id",
    "actor_id",
    "role_id",
    "interaction_id",
    "timestamp",
    "log_type",
    "event_details",
    "error_metadata",
    "stream_id",
    "stream_seq",
    "key_id",
)
#: The columns of a log row written before streams (what the legacy seal digests).
LEGACY_LOG_FIELDS = LOG_LINK_FIELDS[:10]
_NESTED = ("event_details", "error_metadata")
#: The stream of the seal of rows written before streams existed.
LEGACY_STREAM_ID = uuid.UUID("00000000-0000-5000-8000-00000000006c")


def log_body(previous: str | None, values: Mapping[str, Any]) -> bytes:
    """Return what a log row's link covers: the previous link, then the row's canonical form.

    ``values`` holds ``LOG_LINK_FIELDS``: ids and the timestamp as their canonical text,
    the JSON columns as JSON values, ``stream_seq`` as an int.
    """
    record = {name: values[name] for name in LOG_LINK_FIELDS}
    return (previous or GENESIS_HASH).encode("ascii") + canonical_record(record, _NESTED)


def log_digest(values: Mapping[str, Any]) -> str:
    """Return SHA-256 of a log row's canonical linked form (what a redaction record keeps)."""
    return hashlib.sha256(log_body(None, values)).hexdigest()


def log_link(keys: KeyProvider, previous: str | None, values: Mapping[str, Any]) -> str | None:
    """Return a log row's link under the key it names (None: that key is not held)."""
    return keys.mac(str(values["key_id"]), log_body(previous, values))


def legacy_link(values: Mapping[str, Any]) -> str:
    """Return the format-1 link of the legacy seal (plain SHA-256, it has no key)."""
    return hashlib.sha256(log_body(None, values)).hexdigest()


def legacy_digest(rows: Iterable[Sequence[Any]]) -> tuple[int, str]:
    """Count and digest rows written before streams (``LEGACY_LOG_FIELDS``, in log_id order)."""
    digest, count = hashlib.sha256(), 0
    for row in rows:
        record = dict(zip(LEGACY_LOG_FIELDS, row, strict=True))
        digest.update(hashlib.sha256(canonical_json(record, "log row")).digest())
        count += 1
    return count, digest.hexdigest()
