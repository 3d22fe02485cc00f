"""SQLite timestamp text reads back exactly as ``parse_timestamp`` reads it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import sqlite

from chameleon_workflow.columns import UTCDateTime
from chameleon_workflow.hashing import format_timestamp, parse_timestamp

_SQLITE = sqlite.dialect()


def _read(text: str) -> datetime | None:
    return UTCDateTime().process_result_value(text, _SQLITE)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 2, 0, 40, 21, 5232, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_what_is_written_reads_back(moment: datetime) -> None:
    """Every stored text gives the moment written, in UTC (the ``UTC`` object itself)."""
    text = format_timestamp(moment)
    read = _read(text)
    assert read == moment
    assert read is not None
    assert read.tzinfo is UTC
    assert read == parse_timestamp(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-02T00:40:21,005232Z",
        "2026-12-02 00:40:21.005232Z",
        "2026-12-02T00:40:21.005232+00:00",
        "2026-00-02T00:40:21.005232Z",
        "2026-02-29T00:40:21.005232Z",
        "2026-12-02T24:00:00.000000Z",
        "2026-12-02T23:59:60.000000Z",
        "2026-12-02T00:40:21.005Z",
        "\uff12\uff10\uff12\uff16-12-02T00:40:21.005232Z",  # full-width digits
        "999-12-31T12:00:00.000000Z",  # how a year before 1000 is written
        "not a time",
    ],
)
def test_other_text_gets_the_answer_of_before(text: str) -> None:
    """Text not in the canonical shape is read (or refused) as ``parse_timestamp`` does."""
    try:
        expected: object = parse_timestamp(text)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)[:20]):
            _read(text)
        return
    assert _read(text) == expected
