"""Leaf data: the canonical JSON of a row's table and every column, whatever the values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chameleon_workflow.checkpoints.leaves import leaf_data, plain
from chameleon_workflow.errors import CheckpointError
from chameleon_workflow.hashing import canonical_json, reference_canonical_json
from chameleon_workflow.states import LogType

SAFE = 2**53 - 1
text = st.text(st.characters(exclude_categories=("Cs",)))
keys = st.text(alphabet=st.sampled_from(["a", "b", "é", "\ue000", "\U0001f600"]), max_size=3)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
moments = st.datetimes(
    min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)
column_values = (
    json_values | st.uuids() | moments | st.sampled_from(list(LogType)) | st.booleans() | text
)
column_names = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)


@given(st.dictionaries(column_names, column_values, max_size=8))
def test_leaf_data_is_the_canonical_json_of_table_and_row(row: dict[str, Any]) -> None:
    """The fast leaf form equals RFC 8785 over {"row": plain columns, "table": name}."""
    columns = {name: plain(value, name) for name, value in row.items()}
    expected = canonical_json({"row": columns, "table": "uow_history"})
    assert leaf_data("uow_history", row) == expected
    assert expected == reference_canonical_json({"row": columns, "table": "uow_history"})


def test_plain_forms_of_ids_times_and_enumerations() -> None:
    """Ids become their text, times canonical UTC text, enumerations their value."""
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    ident = uuid.UUID("00000000-0000-4000-8000-0000000000ab")
    assert [plain(v, "c") for v in (ident, moment, LogType.ERROR, None, True, 7)] == [
        "00000000-0000-4000-8000-0000000000ab",
        "2026-01-02T03:04:05.000006Z",
        "ERROR",
        None,
        True,
        7,
    ]


def test_a_value_with_no_leaf_form_is_refused() -> None:
    """A column value that is not JSON, an id, a time or an enumeration is a CheckpointError."""
    with pytest.raises(CheckpointError, match=r"uow_history\.blob: a bytes has no leaf form"):
        leaf_data("uow_history", {"blob": b"\x00"})
