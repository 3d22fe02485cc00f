"""The Ed25519 key that signs checkpoints: a file outside the database, never in it.

The private key is a PKCS #8 PEM file created with mode 0600 (``create_signing_key``);
its public half is a SubjectPublicKeyInfo PEM (``public_pem``). A key is named by its
id: the first 16 hex digits of SHA-256 over the 32 raw public key bytes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from chameleon_workflow.errors import CheckpointError, ConfigurationError


def key_id(public: Ed25519PublicKey) -> str:
    """Return the id of a public key: 16 hex digits of SHA-256 over its raw bytes."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Signer:
    """A loaded private key, ready to sign checkpoint heads."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        """Return the public half."""
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        """Return the id of the public half."""
        return key_id(self.public_key)

    def sign(self, message: bytes) -> str:
        """Return the Ed25519 signature of ``message`` as lowercase hex."""
        return self.private_key.sign(message).hex()


def signature_valid(public: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    """Tell whether ``signature`` (hex) is ``public``'s signature of ``message``."""
    try:
        public.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def create_signing_key(path: Path) -> Signer:
    """Write a new private key to ``path`` (mode 0600, never overwriting) and return it."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"a signing key already exists at {path}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot create a signing key at {path}: {exc}") from exc
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return Signer(key)


def load_signing_key(path: Path) -> Signer:
    """Read the private key at ``path``; a missing or foreign file is a ConfigurationError."""
    pem = _read(path, "signing key", "create it with `chameleon init`")
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return Signer(key)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a public key (PEM) written by ``chameleon keys export``."""
    pem = _read(path, "public key", "write one with `chameleon keys export`")
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_pem(public: Ed25519PublicKey) -> bytes:
    """Return the public key as SubjectPublicKeyInfo PEM."""
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _read(path: Path, what: str, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"no {what} at {path}: {hint}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} at {path}: {exc}") from exc
