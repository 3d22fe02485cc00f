"""The ledger key: where it comes from, how it is kept, and the MACs it makes.

Every history link (format version 2) is an HMAC-SHA256 under a ledger key the database
does not hold. A ``KeyProvider`` names the current key and computes MACs under any key it
knows; ``Keyring`` is the one built in, holding secrets in memory. A provider backed by a
KMS implements the same three members. Keys are found the same way by every command, the
server, the engine and the service (``find_keys``):

1. ``CHAMELEON_LEDGER_KEY_FILE``: a key file at that path;
2. ``CHAMELEON_LEDGER_KEY``: one or more hex secrets (at least 32 bytes each), separated
   by commas, the first one current;
3. for a SQLite file, the key file beside it: ``<database file>.ledger-keys``.

A key file is JSON, mode 0600, holding every key ever used (old ones keep old links
verifiable) and which one is current. A key's id is the first 16 hex digits of its
fingerprint, ``SHA-256("chameleon-ledger-key:" || secret)``; the fingerprint reveals
nothing of the secret and is what the database records (``ledger_keys``).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import make_url

from chameleon_workflow.config import Settings, load_settings
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.hashing import GENESIS_HASH, canonical_json

#: Suffix of the key file kept beside a SQLite database file.
KEY_FILE_SUFFIX = ".ledger-keys"
KEY_FILE_FORMAT = 1
MIN_SECRET_BYTES = 32
_FINGERPRINT_PREFIX = b"chameleon-ledger-key:"
_ID_LENGTH = 16
_PRIVATE = 0o600


class KeyProvider(Protocol):
    """What the ledger needs of a key store: the current key's id and MACs under any key."""

    @property
    def current_id(self) -> str:
        """Return the id of the key new links are made under."""
        ...

    def mac(self, key_id: str, message: bytes) -> str | None:
        """Return the lowercase hex HMAC-SHA256 of ``message`` under ``key_id`` (None: unknown)."""
        ...

    def fingerprint(self, key_id: str) -> str | None:
        """Return the key's fingerprint (None when the key is unknown)."""
        ...


def fingerprint_of(secret: bytes) -> str:
    """Return the published fingerprint of a secret: it names the key, it reveals nothing."""
    return hashlib.sha256(_FINGERPRINT_PREFIX + secret).hexdigest()


@dataclass(frozen=True, slots=True)
class LedgerKey:
    """One ledger key: its id, its secret (never printed) and when it was made."""

    key_id: str
    secret: bytes = field(repr=False)
    created_at: str

    @classmethod
    def of(cls, secret: bytes, created_at: str | None = None) -> LedgerKey:
        """Wrap a secret, deriving its id from its fingerprint."""
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"a ledger key needs at least {MIN_SECRET_BYTES} bytes, got {len(secret)}"
            )
        stamp = created_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(fingerprint_of(secret)[:_ID_LENGTH], secret, stamp)

    @classmethod
    def generate(cls) -> LedgerKey:
        """Make a new random key."""
        return cls.of(secrets.token_bytes(MIN_SECRET_BYTES))


if TYPE_CHECKING:
    from hashlib import _Hash

_HMAC_BLOCK = 64  # SHA-256's block size in bytes


def _hmac_pads(secret: bytes) -> tuple[_Hash, _Hash]:
    """Return SHA-256 states keyed with HMAC's inner and outer pads of ``secret`` (RFC 2104).

    HMAC(K, m) = SHA-256((K ^ opad) || SHA-256((K ^ ipad) || m)): with both states made
    once per key, a MAC is two state copies, two updates and two digests, all in C, as
    the standard library's ``hmac`` does without OpenSSL; its Python wrapper around the
    same work (``HMAC.copy``) cost half as much again per MAC, on every save, log row and
    verified row. tests/unit/test_verify_links.py holds it to ``hmac`` for every key length.
    """
    if len(secret) > _HMAC_BLOCK:
        secret = hashlib.sha256(secret).digest()
    block = secret.ljust(_HMAC_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


class Keyring:
    """Keys held in memory; the current one makes new links, all of them check old ones."""

    def __init__(self, keys: Sequence[LedgerKey], current_id: str, source: str) -> None:
        """Hold ``keys``; ``source`` says where they came from, for messages."""
        self.keys = {key.key_id: key for key in keys}
        if current_id not in self.keys:
            raise ConfigurationError(f"{source}: the current key {current_id} is not in it")
        self._current_id = current_id
        self.source = source
        self._pads = {k.key_id: _hmac_pads(k.secret) for k in keys}

    @classmethod
    def of(cls, *keys: LedgerKey, source: str = "in memory") -> Keyring:
        """Return a keyring whose first key is current."""
        return cls(keys, keys[0].key_id, source)

    @property
    def current_id(self) -> str:
        """Return the id of the key new links are made under."""
        return self._current_id

    def mac(self, key_id: str, message: bytes) -> str | None:
        """Return the hex HMAC-SHA256 of ``message`` under ``key_id`` (None: not held)."""
        pads = self._pads.get(key_id)
        if pads is None:
            return None
        inner, outer = pads[0].copy(), pads[1].copy()
        inner.update(message)
        outer.update(inner.digest())
        return outer.hexdigest()

    def fingerprint(self, key_id: str) -> str | None:
        """Return the fingerprint of a held key."""
        key = self.keys.get(key_id)
        return None if key is None else fingerprint_of(key.secret)

    def rotated(self) -> Keyring:
        """Return this keyring with a new current key added (every old key is kept)."""
        new = LedgerKey.generate()
        return Keyring([*self.keys.values(), new], new.key_id, self.source)


def key_file_beside(database_url: str) -> Path | None:
    """Return the default key file of a SQLite file database (None for anything else)."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}{KEY_FILE_SUFFIX}")


def key_file_of(database_url: str, settings: Settings) -> Path | None:
    """Return the key file a database's keys live in (None when they come from elsewhere)."""
    if settings.ledger_key_file is not None:
        return settings.ledger_key_file
    if settings.ledger_key is not None:
        return None
    return key_file_beside(database_url)


def find_keys(
    database_url: str, settings: Settings | None = None, *, create: bool = False
) -> Keyring:
    """Return the ledger keys of a database, found as the module docstring says.

    With ``create`` a missing key file (``CHAMELEON_LEDGER_KEY_FILE``, or the one beside a
    SQLite file) is made with a new key, mode 0600; only the commands that create or
    migrate a database pass it. Without any key: ConfigurationError naming the sources.
    """
    settings = settings or load_settings()
    if settings.ledger_key is not None and settings.ledger_key_file is not None:
        raise ConfigurationError(
            "set only one of CHAMELEON_LEDGER_KEY and CHAMELEON_LEDGER_KEY_FILE"
        )
    if settings.ledger_key is not None:
        return keys_from_text(settings.ledger_key.get_secret_value(), "CHAMELEON_LEDGER_KEY")
    path = key_file_of(database_url, settings)
    if path is None:
        raise ConfigurationError(
            "no ledger key: set CHAMELEON_LEDGER_KEY_FILE (a key file, made by "
            "`chameleon init`) or CHAMELEON_LEDGER_KEY (hex secrets); see docs/ledger.md"
        )
    if not path.exists():
        if not create:
            raise ConfigurationError(
                f"no ledger key file at {path}: create it with `chameleon init`, or set "
                "CHAMELEON_LEDGER_KEY_FILE / CHAMELEON_LEDGER_KEY (see docs/ledger.md)"
            )
        # Another process may make it at the same moment: the first file made is the one.
        write_key_file(path, Keyring.of(LedgerKey.generate()), replace=False)
    return read_key_file(path)


def keys_from_text(text: str, source: str) -> Keyring:
    """Parse comma-separated hex secrets, the first one current."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise ConfigurationError(f"{source} is empty")
    try:
        keys = [LedgerKey.of(bytes.fromhex(part)) for part in parts]
    except ValueError:
        raise ConfigurationError(f"{source} must hold hex secrets separated by commas") from None
    return Keyring(keys, keys[0].key_id, source)


def read_key_file(path: Path) -> Keyring:
    """Read a key file, refusing one that others may read or that is malformed."""
    source = f"key file {path}"
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {source}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigurationError(
            f"{source} may be read by others (mode {mode:04o}): chmod 600 {path}"
        )
    try:
        document: Any = json.loads(text)
        keys = [
            LedgerKey.of(bytes.fromhex(entry["secret"]), str(entry["created_at"]))
            for entry in document["keys"]
        ]
        for key, entry in zip(keys, document["keys"], strict=True):
            if key.key_id != entry["id"]:
                raise ConfigurationError(f"{source}: key {entry['id']} does not match its secret")
        return Keyring(keys, str(document["current"]), source)
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(f"{source} is not a Chameleon key file") from None


def write_key_file(path: Path, keyring: Keyring, *, replace: bool = True) -> None:
    """Write every key of ``keyring`` to ``path`` atomically, readable by its owner only.

    Without ``replace`` an existing file is kept as it is (and this keyring dropped).
    """
    document = {
        "format": KEY_FILE_FORMAT,
        "current": keyring.current_id,
        "keys": [
            {"id": k.key_id, "secret": k.secret.hex(), "created_at": k.created_at}
            for k in keyring.keys.values()
        ],
    }
    try:
        # mkstemp creates the file with mode 0600 before a byte is written.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, _PRIVATE)
        if replace:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)  # fails if the file exists, unlike a rename
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    except OSError as exc:
        raise ConfigurationError(f"cannot write key file {path}: {exc.strerror}") from None


def rotate_key_file(path: Path) -> tuple[Keyring, Keyring]:
    """Add a new current key to a key file; return the keyrings before and after."""
    before = read_key_file(path)
    after = before.rotated()
    write_key_file(path, after)
    return before, after


#: What a ``ledger_keys`` row's link covers, besides the previous row's link.
KEY_EVENT_FIELDS = (
    "sequence",
    "key_id",
    "fingerprint",
    "recorded_at",
    "legacy_history_rows",
    "legacy_attribute_rows",
    "legacy_digest",
    "link_version",
)


def key_event_link(
    previous_chain_hash: str | None, values: Mapping[str, Any], keys: KeyProvider | None
) -> str | None:
    """Return a key-ledger row's link (None when it is keyed and its key is not held).

    Row 0, the seal of the rows written before keyed links, is linked as format 1 (plain
    SHA-256); every later row as format 2, a MAC under the key it makes current.
    """
    body = (previous_chain_hash or GENESIS_HASH).encode("ascii") + canonical_json(
        {name: values[name] for name in KEY_EVENT_FIELDS}, "key ledger row"
    )
    if values["link_version"] == 1:
        return hashlib.sha256(body).hexdigest()
    return None if keys is None else keys.mac(str(values["key_id"]), body)


class LegacyTally:
    """Count format-1 history rows and digest their links, in (uow_id, sequence) order.

    The seal (key-ledger row 0) holds this count and digest as they were when keyed links
    came in: SHA-256 over the concatenated 64-hex-character links of those rows.
    """

    def __init__(self) -> None:
        """Start with no row."""
        self.rows = 0
        self._digest = hashlib.sha256()

    def add(self, chain_hash: str) -> None:
        """Count one format-1 row."""
        self.rows += 1
        self._digest.update(chain_hash.encode("ascii"))

    def hexdigest(self) -> str:
        """Return the digest of the rows counted so far."""
        return self._digest.hexdigest()
