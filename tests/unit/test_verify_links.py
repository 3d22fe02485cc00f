"""Verification's fast link check: the keyring's MAC and the MAC input agree with the reference."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from test_link_format import KEYS, LINK_1, ROW_1, _stored

from chameleon_workflow.audit.checks import ENDS, STARTS, _Chain
from chameleon_workflow.audit.links import digest_matches, same_json
from chameleon_workflow.audit.report import Tally
from chameleon_workflow.chain import (
    KEYED_FIELDS,
    STORED_KEYED_FIELDS,
    keyed_link_body,
    reference_keyed_link_matches,
    value_digest,
)
from chameleon_workflow.hashing import GENESIS_HASH, canonical_json
from chameleon_workflow.keys import Keyring, LedgerKey

MESSAGES = [b"", b"x", bytes(range(256)) * 5]


@pytest.mark.parametrize("length", [32, 63, 64, 65, 100, 200])
def test_keyring_mac_is_hmac_sha256(length: int) -> None:
    """For any secret length (shorter, equal to and longer than the block) it is HMAC."""
    secret = bytes((i * 7 + length) % 256 for i in range(length))
    keys = Keyring.of(LedgerKey.of(secret))
    for message in MESSAGES:
        expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
        assert keys.mac(keys.current_id, message) == expected


def test_keyring_mac_knows_every_key_and_only_those() -> None:
    """Every key of the ring is held, each with its own secret; another key id is not."""
    keys = KEYS.rotated()
    for key_id, key in keys.keys.items():
        assert keys.mac(key_id, b"m") == hmac.new(key.secret, b"m", hashlib.sha256).hexdigest()
    assert keys.mac("0123456789abcdef", b"m") is None


def test_the_fast_input_carries_the_writers_mac() -> None:
    """A row as the writer stored it: the fast MAC input's MAC is its link."""
    body = keyed_link_body(_stored(ROW_1, LINK_1))
    assert body is not None
    assert KEYS.mac(KEYS.current_id, GENESIS_HASH.encode() + body) == LINK_1


@pytest.mark.parametrize("field", [f for f in KEYED_FIELDS if f != "key_id"])
def test_a_changed_field_never_carries_the_mac(field: str) -> None:
    """Any changed linked field changes the fast input (so it falls to the reference)."""
    value = getattr(ROW_1, field)
    changed = (
        7 if isinstance(value, int) else ('{"a": 2}' if field == "transition_metadata" else "x")
    )
    row = _stored(ROW_1, LINK_1, **{field: changed})
    body = keyed_link_body(row)
    assert body is None or KEYS.mac(KEYS.current_id, GENESIS_HASH.encode() + body) != LINK_1
    assert reference_keyed_link_matches(KEYS, GENESIS_HASH, row) is False


@pytest.mark.parametrize(
    "text",
    [
        {"sequence": "1"},
        {"retry_count": 0.0},
        {"transition_metadata": b"{}"},
        {"transition_metadata": "{not json"},
    ],
)
def test_other_types_are_left_to_the_reference(text: dict[str, Any]) -> None:
    """Values orjson would not render as the writer did give no fast input at all."""
    assert keyed_link_body(_stored(ROW_1, LINK_1, **text)) is None


SALT = "000102030405060708090a0b0c0d0e0f"
VALUES: list[Any] = [
    1250.5,
    1.0,
    1e21,
    5e-7,
    "café ☕",
    {"b": 1, "a": [True, None]},
    {"é": 1, "z": 2},
]


@pytest.mark.parametrize("value", VALUES)
def test_a_fast_digest_match_is_the_reference_digest(value: Any) -> None:
    """A match over sorted orjson is the reference's digest; no match leaves it to the reference."""
    stored = value_digest(SALT, value)
    if digest_matches(SALT.encode(), value, stored):
        assert stored == hashlib.sha256(SALT.encode() + canonical_json(value)).hexdigest()
    assert not digest_matches(SALT.encode(), value, value_digest(SALT, "other"))
    assert not digest_matches(b"", 2**70, hashlib.sha256(b"1180591620717411303424").hexdigest())


def test_same_json_never_equates_values_the_reference_tells_apart() -> None:
    """Equal sorted orjson means equal canonical forms; 1 and 1.0 are left to the reference."""
    assert same_json({"a": 1, "b": [1]}, {"b": [1], "a": 1})
    assert not same_json({"a": 1}, {"a": 2})
    assert not same_json(1, 1.0)  # canonical_json says equal: the reference decides
    assert canonical_json(1) == canonical_json(1.0)


def test_a_rows_start_and_the_previous_rows_end_are_compared_field_by_field() -> None:
    """The continuity check's two slices pair each previous_* column with its new_* column."""
    starts, ends = STORED_KEYED_FIELDS[STARTS], STORED_KEYED_FIELDS[ENDS]
    assert starts == ("previous_interaction_id", "previous_state_hash", "previous_status")
    assert ends == ("new_interaction_id", "new_state_hash", "new_status")


def test_a_key_not_held_is_never_settled_by_the_fast_path() -> None:
    """A row naming a key not held, its link erased (NULL), is counted unknown, not accepted."""
    other = _stored(ROW_1, LINK_1, key_id="0123456789abcdef", chain_hash=None)
    tally = Tally()
    _Chain(ROW_1.uow_id, KEYS, {}, tally).walk([other])
    assert tally.unknown_keys == {"0123456789abcdef": 1}
    forged = _stored(ROW_1, LINK_1, chain_hash=None)
    tally = Tally()
    _Chain(ROW_1.uow_id, KEYS, {}, tally).walk([forged])
    assert [f.kind.value for f in tally.findings][:1] == ["CHAIN_BROKEN"]
