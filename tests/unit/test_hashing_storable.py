"""Values are refused when set if a database column could not store them (NUL)."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.hashing import canonical_json, validate_json, validate_text

NUL = "contains NUL (U+0000), which PostgreSQL text cannot store"


class _Tag(enum.StrEnum):
    BAD = "a\x00b"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("\x00", f"attributes.note: {NUL}"),
        ("tail\x00", f"attributes.note: {NUL}"),
        ({"a": [1, "ok", "x\x00y"]}, f"attributes.note.a[2]: {NUL}"),
        ({"a": {"k\x00": 1}}, f"attributes.note.a: key 'k\\x00' {NUL}"),
        ({"k\x00": "v"}, f"attributes.note: key 'k\\x00' {NUL}"),
        ([_Tag.BAD], f"attributes.note[0]: {NUL}"),
    ],
)
def test_nul_in_a_string_or_key_is_refused_naming_its_path(value: Any, message: str) -> None:
    """validate_json refuses NUL anywhere in a string or a key, naming exactly where."""
    with pytest.raises(InvalidValueError) as info:
        validate_json(value, "attributes.note")
    assert str(info.value) == message


def test_strings_without_nul_are_accepted() -> None:
    """Other control characters and escaped-looking text are valid and stay accepted."""
    assert validate_json({"a\x01": ["\\u0000", "\x1f", "é"]}, "attributes.note") is None


def test_hashing_still_takes_nul_as_stored() -> None:
    """canonical_json hashes NUL (it is JSON): verification can hash whatever a row holds."""
    assert canonical_json({"a": "x\x00"}) == b'{"a":"x\\u0000"}'


def test_validate_text_refuses_nul_and_accepts_none() -> None:
    """A text column value with NUL is refused under its name; None and plain text pass."""
    assert validate_text(None, "reasoning") is None
    assert validate_text("fine", "reasoning") is None
    with pytest.raises(InvalidValueError) as info:
        validate_text("bad\x00", "reasoning")
    assert str(info.value) == f"reasoning: {NUL}"
