"""One canonical serializer (RFC 8785 / JCS) and the hashes built on it.

``canonical_json`` is byte-identical to the reference implementation (the ``rfc8785``
package) on every value the project accepts; a property test proves it. The fast path
lets orjson sort keys and escape strings, and renders floats itself the way ECMAScript
does, because orjson's float text (``1.0``, ``1e21``) differs from JCS (``1``, ``1e+21``).
Dictionaries whose keys contain characters at or above U+E000 take the reference path:
there UTF-16 order (JCS) and code point order (orjson) can disagree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

from chameleon_workflow.errors import InvalidValueError

#: Chain link of the row before the first row of every UOW.
GENESIS_HASH = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64

_ORJSON_OPTS = orjson.OPT_SORT_KEYS
_KEY_ORDER_LIMIT = "\ue000"
_PADDED_YEARS = 1000
_NUL_REASON = "contains NUL (U+0000), which PostgreSQL text cannot store"


def es_number(value: float) -> str:
    """Render a finite float the way ECMAScript's Number.prototype.toString does."""
    if not math.isfinite(value):
        raise InvalidValueError(f"{value!r} is not a JSON number")
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
        return str(int(value))
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    int_part, _, frac = mantissa.partition(".")
    raw = int_part + frac
    stripped = raw.lstrip("0")
    point = len(int_part) + (int(exp_text) if exp_text else 0) - (len(raw) - len(stripped))
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        exp = n - 1
        exp_s = ("+" if exp >= 0 else "-") + str(abs(exp))
        body = (digits if k == 1 else digits[0] + "." + digits[1:]) + "e" + exp_s
    return sign + body


class _Refused(Exception):  # noqa: N818 - internal signal, never escapes this module
    """A value is not JSON; carries the reason and the path, built while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.steps: list[str] = []

    def error(self, root: str) -> InvalidValueError:
        """Return the public error naming the full path of the refused part."""
        return InvalidValueError(f"{root}{''.join(reversed(self.steps))}: {self.reason}")


class _Walk:
    """Validate a value and prepare it for orjson in one pass.

    Paths are only built when something is refused (while the exception unwinds): on the
    hot path formatting a path per element cost more than the rest of the walk.
    """

    __slots__ = ("needs_reference", "plain", "storable")

    def __init__(self, *, plain: bool = False, storable: bool = False) -> None:
        self.needs_reference = False
        self.plain = plain  # keep floats as floats (for the reference serializer)
        # Refuse what JSON holds but a database column cannot: NUL in a string or key.
        # Only when a value is set; hashing and verification take any JSON as stored.
        self.storable = storable

    def visit(self, value: Any, depth: int) -> Any:  # noqa: PLR0911 - one per type
        kind = type(value)
        if kind is str:
            if self.storable and "\x00" in value:
                raise _Refused(_NUL_REASON)
            return value
        if value is None or kind is bool:
            return value
        if kind is int:
            if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                return value
            raise _Refused(
                f"integer {value} is outside ±(2**53-1), the range JSON numbers hold exactly"
            )
        if kind is float:
            if not math.isfinite(value):
                raise _Refused(f"{value!r} is not a JSON number")
            if self.plain:
                return value
            return orjson.Fragment(es_number(value).encode("ascii"))
        if depth >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
        if kind is dict:
            return self._visit_dict(value, depth)
        if kind is list:
            return self._visit_list(value, depth)
        return self._visit_subclass(value, depth)

    def _visit_list(self, items: list[Any], depth: int) -> list[Any]:
        out: list[Any] = []
        append = out.append
        try:
            for item in items:
                append(self.visit(item, depth + 1))
        except _Refused as exc:
            exc.steps.append(f"[{len(out)}]")  # the items before it were accepted
            raise
        return out

    def _visit_dict(self, value: dict[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise _Refused(f"key {key!r} is a {type(key).__name__}; JSON keys are strings")
                key = str.__str__(key)  # noqa: PLW2901 - normalise str subclasses (enums)
            if self.storable and "\x00" in key:
                raise _Refused(f"key {key!r} {_NUL_REASON}")
            if key and max(key) >= _KEY_ORDER_LIMIT:
                self.needs_reference = True
            try:
                out[key] = self.visit(item, depth + 1)
            except _Refused as exc:
                exc.steps.append(f".{key}")
                raise
        return out

    def _visit_subclass(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.visit(str.__str__(value), depth)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.visit(int(value), depth)
        if isinstance(value, dict):
            return self._visit_dict(dict(value), depth)
        raise _Refused(
            f"{type(value).__name__} value {value!r:.60} is not JSON "
            "(allowed: dict with string keys, list, str, int, finite float, bool, None)"
        )

    def prepare(self, value: Any, path: str, depth: int = 0) -> Any:
        """Return ``value`` ready for orjson, or raise InvalidValueError naming the bad part."""
        try:
            return self.visit(value, depth)
        except _Refused as exc:
            raise exc.error(path) from None


def validate_json(value: Any, path: str = "value") -> None:
    """Raise InvalidValueError naming the first part of ``value`` that cannot be stored.

    That is anything not JSON, and strings or keys holding NUL (U+0000), which
    PostgreSQL ``text`` and ``jsonb`` cannot hold: refused on every back end alike.
    """
    _Walk(storable=True).prepare(value, path)


def validate_text(value: str | None, path: str) -> None:
    """Raise InvalidValueError if a text column value holds NUL (U+0000)."""
    if value is not None and "\x00" in value:
        raise InvalidValueError(f"{path}: {_NUL_REASON}")


def canonical_json(value: Any, path: str = "value") -> bytes:
    """Return the RFC 8785 canonical UTF-8 form of ``value``; refuse anything not JSON."""
    walk = _Walk()
    prepared = walk.prepare(value, path)
    try:
        if walk.needs_reference:
            return bytes(rfc8785.dumps(_Walk(plain=True).prepare(value, path)))
        return orjson.dumps(prepared, option=_ORJSON_OPTS)
    except (orjson.JSONEncodeError, rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise InvalidValueError(f"{path}: cannot be serialized as JSON: {exc}") from exc


def canonical_record(fields: Mapping[str, Any], nested: tuple[str, ...]) -> bytes:
    """Return the canonical form of a flat record quickly.

    Every value must be a str, a safe int or None, and every key ASCII, except the keys
    named in ``nested``, which may hold any JSON value. The result is byte-identical to
    ``canonical_json(fields)``; only the nested values are walked.
    """
    walk = _Walk()
    prepared = dict(fields)
    for key in nested:
        value = prepared[key]
        if value is not None:
            prepared[key] = walk.prepare(value, key, 1)
    if walk.needs_reference:
        return canonical_json(dict(fields), "record")
    try:
        return orjson.dumps(prepared, option=_ORJSON_OPTS)
    except orjson.JSONEncodeError as exc:
        raise InvalidValueError(f"record cannot be serialized as JSON: {exc}") from exc


def reference_canonical_json(value: Any) -> bytes:
    """Return the reference implementation's canonical form (for tests and cross-checks)."""
    return bytes(rfc8785.dumps(value))


def stored_json(value: Any) -> Any:
    """Decode a JSON column as read raw: JSON text, or a bare number SQLite hands back.

    SQLite gives a column declared JSON numeric affinity, so a stored number comes back as
    an int or float rather than text; both are the same JSON value.
    """
    return orjson.loads(value) if isinstance(value, str) else value


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def content_hash(attributes: Mapping[str, Any]) -> str:
    """Hash a UOW's current attributes (key -> value) into its ``content_hash``."""
    return hashlib.sha256(canonical_json(dict(attributes), "attributes")).hexdigest()


def chain_hash(previous: str | None, fields: Mapping[str, Any]) -> str:
    """Link a history row: SHA-256 over the previous link (hex) then the row's canonical form."""
    prev = (previous or GENESIS_HASH).encode("ascii")
    return hashlib.sha256(prev + canonical_json(dict(fields), "history")).hexdigest()


def format_timestamp(moment: datetime) -> str:
    """Render a moment as the canonical UTC text used in hashes: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise InvalidValueError(f"timestamp {moment!r} has no time zone")
        moment = moment.astimezone(UTC)
    if moment.year < _PADDED_YEARS:
        # strftime's %Y is not zero-padded below year 1000 here; keep its exact text.
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is C all the way and five times faster than strftime; "+00:00" -> "Z".
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_timestamp(text: str) -> datetime:
    """Read back the canonical UTC text written by ``format_timestamp``."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
