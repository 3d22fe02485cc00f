"""Canonical JSON, content hashes and chain links (no I/O)."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_vectors import VECTOR_ATTRS, VECTOR_ROW_1, VECTOR_ROW_2

from chameleon_workflow.chain import attribute_diff
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.hashing import (
    GENESIS_HASH,
    canonical_json,
    canonical_record,
    content_hash,
    es_number,
    reference_canonical_json,
)

SAFE = 2**53 - 1
# Keys mix ASCII, BMP characters on both sides of U+E000 and supplementary characters,
# where UTF-16 order (JCS) and code point order differ.
keys = st.text(
    alphabet=st.sampled_from(["a", "b", "Z", "é", "\u20ac", "\ue000", "\uffee", "\U0001f600"]),
    max_size=4,
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400)
@given(json_values)
def test_fast_path_is_byte_identical_to_rfc8785(value: Any) -> None:
    """canonical_json equals the RFC 8785 reference on every accepted value."""
    assert canonical_json(value) == bytes(rfc8785.dumps(value))


@settings(max_examples=2000)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_matches_ecmascript(value: float) -> None:
    """Floats render exactly as the reference renders them."""
    assert es_number(value).encode() == bytes(rfc8785.dumps(value))


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(["transition_metadata", "changes"]), json_values),
    st.text(),
    st.integers(min_value=0, max_value=SAFE),
)
def test_record_fast_path_matches_full_canonical_form(
    nested: dict[str, Any], text: str, number: int
) -> None:
    """canonical_record equals canonical_json for flat records with nested JSON fields."""
    fields = {"reasoning": text, "sequence": number, "transition_metadata": None, "changes": None}
    fields.update(nested)
    expected = canonical_json(fields)
    assert canonical_record(fields, ("transition_metadata", "changes")) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (math.nan, "not a JSON number"),
        (math.inf, "not a JSON number"),
        ({1, 2}, "set value"),
        (object(), "object value"),
        (b"bytes", "bytes value"),
        ((1, 2), "tuple value"),
        (2**53, "outside"),
        ({1: "a"}, "JSON keys are strings"),
        ({"a": [1, {"b": math.nan}]}, "value.a[1].b"),
        ("\ud800", "cannot be serialized"),
    ],
)
def test_non_json_values_are_refused(value: Any, fragment: str) -> None:
    """Values that are not JSON raise InvalidValueError naming the problem, never stringify."""
    with pytest.raises(InvalidValueError) as info:
        canonical_json(value)
    assert fragment in str(info.value)


def test_too_deep_nesting_is_refused() -> None:
    """Nesting beyond the limit is refused rather than recursing without bound."""
    value: Any = 1
    for _ in range(100):
        value = [value]
    with pytest.raises(InvalidValueError, match="nested deeper than 64"):
        canonical_json(value)


def test_equal_numbers_hash_equally() -> None:
    """1 and 1.0 are one JSON number, so they give one content hash (round-trip safety)."""
    assert content_hash({"n": 1}) == content_hash({"n": 1.0})
    assert content_hash({"n": True}) != content_hash({"n": 1})


def test_published_vectors() -> None:
    """The test vectors published in docs/ledger.md hold."""
    assert (
        canonical_json(VECTOR_ATTRS)
        == (
            '{"amount":1250.5,"approved":false,"currency":"EUR","lines":[1,2,1e+21],'
            '"note":"café ☕","€":null}'
        ).encode()
    )
    assert content_hash(VECTOR_ATTRS) == (
        "264eea2221c5334cfbbc4a84665a0593226858b37df240b26916e5ccf6f7a171"
    )
    assert content_hash({}) == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    link1 = VECTOR_ROW_1.link(None)
    assert link1 == "2e766e4ece61cc6720c6d235054aaa89ab674809807a7faf8eb8124bc0c088bc"
    assert VECTOR_ROW_1.link(GENESIS_HASH) == link1
    assert VECTOR_ROW_2.link(link1) == (
        "5f741fdcf1f987307ab7a5159486503237113e96bbd02ab0487ad58bc09e502c"
    )


def test_vectors_agree_with_reference_serializer() -> None:
    """The chain link equals SHA-256 over the previous link and the reference canonical form."""
    body = reference_canonical_json(VECTOR_ROW_2.hash_input())
    link1 = VECTOR_ROW_1.link(None)
    expected = hashlib.sha256(link1.encode() + body).hexdigest()
    assert VECTOR_ROW_2.link(link1) == expected


def test_attribute_diff_names_added_removed_and_changed() -> None:
    """The diff lists added, removed and changed keys with old and new values."""
    before = {"a": 1, "b": "x", "c": [1]}
    after = {"a": 1.0, "b": "y", "d": None}
    assert attribute_diff(before, after) == {
        "added": {"d": None},
        "removed": {"c": [1]},
        "changed": {"b": {"old": "x", "new": "y"}},
    }
