"""Signed tree heads: the checkpoint value, the bytes its signature covers, its JSON file.

The signature is Ed25519 over four lines of ASCII text, each ending in a newline::

    chameleon checkpoint v1
    <tree size, decimal>
    <root hash, 64 lowercase hex digits>
    <timestamp, YYYY-MM-DDTHH:MM:SS.ffffffZ>

so any language can rebuild and check it without a JSON library that sorts keys.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chameleon_workflow.checkpoints.keys import Signer, signature_valid
from chameleon_workflow.errors import CheckpointError
from chameleon_workflow.hashing import parse_timestamp

#: The ``format`` field of a checkpoint file.
FORMAT = "chameleon-checkpoint/v1"
_FIELDS = ("tree_size", "root_hash", "timestamp", "key_id", "signature")
_HEX = {"root_hash": 64, "key_id": 16, "signature": 128}


def signed_message(tree_size: int, root_hash: str, timestamp: str) -> bytes:
    """Return the exact bytes a checkpoint's signature covers."""
    return f"chameleon checkpoint v1\n{tree_size}\n{root_hash}\n{timestamp}\n".encode("ascii")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: the ledger's first ``tree_size`` leaves have this Merkle root."""

    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str

    @classmethod
    def signed(cls, signer: Signer, tree_size: int, root: bytes, timestamp: str) -> Checkpoint:
        """Sign a tree head with ``signer``."""
        message = signed_message(tree_size, root.hex(), timestamp)
        return cls(tree_size, root.hex(), timestamp, signer.key_id, signer.sign(message))

    @property
    def root(self) -> bytes:
        """Return the root hash as bytes."""
        return bytes.fromhex(self.root_hash)

    def message(self) -> bytes:
        """Return the bytes the signature covers."""
        return signed_message(self.tree_size, self.root_hash, self.timestamp)

    def signed_by(self, public: Ed25519PublicKey) -> bool:
        """Tell whether the signature is ``public``'s."""
        return signature_valid(public, self.message(), self.signature)

    def to_json(self) -> dict[str, Any]:
        """Return the checkpoint as the JSON document files and the server carry."""
        return {"format": FORMAT, **{name: getattr(self, name) for name in _FIELDS}}

    @classmethod
    def from_json(cls, data: Any, where: str = "checkpoint") -> Checkpoint:
        """Read a checkpoint document, refusing anything malformed (CheckpointError)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{where} is not a {FORMAT} document")
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise CheckpointError(f"{where} lacks {', '.join(missing)}")
        size = data["tree_size"]
        if type(size) is not int or size < 0:
            raise CheckpointError(f"{where}: tree_size {size!r} is not a count")
        for name, length in _HEX.items():
            value = data[name]
            if not isinstance(value, str) or not re.fullmatch(f"[0-9a-f]{{{length}}}", value):
                raise CheckpointError(f"{where}: {name} is not {length} lowercase hex digits")
        stamp = data["timestamp"]
        try:
            parse_timestamp(stamp)
        except (TypeError, ValueError):
            raise CheckpointError(f"{where}: timestamp {stamp!r} is not UTC ISO text") from None
        return cls(size, data["root_hash"], stamp, data["key_id"], data["signature"])


def write_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    """Write the checkpoint's JSON file, replacing an older one only once the new one is whole."""
    text = json.dumps(checkpoint.to_json(), indent=2) + "\n"
    scratch: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        scratch = Path(name)
        os.fchmod(descriptor, 0o644)  # public by nature: it is meant to be copied away
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text)
        scratch.replace(path)
    except OSError as exc:
        if scratch is not None:
            scratch.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write the checkpoint to {path}: {exc}") from exc


def read_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint file written by ``write_checkpoint`` (or served by the API)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc}") from exc
    return Checkpoint.from_json(data, str(path))
