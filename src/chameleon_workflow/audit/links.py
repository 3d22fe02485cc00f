"""Verification's fast paths: digests and comparisons over sorted orjson.

They hash or compare plain sorted orjson output, which renders faithfully what it is
given: when it hashes to the stored digest, those bytes are the canonical bytes the
writer hashed and the reference serializer would compute them too. When it does not
(or orjson refuses a value), they answer False and the caller asks the reference, which
alone may report a finding.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def plain_json(value: Any) -> bytes | None:
    """Return ``value`` as sorted orjson (None when orjson refuses it)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None


def digest_matches(prefix: bytes, value: Any, stored: Any) -> bool:
    """Tell whether SHA-256(prefix || sorted orjson of value) is ``stored`` (False: ask)."""
    body = plain_json(value)
    return body is not None and hashlib.sha256(prefix + body).hexdigest() == stored


def same_json(first: Any, second: Any) -> bool:
    """Tell whether two values have the same sorted orjson form (False: ask the reference)."""
    body = plain_json(first)
    return body is not None and body == plain_json(second)
