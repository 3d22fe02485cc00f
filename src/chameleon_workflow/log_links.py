"""How a log row is linked into its writer's stream, and the seal of rows written before.

Each log row of a stream links to the one before it: ``chain_hash`` is the HMAC-SHA256,
under the ledger key named by ``key_id``, of the previous row's link (hex; 64 zeros for a
stream's first row) followed by the RFC 8785 canonical JSON of the row's
``LOG_LINK_FIELDS`` (``log_body``). Rows written before streams existed have no stream;
migration 0006 sealed their number and digest (``legacy_digest``) in the one row of the
legacy stream (``LEGACY_STREAM_ID``), linked in format 1: plain SHA-256 (``legacy_link``).
The writer is ``telemetry.streams``; verification ``audit.streams``.

Both compute ``log_body`` for every row, so it has a fast path: when the JSON columns are
null, or objects and arrays holding no floats (string keys; strings, integers, booleans,
nulls, objects and arrays), orjson with sorted keys already writes their RFC 8785
bytes, provided no integer is beyond 2**53 (orjson is told to refuse those) and no
character at or above U+E000 appears (where UTF-16 order, JCS's, and code point order
can differ). Anything else takes the reference path (``hashing.canonical_record``); a
property test proves both give the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

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

_SCALAR_FIELDS = tuple(name for name in LOG_LINK_FIELDS if name not in _NESTED)
_SCALAR_TYPES = frozenset({str, int, type(None)})
_FLAT_TYPES = frozenset({str, int, bool, type(None)})
_STR_TYPE = frozenset({str})
_CONTAINERS = frozenset({dict, list})
_PLAIN_TYPES = _FLAT_TYPES | _CONTAINERS
#: Deeper documents take the reference path (which enforces its own limit of 64).
_FAST_DEPTH = 8
#: Sorted keys, and integers beyond ±(2**53-1) refused (JCS cannot hold them exactly).
_FAST_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
#: UTF-8 lead bytes of characters at or above U+E000 (continuation bytes are 0x80-0xBF).
_HIGH_LEAD = re.compile(rb"[\xee-\xf4]")


def _plain(value: dict[Any, Any] | list[Any], depth: int) -> bool:
    """Tell whether a container holds only string-keyed objects, arrays and non-floats."""
    items: Any = value
    if type(value) is dict:
        if not set(map(type, value)) <= _STR_TYPE:
            return False
        items = value.values()
    kinds = set(map(type, items))
    if kinds <= _FLAT_TYPES:
        return True
    if not kinds <= _PLAIN_TYPES or depth >= _FAST_DEPTH:
        return False
    return all(_plain(item, depth + 1) for item in items if type(item) in _CONTAINERS)


def fast_canonical(value: Any) -> bytes | None:
    """Return the RFC 8785 form of a JSON column fast, or None to take the reference path.

    Fast: null, and objects or arrays of string-keyed objects, arrays, strings, integers,
    booleans and nulls, nested at most ``_FAST_DEPTH`` levels. None is also returned when
    the fast form might differ from the reference (an integer beyond 2**53, a character
    at or above U+E000, a lone surrogate): ``hashing.canonical_json``'s path decides.
    """
    if value is None:
        return b"null"
    if type(value) not in _CONTAINERS or not _plain(value, 0):
        return None
    try:
        data = orjson.dumps(value, option=_FAST_OPTS)
    except orjson.JSONEncodeError:
        return None
    if not data.isascii() and _HIGH_LEAD.search(data):
        return None
    return data


def log_body(previous: str | None, values: Mapping[str, Any]) -> bytes:
    """Return what a log row's link covers: the previous link, then the row's canonical form.

    ``values`` holds ``LOG_LINK_FIELDS``: ids and the timestamp as their canonical text,
    the JSON columns as JSON values, ``stream_seq`` as an int.
    """
    prefix = (previous or GENESIS_HASH).encode("ascii")
    details = fast_canonical(values["event_details"])
    metadata = fast_canonical(values["error_metadata"]) if details is not None else None
    if details is not None and metadata is not None:
        scalars = {name: values[name] for name in _SCALAR_FIELDS}
        if set(map(type, scalars.values())) <= _SCALAR_TYPES:
            scalars["event_details"] = orjson.Fragment(details)
            scalars["error_metadata"] = orjson.Fragment(metadata)
            try:
                return prefix + orjson.dumps(scalars, option=_FAST_OPTS)
            except orjson.JSONEncodeError:
                pass  # a lone surrogate, or a sequence beyond 2**53: the reference decides
    record = {name: values[name] for name in LOG_LINK_FIELDS}
    return prefix + canonical_record(record, _NESTED)


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
