"""The fast paths behind the hot loops give exactly what the plain definitions give."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from chameleon_workflow.chain import HASHED_FIELDS, LedgerRecord, chain_link
from chameleon_workflow.hashing import content_hash, format_timestamp
from chameleon_workflow.ledger.backend import AttributeRow
from chameleon_workflow.ledger.snapshot import Snapshot

zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


@given(st.datetimes(timezones=zones))
def test_format_timestamp_matches_strftime(moment: datetime) -> None:
    """The isoformat fast path renders every moment exactly as strftime does."""
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_timestamp(moment) == expected


RECORD = LedgerRecord(
    history_id="00000000-0000-4000-8000-000000000001",
    instance_id="00000000-0000-4000-8000-0000000000aa",
    uow_id="00000000-0000-4000-8000-0000000000bb",
    sequence=3,
    event_type="TRANSITION",
    previous_status="PENDING",
    new_status="ACTIVE",
    previous_state_hash="a" * 64,
    new_state_hash="a" * 64,
    previous_interaction_id=None,
    new_interaction_id="00000000-0000-4000-8000-0000000000cc",
    actor_id=None,
    transition_timestamp="2026-01-01T00:00:00.000000Z",
    reasoning="move",
    transition_metadata={"step": 1.5, "tags": ["x"]},
    changes=None,
)


def test_chain_link_on_values_equals_record_link() -> None:
    """Verification's per-row link equals the record's link for the same fields."""
    values = [getattr(RECORD, name) for name in HASHED_FIELDS]
    assert chain_link("b" * 64, values) == RECORD.link("b" * 64)
    assert chain_link(None, values) == RECORD.link(None)


def test_chain_link_sees_every_field() -> None:
    """Changing any hashed field changes the link."""
    base = RECORD.link(None)
    for name in HASHED_FIELDS:
        current = getattr(RECORD, name)
        other = "changed" if isinstance(current, str) or current is None else 99
        assert dataclasses.replace(RECORD, **{name: other}).link(None) != base, name


def _snapshot(rows: tuple[AttributeRow, ...]) -> Snapshot:
    return Snapshot(1, "", rows)


def test_memoized_drift_hash_equals_content_hash() -> None:
    """The memoized hash of raw rows is the content hash of the decoded attributes."""
    rows = (("a", 1, 1, False), ("b", 2, '"x"', False), ("c", 1, None, True))
    assert _snapshot(rows).attributes_hash() == content_hash({"a": 1, "b": "x"})
    assert _snapshot(rows).attributes_hash() == content_hash({"a": 1, "b": "x"})  # a memo hit


def test_memo_tells_apart_values_that_compare_equal_in_python() -> None:
    """1 and 1.0, '1' and 1 are different raw rows, each hashed on its own merits."""
    as_text = _snapshot((("a", 1, '"1"', False),)).attributes_hash()
    as_int = _snapshot((("a", 1, 1, False),)).attributes_hash()
    assert as_text == content_hash({"a": "1"})
    assert as_int == content_hash({"a": 1})
    assert as_text != as_int
