"""Checking a stored history row's link: the fast path agrees with the reference (no I/O)."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_vectors import VECTOR_ATTRS as ATTRS
from ledger_vectors import VECTOR_ROW_1 as ROW_1

from chameleon_workflow.chain import (
    HASHED_FIELDS,
    STORED_ROW_FIELDS,
    LedgerRecord,
    chain_link,
    stored_link_matches,
)
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.hashing import GENESIS_HASH

LINK_1 = "2e766e4ece61cc6720c6d235054aaa89ab674809807a7faf8eb8124bc0c088bc"


def stored(record: LedgerRecord, chain: str, **text: Any) -> tuple[Any, ...]:
    """Lay a record out as verification reads it: JSON columns as stored text."""
    values = dict(zip(HASHED_FIELDS, dataclasses.astuple(record), strict=True))
    for key in ("transition_metadata", "changes"):
        value = values[key]
        values[key] = text.get(key, None if value is None else orjson.dumps(value).decode())
    values["chain_hash"] = chain
    return tuple(values[f] for f in STORED_ROW_FIELDS)


def test_stored_layout_is_sorted_fields_then_chain_hash() -> None:
    """Rows are read in canonical key order with the chain hash last."""
    assert STORED_ROW_FIELDS == (
        "actor_id",
        "changes",
        "event_type",
        "history_id",
        "instance_id",
        "new_interaction_id",
        "new_state_hash",
        "new_status",
        "previous_interaction_id",
        "previous_state_hash",
        "previous_status",
        "reasoning",
        "sequence",
        "transition_metadata",
        "transition_timestamp",
        "uow_id",
        "chain_hash",
    )


def test_published_vector_row_matches() -> None:
    """The documented row 1, stored as writers store it, matches its documented link."""
    assert ROW_1.link(None) == LINK_1
    assert stored_link_matches(GENESIS_HASH, stored(ROW_1, LINK_1)) is True


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("transition_metadata", '{ "source" : "test-vector" }'),  # PostgreSQL jsonb spacing
        ("changes", '{"removed":{},"changed":{},"added":' + orjson.dumps(ATTRS).decode() + "}"),
        (
            "changes",
            '{"added":{"amount":1250.50,"currency":"EUR","approved":false,"lines":[1.0,2,1E21],'
            '"note":"caf\\u00e9 \\u2615","\\u20ac":null},"removed":{},"changed":{}}',
        ),
        ("transition_metadata", '{"source":"test-vector","source":"test-vector"}'),
    ],
)
def test_equal_json_in_another_spelling_matches(column: str, text: str) -> None:
    """Stored JSON text that decodes to the hashed value matches, whatever its spelling."""
    row = stored(ROW_1, LINK_1, **{column: text})
    assert stored_link_matches(GENESIS_HASH, row) is True


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("reasoning", "created "),
        ("actor_id", "00000000-0000-4000-8000-0000000000dd"),
        ("sequence", 2),
        ("transition_timestamp", "2026-01-01T00:00:00.000001Z"),
        ("transition_metadata", '{"source":"test-vector "}'),
        ("transition_metadata", None),
        ("changes", '{"added":{},"removed":{},"changed":{}}'),
        ("previous_status", "null"),
        ("reasoning", 'created","sequence":1'),
    ],
)
def test_any_changed_column_does_not_match(column: str, value: Any) -> None:
    """Changing any hashed column, even into text that looks like JSON, breaks the link."""
    row = list(stored(ROW_1, LINK_1))
    row[STORED_ROW_FIELDS.index(column)] = value
    assert stored_link_matches(GENESIS_HASH, tuple(row)) is False


def test_wrong_previous_link_does_not_match() -> None:
    """The same row after another previous link does not match."""
    assert stored_link_matches("1" * 64, stored(ROW_1, LINK_1)) is False


def test_sqlite_number_in_a_json_column_takes_the_reference_path() -> None:
    """A JSON column handed back as a number (SQLite affinity) hashes as that number."""
    record = dataclasses.replace(ROW_1, transition_metadata=5, changes=None)
    link = record.link(None)
    assert stored_link_matches(GENESIS_HASH, stored(record, link, transition_metadata=5)) is True
    assert stored_link_matches(GENESIS_HASH, stored(record, link, transition_metadata=5.0)) is True
    assert stored_link_matches(GENESIS_HASH, stored(record, link, transition_metadata=6)) is False


def test_non_json_values_are_refused_as_before() -> None:
    """A stored value the reference refuses still raises instead of being waved through."""
    row = stored(ROW_1, LINK_1, transition_metadata=float("inf"))
    with pytest.raises(InvalidValueError, match="inf is not a JSON number"):
        stored_link_matches(GENESIS_HASH, row)
    deep = "[" * 70 + "]" * 70
    with pytest.raises(InvalidValueError, match="nested deeper than 64 levels"):
        stored_link_matches(GENESIS_HASH, stored(ROW_1, LINK_1, transition_metadata=deep))


SAFE = 2**53 - 1
keys = st.text(alphabet=st.sampled_from(["a", "b", "é", "\ue000", "\U0001f600"]), max_size=3)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300)
@given(json_values, json_values, st.text(), st.booleans())
def test_fast_check_agrees_with_the_reference(
    meta: Any, changes: Any, reasoning: str, tamper: bool
) -> None:
    """For any stored row, the answer is the reference's: chain_link(decoded row) == stored."""
    record = dataclasses.replace(ROW_1, transition_metadata=meta, changes=changes)
    link = record.link(None)
    row = list(stored(record, link, transition_metadata=orjson.dumps(meta).decode()))
    if tamper:
        row[STORED_ROW_FIELDS.index("reasoning")] = reasoning
    decoded = dataclasses.replace(record, reasoning=row[STORED_ROW_FIELDS.index("reasoning")])
    expected = chain_link(None, dataclasses.astuple(decoded)) == link
    assert stored_link_matches(GENESIS_HASH, tuple(row)) is expected
