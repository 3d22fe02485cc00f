"""Link format 2: the published test vectors, and what the MAC and the digests cover."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ledger_vectors import VECTOR_ROW_1

from chameleon_workflow.chain import (
    KEYED_FIELDS,
    STORED_KEYED_FIELDS,
    KeyedRecord,
    attributes_digest,
    stored_keyed_link_matches,
    value_digest,
)
from chameleon_workflow.hashing import GENESIS_HASH, content_hash
from chameleon_workflow.keys import Keyring, LedgerKey, fingerprint_of

SECRET = bytes(range(32))
KEYS = Keyring.of(LedgerKey.of(SECRET))
STAMP = "2026-01-01T00:00:00.000000Z"
INSTANCE = "00000000-0000-4000-8000-0000000000aa"
ATTRS = {"amount": 1250.5, "note": "café ☕"}
SALTS = {"amount": "000102030405060708090a0b0c0d0e0f", "note": "101112131415161718191a1b1c1d1e1f"}
ENTRIES = [
    (k, 1, value_digest(SALTS[k], v), False, None, "created", STAMP, INSTANCE)
    for k, v in ATTRS.items()
]
_V1 = {f.name: getattr(VECTOR_ROW_1, f.name) for f in dataclasses.fields(VECTOR_ROW_1)}
ROW_1 = KeyedRecord(
    **(_V1 | {"new_state_hash": content_hash(ATTRS), "changes": None}),
    holder_id=None,
    retry_count=0,
    attributes_digest=attributes_digest(ENTRIES),
    local_workflow_id="00000000-0000-4000-8000-0000000000ee",
    parent_id=None,
    key_id=KEYS.current_id,
)
ROW_2 = dataclasses.replace(
    ROW_1,
    history_id="00000000-0000-4000-8000-000000000002",
    sequence=2,
    event_type="TRANSITION",
    previous_status="PENDING",
    new_status="ACTIVE",
    previous_state_hash=ROW_1.new_state_hash,
    previous_interaction_id=ROW_1.new_interaction_id,
    actor_id="00000000-0000-4000-8000-0000000000dd",
    transition_timestamp="2026-01-01T00:00:01.500000Z",
    reasoning="checked out",
    transition_metadata=None,
    holder_id="00000000-0000-4000-8000-0000000000dd",
    attributes_digest=None,
    local_workflow_id=None,
)
LINK_1 = "66cd875f7b1812d1e266a47e964587bc865caf10346166bb0dcb0656b05b442f"
LINK_2 = "b4563ab2b5c568ed84624908dedfd4888f1ef56be69df87f83de9f9d84f88df8"


def test_published_vectors() -> None:
    """The key id, digests and links in docs/ledger.md come out of the code."""
    assert fingerprint_of(SECRET) == (
        "c0cd7c98b20633ee525352251a5aada96dddb42d8202445cb6c3b53878616b1a"
    )
    assert KEYS.current_id == "c0cd7c98b20633ee"
    assert [e[2] for e in ENTRIES] == [
        "3eb6fd2b19c67dd9a7dade94847b5526592495ceb7c5e9c71858617a5dc7dbff",
        "00f30fb59f846f12cea6d4e0d4846cf021169bfe23c7295f34adb85b7adff582",
    ]
    assert ROW_1.attributes_digest == (
        "328c09fb5250f3e890d53e49ec43141904a369fa0172da772ce105ea649c84db"
    )
    assert ROW_1.link(None, KEYS) == LINK_1
    assert ROW_2.link(LINK_1, KEYS) == LINK_2


def test_the_digest_does_not_depend_on_entry_order() -> None:
    """Entries are put in key order before hashing."""
    assert attributes_digest(list(reversed(ENTRIES))) == attributes_digest(ENTRIES)
    assert attributes_digest([]) is None


def test_the_salt_separates_equal_values() -> None:
    """The same value under two salts has two unrelated digests (a redacted value stays hidden)."""
    assert value_digest(SALTS["amount"], True) != value_digest(SALTS["note"], True)


def _stored(record: KeyedRecord, link: str, **text: Any) -> tuple[Any, ...]:
    values = dict(record.hash_input()) | {"changes": '{"x": 1}', "chain_hash": link}
    values["transition_metadata"] = '{"source": "test-vector"}'
    values |= text
    return tuple(values[f] for f in STORED_KEYED_FIELDS)


def test_a_stored_row_matches_its_link() -> None:
    """The verifier reads a stored row to the writer's link; changes are not linked."""
    assert stored_keyed_link_matches(KEYS, GENESIS_HASH, _stored(ROW_1, LINK_1)) is True
    spelled = _stored(ROW_1, LINK_1, transition_metadata='{ "source" : "test-vector" }')
    assert stored_keyed_link_matches(KEYS, GENESIS_HASH, spelled) is True


@pytest.mark.parametrize("field", [f for f in KEYED_FIELDS if f != "key_id"])
def test_every_linked_field_is_covered(field: str) -> None:
    """Changing any linked field of a stored row breaks its MAC."""
    value = getattr(ROW_1, field)
    changed = (
        7 if isinstance(value, int) else ('{"a": 2}' if field == "transition_metadata" else "x")
    )
    row = _stored(ROW_1, LINK_1, **{field: changed})
    assert stored_keyed_link_matches(KEYS, GENESIS_HASH, row) is False


def test_a_key_not_held_is_told_apart() -> None:
    """A row naming a key the keyring does not hold is neither matched nor broken: unknown."""
    other = dataclasses.replace(ROW_1, key_id="0123456789abcdef")
    assert stored_keyed_link_matches(KEYS, GENESIS_HASH, _stored(other, LINK_1)) is None
    with pytest.raises(KeyError, match="0123456789abcdef"):
        other.link(None, KEYS)
