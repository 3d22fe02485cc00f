"""Row shaping and linking for ``interaction_logs``: entries become linked driver tuples.

Every entry becomes a row that cannot fail because of its content: details that are not
JSON become markers, ids that are not UUIDs become NULL (and are noted in the error
metadata), and NUL characters, which PostgreSQL's jsonb refuses, are replaced on both
back ends alike.

Every row is linked into its stream (``log_links``), which costs as much as writing it,
so the common row takes a fast path that computes the very same bytes: its JSON columns
null or free of floats (``log_links.fast_canonical``), the link body is filled into a
template of the canonical record (keys in RFC 8785 order, each value rendered as JSON
once per batch or per row), log ids come from one ``os.urandom`` call per batch, and an
entry's ids are converted once per batch. Any other row takes the reference path
(``log_links.log_body``). For PostgreSQL's binary COPY, UUIDs are handed over as their
16 bytes and JSON in jsonb's binary form (``writers.copy_postgres`` sends them as bytes).
"""

from __future__ import annotations

import binascii
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson

from chameleon_workflow.errors import ConfigurationError, InvalidValueError
from chameleon_workflow.hashing import GENESIS_HASH, format_timestamp
from chameleon_workflow.log_links import LOG_LINK_FIELDS, fast_canonical, log_body
from chameleon_workflow.telemetry.entry import IdLike, TelemetryEntry
from chameleon_workflow.telemetry.streams import Stream

_ID_FIELDS = ("instance_id", "uow_id", "actor_id", "role_id", "interaction_id")
_ids_of = attrgetter(*_ID_FIELDS)
#: The linked fields in RFC 8785 order (all ASCII, so byte order) and the body template:
#: ``log_id``, ``log_type`` and ``timestamp`` are filled with text that needs no escaping
#: (checked where it is made), everything else with JSON.
_BODY_ORDER = (
    "actor_id",
    "error_metadata",
    "event_details",
    "instance_id",
    "interaction_id",
    "key_id",
    "log_id",
    "log_type",
    "role_id",
    "stream_id",
    "stream_seq",
    "timestamp",
    "uow_id",
)
if tuple(sorted(LOG_LINK_FIELDS)) != _BODY_ORDER:  # pragma: no cover - a guard on edits
    raise RuntimeError("the link body template no longer matches LOG_LINK_FIELDS")
_QUOTED = ("log_id", "timestamp")


def _slot(name: str) -> bytes:
    if name == "stream_seq":
        return b"%d"
    return b'"%b"' if name in _QUOTED else b"%b"


_BODY = b"{" + b",".join(b'"%s":%s' % (n.encode(), _slot(n)) for n in _BODY_ORDER) + b"}"
#: Set the version (4) and variant (RFC 4122) bits of random bytes, as ``uuid.uuid4`` does.
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))
_DASHES = (8, 13, 18, 23)
#: jsonb's binary form: a format version byte, then the JSON text.
_JSONB = b"\x01"
_UNLINKABLE = "a value JSON cannot hold exactly (such as an integer beyond 2**53)"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)[:1000]
    except Exception:  # noqa: BLE001 - a broken __repr__ must not fail a log row
        return f"<{type(value).__name__} with failing repr>"


def _json_default(value: Any) -> Any:
    return {"__unserializable__": type(value).__name__, "repr": _safe_repr(value)}


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def render_json(value: Any) -> bytes | None:
    """Serialize a details document for storage; anything not JSON becomes a marker."""
    if value is None:
        return None
    try:
        data = orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError, RecursionError):
        data = orjson.dumps({"__unserializable__": type(value).__name__, "repr": _safe_repr(value)})
    if b"\\u0000" in data:  # PostgreSQL jsonb refuses NUL; keep both back ends identical
        data = orjson.dumps(_strip_nul(orjson.loads(data)))
    return data


def _as_uuid(value: IdLike) -> uuid.UUID | None:
    if value is None or type(value) is uuid.UUID:
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _note_bad_ids(entry: TelemetryEntry) -> Any:
    """Return error metadata extended with ids that are not UUIDs (their columns stay NULL)."""
    bad = {
        name: _safe_repr(getattr(entry, name))
        for name in _ID_FIELDS
        if getattr(entry, name) is not None and _as_uuid(getattr(entry, name)) is None
    }
    meta = entry.error_metadata
    if not bad:
        return meta
    return (
        {**meta, "invalid_ids": bad}
        if isinstance(meta, dict)
        else {"original": meta, "invalid_ids": bad}
    )


@dataclass(slots=True)
class LinkedRows:
    """Rows in driver form, linked into a stream, the next row's sequence and the last link."""

    rows: list[tuple[Any, ...]]
    next_seq: int
    last_link: str | None


def _linked(
    values: dict[str, Any], previous: str | None, details: Any, metadata: Any
) -> tuple[bytes | None, bytes | None, bytes]:
    """Render the JSON columns into ``values``; return them and what the link covers.

    A value JSON cannot hold exactly (an integer beyond 2**53) cannot be put in canonical
    form, so the row keeps a marker with its ``repr`` instead: every row stays linkable.
    """
    stored = render_json(details), render_json(metadata)
    values["event_details"], values["error_metadata"] = (_decoded(d) for d in stored)
    try:
        return (*stored, log_body(previous, values))
    except InvalidValueError:
        stored = (
            render_json({"__unlinkable__": _UNLINKABLE, "repr": _safe_repr(details)}),
            render_json({"__unlinkable__": _UNLINKABLE, "repr": _safe_repr(metadata)}),
        )
        values["event_details"], values["error_metadata"] = (_decoded(d) for d in stored)
        return (*stored, log_body(previous, values))


def _decoded(data: bytes | None) -> Any:
    return None if data is None else orjson.loads(data)


def _log_ids(count: int) -> tuple[bytes, bytes]:
    """Return ``count`` random version-4 UUIDs: 16 bytes each, and 36 characters of text each.

    The text is made for the whole batch at once: each hex digit and dash column is one
    strided slice assignment, so no Python code runs per id.
    """
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    digits = binascii.hexlify(raw)
    text = bytearray(36 * count)
    for column in range(36):
        if column in _DASHES:
            text[column::36] = b"-" * count
        else:
            digit = column - sum(1 for dash in _DASHES if dash < column)
            text[column::36] = digits[digit::32]
    return bytes(raw), bytes(text)


#: An entry's five ids: JSON for the link body (actor, instance, interaction, role, uow),
#: text and 16-byte forms in column order, and whether one of them is not a UUID.
_Ids = tuple[bytes, bytes, bytes, bytes, bytes, tuple[Any, ...], tuple[Any, ...], bool]


def _shape_ids(ids: tuple[IdLike, ...]) -> _Ids:
    uuids = [_as_uuid(value) for value in ids]
    texts = tuple(None if u is None else str(u) for u in uuids)
    raws = tuple(None if u is None else u.bytes for u in uuids)
    json = {
        n: b"null" if t is None else b'"%b"' % t.encode()
        for n, t in zip(_ID_FIELDS, texts, strict=True)
    }
    bad = any(value is not None and u is None for value, u in zip(ids, uuids, strict=True))
    order = (json[name] for name in ("actor_id", "instance_id", "interaction_id", "role_id"))
    return (*order, json["uow_id"], texts, raws, bad)  # type: ignore[return-value]


_NO_JSON: tuple[bytes | None, bytes] = (None, b"null")


def _fast_json(value: Any) -> tuple[bytes | None, bytes] | None:
    """Return a JSON column's stored and canonical forms, or None for the reference path."""
    canonical = fast_canonical(value)
    if canonical is None or b"\\u0000" in canonical:  # NUL is replaced when stored
        return None
    return (None if value is None else orjson.dumps(value)), canonical


def link_lazily(
    entries: Iterable[TelemetryEntry], stream: Stream, position: LinkedRows, dialect: str
) -> Iterator[tuple[Any, ...]]:
    """Yield entries as linked driver tuples, moving ``position`` on with each row yielded.

    The rows start at ``position.next_seq``, linked to ``position.last_link``. Given to
    the driver as it is, each row is linked as the driver takes it, so on PostgreSQL the
    server ingests the rows already sent while the next ones are linked.
    """
    text, batch = dialect == "sqlite", list(entries)
    seq, previous = position.next_seq, position.last_link
    keys, key_id = stream.keys, stream.keys.current_id
    mac, key_json = keys.mac, orjson.dumps(key_id)
    stream_text = str(stream.stream_id)
    stream_json = b'"%b"' % stream_text.encode()
    stream_column: Any = stream_text if text else stream.stream_id.bytes
    raw_ids, text_ids = _log_ids(len(batch))
    shaped_ids: dict[tuple[int, ...], _Ids] = {}
    last_ids: Any = None
    kinds: dict[Any, bytes] = {}
    for index, e in enumerate(batch):
        ids = _ids_of(e)
        if ids != last_ids:  # consecutive entries mostly share their id objects
            shape_key = tuple(map(id, ids))  # entries keep their ids alive: no id() reused
            shaped = shaped_ids.get(shape_key)
            if shaped is None:
                shaped = shaped_ids[shape_key] = _shape_ids(ids)
            actor, instance, interaction, role, uow, texts, raws, bad = shaped
            last_ids = ids
        log_id = text_ids[36 * index : 36 * index + 36]
        moment: datetime = e.timestamp  # type: ignore[assignment] # set by __post_init__
        stamp = format_timestamp(moment)
        meta = _note_bad_ids(e) if bad else e.error_metadata
        kind = kinds.get(e.log_type)
        if kind is None and type(e.log_type) is str:  # always, unless an entry was edited
            kind = kinds[e.log_type] = orjson.dumps(e.log_type)
        details_forms = _fast_json(e.event_details)
        meta_forms = _NO_JSON if meta is None else _fast_json(meta)
        if (
            details_forms is not None
            and meta_forms is not None
            and kind is not None
            and type(moment) is datetime  # a subclass may render text that needs escaping
        ):
            (details, details_canonical), (metadata, meta_canonical) = details_forms, meta_forms
            body = (previous or GENESIS_HASH).encode() + _BODY % (
                actor, meta_canonical, details_canonical, instance, interaction, key_json,
                log_id, kind, role, stream_json, seq, stamp.encode(), uow,
            )  # fmt: skip
        else:
            head = (log_id.decode(), *texts, stamp, e.log_type)
            values = dict(zip(LOG_LINK_FIELDS, head, strict=False))
            values.update(stream_id=stream_text, stream_seq=seq, key_id=key_id)
            details, metadata, body = _linked(values, previous, e.event_details, meta)
        link = mac(key_id, body)
        if link is None:
            raise ConfigurationError(f"the current ledger key {key_id} is not held")
        if text:
            texts_of = (details and details.decode(), metadata and metadata.decode())  # never b""
            row = (log_id.decode(), *texts, stamp, e.log_type, *texts_of)
        else:
            stored = (details and _JSONB + details, metadata and _JSONB + metadata)
            row = (raw_ids[16 * index : 16 * index + 16], *raws, moment, e.log_type, *stored)
        previous = link
        seq += 1
        position.next_seq, position.last_link = seq, link
        yield (*row, stream_column, seq - 1, key_id, link)


def link_rows(
    entries: Iterable[TelemetryEntry],
    stream: Stream,
    first_seq: int,
    previous: str | None,
    dialect: str,
) -> LinkedRows:
    """Convert and link entries for ``dialect`` (SQLite: text; PostgreSQL: binary COPY).

    PostgreSQL rows hold UUIDs as their 16 bytes and JSON in jsonb's binary form (version
    byte 1, then the text): the wire forms ``writers.copy_postgres`` sends as they are.
    """
    linked = LinkedRows([], first_seq, previous)
    linked.rows = list(link_lazily(entries, stream, linked, dialect))
    return linked
