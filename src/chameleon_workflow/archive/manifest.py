"""A segment's manifest: what the segment holds and where it was cut, signed.

The manifest is a JSON object (``FORMAT`` 1) with: ``segment_id``; ``created_at``; the
``before`` cut-off and ``instance_id`` the run was given; ``counts`` of rows per table;
``positions``, the checkpoint positions of its ledger rows as ``[start, end)`` runs in
checkpoint order; ``leaves`` and ``merkle_root`` (RFC 9162 over the ledger rows' leaf
hashes in that order); ``links``, the log-stream chain links at the cut (for every run of
archived rows of a stream: the first and last ``stream_seq``, the link before the run
and the link of its last row, so the live stream verifies across the gap); ``uows``, the
ids of the UOWs it holds; ``checkpoint``, the size and root of the newest checkpoint the
rows were sealed under (naming the database it came from); and ``file``, the segment
file's name, size and SHA-256. Its signature is the checkpoint signing key's Ed25519
signature over the manifest's RFC 8785 bytes; the manifest file holds both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chameleon_workflow.archive.segment import ArchiveError, SegmentError
from chameleon_workflow.archive.storage import SegmentStore
from chameleon_workflow.checkpoints.keys import Signer, key_id, signature_valid
from chameleon_workflow.hashing import canonical_json

FORMAT = 1
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True, slots=True)
class SignedManifest:
    """A manifest and its signature."""

    body: dict[str, Any]
    key_id: str
    signature: str

    @property
    def segment_id(self) -> str:
        """Return the segment's id."""
        return str(self.body["segment_id"])

    @classmethod
    def sign(cls, body: Mapping[str, Any], signer: Signer) -> SignedManifest:
        """Sign ``body`` with the checkpoint signing key."""
        document = dict(body)
        return cls(document, signer.key_id, signer.sign(canonical_json(document, "manifest")))

    def signed_by(self, public: Ed25519PublicKey) -> bool:
        """Tell whether the signature is ``public``'s over this body."""
        if self.key_id != key_id(public):
            return False
        return signature_valid(public, canonical_json(self.body, "manifest"), self.signature)

    def document(self) -> bytes:
        """Return the manifest file's bytes."""
        payload = {"manifest": self.body, "key_id": self.key_id, "signature": self.signature}
        return canonical_json(payload, "manifest file") + b"\n"

    @classmethod
    def parse(cls, data: bytes, where: str) -> SignedManifest:
        """Read a manifest file; a malformed one is an ArchiveError."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ArchiveError(f"{where} is not a manifest (not JSON)") from None
        if not isinstance(payload, dict):
            raise ArchiveError(f"{where} is not a manifest")
        body, key, signature = (payload.get(k) for k in ("manifest", "key_id", "signature"))
        if not (isinstance(body, dict) and isinstance(key, str) and isinstance(signature, str)):
            raise ArchiveError(f"{where} is not a manifest (manifest, key_id, signature)")
        if body.get("format") != FORMAT or not isinstance(body.get("segment_id"), str):
            raise ArchiveError(f"{where} is not a format {FORMAT} manifest")
        return cls(body, key, signature)


def manifest_name(segment_id: str) -> str:
    """Return the file name of a segment's manifest."""
    return segment_id + MANIFEST_SUFFIX


def write_manifest(store: SegmentStore, manifest: SignedManifest) -> None:
    """Store the manifest file durably beside its segment."""
    store.write(manifest_name(manifest.segment_id), [manifest.document()])


def read_manifest(store: SegmentStore, segment_id: str) -> SignedManifest:
    """Read a segment's manifest file; a missing one is a SegmentError."""
    name = manifest_name(segment_id)
    try:
        with store.open(name) as handle:
            data = handle.read()
    except FileNotFoundError:
        raise SegmentError(f"manifest file {name} is missing") from None
    except OSError as exc:
        raise SegmentError(f"manifest file {name} cannot be read: {exc.strerror}") from None
    return SignedManifest.parse(data, name)


def runs(positions: Iterable[int]) -> list[list[int]]:
    """Return ascending positions as ``[start, end)`` runs."""
    found: list[list[int]] = []
    for position in positions:
        if found and found[-1][1] == position:
            found[-1][1] += 1
        else:
            found.append([position, position + 1])
    return found


def expand(position_runs: Iterable[Any]) -> Iterable[int]:
    """Yield the positions ``[start, end)`` runs cover, in order."""
    for start, end in position_runs:
        yield from range(int(start), int(end))
