"""Verification's fast paths: MACs from HMAC pads hashed once, digests over sorted orjson.

HMAC-SHA256 (RFC 2104) is SHA-256((K ^ opad) || SHA-256((K ^ ipad) || message)), K the
secret padded with zeros to SHA-256's 64-byte block (hashed first when longer). For the
built-in ``Keyring``, whose secrets are in memory, the two keyed SHA-256 states are made
once per key and each message costs two state copies, two updates and two digests, all
in C, instead of the ``hmac`` module's Python wrapper around the same work. The result is
the same hex string ``Keyring.mac`` returns (tests/unit/test_verify_links.py). Any other
``KeyProvider`` (a KMS, say) is simply asked for each MAC.

The digest helpers hash plain sorted orjson output, which renders faithfully what it is
given: when it hashes to the stored digest, those bytes are the canonical bytes the
writer hashed and the reference serializer would compute them too. When it does not
(or orjson refuses a value), they answer False and the caller asks the reference, which
alone may report a finding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from chameleon_workflow.keys import KeyProvider, Keyring

#: A MAC function: (key id, message) -> hex HMAC-SHA256, or None when the key is not held.
MacFunction = Callable[[str, bytes], str | None]
_BLOCK = 64
if TYPE_CHECKING:
    from hashlib import _Hash


def _pads(secret: bytes) -> tuple[_Hash, _Hash]:
    """Return the SHA-256 states keyed with the inner and the outer pad of ``secret``."""
    if len(secret) > _BLOCK:
        secret = hashlib.sha256(secret).digest()
    block = secret.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


def mac_function(keys: KeyProvider) -> MacFunction:
    """Return a function computing exactly ``keys.mac``, faster for a ``Keyring``."""
    if type(keys) is not Keyring:
        return keys.mac
    pads = {key_id: _pads(key.secret) for key_id, key in keys.keys.items()}

    def mac(key_id: str, message: bytes) -> str | None:
        pair = pads.get(key_id)
        if pair is None:
            return None
        inner = pair[0].copy()
        inner.update(message)
        outer = pair[1].copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    return mac


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
