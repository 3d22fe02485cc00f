"""The fast link path computes exactly the reference bytes (RFC 8785 via ``rfc8785``).

``log_links.fast_canonical`` and ``log_links.log_body`` take a fast path for common rows
and ``telemetry.rows.link_rows`` fills a template; each is checked here against the
reference serializer on arbitrary JSON-able values: floats, characters at or above
U+E000 and beyond the BMP, NUL, nesting, integers beyond 2**53 and values that are not
JSON at all. Stored JSON columns are checked against what ``render_json`` stores.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.hashing import (
    GENESIS_HASH,
    canonical_json,
    format_timestamp,
    reference_canonical_json,
)
from chameleon_workflow.keys import Keyring, LedgerKey
from chameleon_workflow.log_links import LOG_LINK_FIELDS, fast_canonical, log_body, log_link
from chameleon_workflow.states import LogType
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.rows import link_rows, render_json
from chameleon_workflow.telemetry.streams import Stream

KEYS = Keyring.of(LedgerKey.of(b"k" * 32))
_AWKWARD = ["\ue000", "\uffff", "\U0001f600", "\x00", "é", "\u2028", '"', "\\", "\x1f", "\x7f"]
keys_st = st.one_of(st.text(max_size=6), st.sampled_from(_AWKWARD), st.sampled_from("abcAB_"))
strings = st.one_of(st.text(max_size=8), st.sampled_from(_AWKWARD))
numbers = st.one_of(
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, -0.0, 1e21, 1e-7, 0.1, 5e-324]),
)
scalars = st.one_of(st.none(), st.booleans(), strings, numbers)
flat = st.dictionaries(keys_st, st.one_of(st.none(), st.booleans(), strings, st.integers()))
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys_st, inner, max_size=3),
    max_leaves=8,
)
#: Nested but float-free: what the fast path takes beyond flat objects.
nested_plain = st.recursive(
    st.one_of(st.none(), st.booleans(), strings, st.integers()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys_st, inner, max_size=3),
    max_leaves=10,
)
documents = st.one_of(st.none(), flat, flat, nested, nested_plain)
ids = st.one_of(
    st.none(),
    st.uuids(),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.just("junk"),
)
moments = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)


def _reference(value: Any) -> bytes | None:
    """Return the reference canonical form, or None when JCS refuses the value."""
    try:
        canonical_json(value)  # refuses what the project refuses (integers beyond 2**53)
        return reference_canonical_json(value)
    except Exception:  # any refusal counts (ours or the reference's)
        return None


@settings(max_examples=400, deadline=None)
@given(value=documents)
def test_fast_canonical_is_the_reference_or_declines(value: Any) -> None:
    """The fast form of a JSON column is the reference's bytes whenever it gives one."""
    fast = fast_canonical(value)
    if fast is not None:
        assert fast == _reference(value)
    plain = type(value) is dict and all(type(v) is str and v.isascii() for v in value.values())
    if plain and all(k.isascii() for k in value):
        assert fast is not None  # the common row really takes the fast path
    variables = {"condition": "x > 1", "variables": {"x": [1, "a", None, {"y": True}]}}
    assert fast_canonical(variables) == reference_canonical_json(variables)  # nested: fast


def _values(details: Any, metadata: Any, seq: Any = 3) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(LOG_LINK_FIELDS, "12345678-1234-5678-1234-567812345678")
    values.update(
        actor_id=None,
        timestamp="2026-01-01T00:00:00.000000Z",
        log_type="ERROR",
        event_details=details,
        error_metadata=metadata,
        stream_seq=seq,
        key_id=KEYS.current_id,
    )
    return values


@settings(max_examples=400, deadline=None)
@given(
    details=documents,
    metadata=documents,
    seq=st.integers(min_value=0, max_value=2**53 - 1),
    text=strings,
    previous=st.one_of(st.none(), st.text("0123456789abcdef", min_size=64, max_size=64)),
)
def test_log_body_is_the_reference(
    details: Any, metadata: Any, seq: int, text: str, previous: str | None
) -> None:
    """log_body gives the previous link then the reference canonical record, or refuses."""
    values = _values(details, metadata, seq) | {"role_id": text}
    expected = _reference(values)
    if expected is None:
        with pytest.raises(InvalidValueError):
            log_body(previous, values)
    else:
        assert log_body(previous, values) == (previous or GENESIS_HASH).encode() + expected


def _as_text(value: Any) -> Any:
    if isinstance(value, bytes) and len(value) == 16:
        return str(uuid.UUID(bytes=value))
    return value


def _stored_values(row: tuple[Any, ...], sqlite: bool) -> dict[str, Any]:
    """Read a written row back the way verification sees it (text ids, JSON values)."""
    values = dict(zip(LOG_LINK_FIELDS, row[:13], strict=True))
    for name in ("log_id", "instance_id", "uow_id", "actor_id", "role_id", "interaction_id"):
        values[name] = values[name] if sqlite else _as_text(values[name])
    values["stream_id"] = values["stream_id"] if sqlite else _as_text(values["stream_id"])
    if not sqlite:
        values["timestamp"] = format_timestamp(values["timestamp"])
    for name in ("event_details", "error_metadata"):
        values[name] = None if values[name] is None else orjson.loads(_json_text(values[name]))
    return values


def _json_text(stored: str | bytes) -> str | bytes:
    """Return a JSON column's text: PostgreSQL rows hold jsonb's binary form (version 1)."""
    if isinstance(stored, bytes):
        assert stored[:1] == b"\x01"
        return stored[1:]
    return stored


def _linkable(value: Any) -> bool:
    stored = render_json(value)
    return stored is None or _reference(orjson.loads(stored)) is not None


entry_st = st.builds(
    TelemetryEntry,
    ids,
    ids,
    ids,
    ids,
    ids,
    st.sampled_from([t.value for t in LogType]),
    documents,
    documents,
    moments,
)


@settings(max_examples=150, deadline=None)
@given(
    entries=st.lists(entry_st, min_size=1, max_size=6), dialect=st.sampled_from(["sqlite", "pg"])
)
def test_linked_rows_verify_against_the_reference(
    entries: list[TelemetryEntry], dialect: str
) -> None:
    """Every row's link is the MAC of the reference body of the row as stored."""
    sqlite = dialect == "sqlite"
    previous = "ab" * 32
    linked = link_rows(entries, Stream(uuid.uuid4(), KEYS), 5, previous, dialect)
    for entry, row in zip(entries, linked.rows, strict=True):
        values = _stored_values(row, sqlite)
        body = previous.encode() + reference_canonical_json(values)
        assert row[13] == KEYS.mac(KEYS.current_id, body) == log_link(KEYS, previous, values)
        assert uuid.UUID(values["log_id"]).version == 4
        assert values["timestamp"] == format_timestamp(entry.timestamp or datetime.now(UTC))
        details = None if row[8] is None else _json_text(row[8])
        details = details.encode() if isinstance(details, str) else details
        if details is None or b"__unlinkable__" not in details:
            assert details == render_json(entry.event_details)  # as stored before
        if _linkable(entry.event_details) and _linkable(entry.error_metadata):
            assert b"__unlinkable__" not in (details or b"")
        previous = row[13]
    assert linked.last_link == previous
    assert linked.next_seq == 5 + len(entries)


def test_common_rows_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard decisions and errors with flat details never reach the reference path."""
    from chameleon_workflow.telemetry import rows  # noqa: PLC0415 - patched below

    def refuse(*_: Any) -> Any:
        raise AssertionError("took the reference path")

    monkeypatch.setattr(rows, "_linked", refuse)
    ids_ = [uuid.uuid4() for _ in range(5)]
    entries = [
        TelemetryEntry(*ids_, "GUARDIAN_DECISION", {"guardian": "g", "step": i, "ok": True})
        for i in range(3)
    ] + [TelemetryEntry(None, None, None, None, None, "ERROR", {"café": "☕"}, {"code": 7})]
    for dialect in ("sqlite", "postgresql"):
        assert len(link_rows(entries, Stream(uuid.uuid4(), KEYS), 0, None, dialect).rows) == 4
