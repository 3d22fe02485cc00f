"""The column types both back ends share: UUIDs, UTC timestamps and JSON documents."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.types import CHAR, TypeDecorator, TypeEngine

from chameleon_workflow.hashing import format_timestamp, parse_timestamp


class GUID(TypeDecorator[uuid.UUID]):
    """UUID: native ``uuid`` on PostgreSQL, canonical 36-character text on SQLite."""

    impl = CHAR(36)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use the native type where there is one."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PG_UUID(as_uuid=True))
        return dialect.type_descriptor(CHAR(36))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Accept a UUID or its text; store text on SQLite."""
        if value is None:
            return None
        if not isinstance(value, uuid.UUID):
            value = uuid.UUID(str(value))
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        """Return a UUID object on both back ends."""
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetime: ``timestamptz`` on PostgreSQL, canonical ISO text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Store fixed-width text on SQLite so it sorts and hashes exactly."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(CHAR(27))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Refuse naive datetimes; normalise to UTC."""
        if value is None:
            return None
        if dialect.name == "sqlite":
            return format_timestamp(value)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Chameleon stores UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime on both back ends."""
        if value is None:
            return None
        if isinstance(value, str):
            return _read_timestamp(value)
        moment: datetime = value
        return moment.astimezone(UTC)


def _read_timestamp(text: str) -> datetime:
    """Read the canonical ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` text of a SQLite timestamp column.

    ``datetime.fromisoformat`` (C) reads that exact shape (ASCII digits only) as
    ``parse_timestamp``'s ``strptime`` does, several times faster; any other text, and a
    value out of range, still goes through ``parse_timestamp`` for its answer or error.
    """
    if _CANONICAL.fullmatch(text) is not None:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return parse_timestamp(text)


#: The canonical timestamp text (``format_timestamp`` from year 1000 on).
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")

#: JSON document: ``jsonb`` on PostgreSQL, JSON text on SQLite. SQL NULL stands for None.
JSONDoc = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
