"""Cursor paging: pages, opaque cursors, and keyset conditions over (creation time, id).

A cursor is the position of the last item a page returned, base64url-encoded JSON; the
next page starts strictly after it, so a walk never repeats or skips an item that existed
when it began, whatever is created meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Select, and_, or_

from chameleon_workflow.errors import InvalidValueError

PAGE_DEFAULT = 50
PAGE_MAX = 500

T = TypeVar("T")
#: Any SELECT, whatever its columns.
Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None on the last page)."""

    items: tuple[T, ...]
    next_cursor: str | None


def encode_cursor(*parts: object) -> str:
    """Return an opaque cursor for the given position."""
    raw = orjson.dumps([str(part) for part in parts])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    """Return the ``size`` parts of a cursor; InvalidValueError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = orjson.loads(raw)
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        raise InvalidValueError("cursor: not a cursor this server returned") from None
    if (
        not isinstance(parts, list)
        or len(parts) != size
        or not all(isinstance(p, str) for p in parts)
    ):
        raise InvalidValueError("cursor: not a cursor this server returned")
    return parts


def check_limit(limit: int) -> int:
    """Return the page size, or raise InvalidValueError when it is out of range."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidValueError(f"limit must be between 1 and {PAGE_MAX}, got {limit}")
    return limit


def after_cursor(query: Query, created: Any, key: Any, cursor: str | None) -> Query:
    """Order by (creation time, id) and start after the cursor's position."""
    query = query.order_by(created, key)
    if cursor is None:
        return query
    moment, ident = decode_cursor(cursor, 2)
    try:
        when, last = datetime.fromisoformat(moment), uuid.UUID(ident)
    except ValueError:
        raise InvalidValueError("cursor: not a cursor this server returned") from None
    return query.where(or_(created > when, and_(created == when, key > last)))


def page_of(
    rows: Sequence[Any], limit: int, position: Callable[[Any], tuple[object, ...]]
) -> tuple[Sequence[Any], str | None]:
    """Cut one extra row off; the cursor points at the last row kept when there is more."""
    if len(rows) <= limit:
        return rows, None
    kept = rows[:limit]
    return kept, encode_cursor(*position(kept[-1]))
