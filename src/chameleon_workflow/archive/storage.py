"""Where segments and their manifests are kept: a small interface and a directory.

A store holds named blobs. ``write`` takes the bytes as an iterable so a segment is never
held whole in memory, and returns only once the blob is durable (written, fsynced,
renamed into place, the directory fsynced): a crash leaves either the whole blob or
none under its name (a ``.partial`` file at most, which ``write`` replaces). An object
store implements the same five methods.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

from chameleon_workflow.errors import ConfigurationError

_PARTIAL = ".partial"
_LOCK = ".lock"


class SegmentStore(Protocol):
    """The operations the archive needs from storage."""

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        """Store ``chunks`` under ``name`` durably (replacing nothing: names are unique)."""

    def open(self, name: str) -> IO[bytes]:
        """Open a stored blob for reading; FileNotFoundError when there is none."""

    def exists(self, name: str) -> bool:
        """Tell whether a blob is stored under ``name``."""

    def names(self) -> list[str]:
        """Return the names of the stored blobs, sorted."""

    def remove(self, name: str) -> None:
        """Remove a blob (only blobs no recorded manifest names: an interrupted run's)."""

    def lock(self) -> Any:
        """Return a context manager held for a whole archive run: one run per store."""


class DirectoryStore:
    """A directory of files, one per blob."""

    def __init__(self, root: Path) -> None:
        """Use ``root`` (it must exist)."""
        self.root = root

    @classmethod
    def for_writing(cls, root: Path) -> DirectoryStore:
        """Return a store on ``root``, created if needed; a ConfigurationError if unwritable."""
        probe = root / f".probe-{uuid.uuid4().hex}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigurationError(
                f"the archive directory {root} is not writable: {exc.strerror}"
            ) from None
        return cls(root)

    @classmethod
    def for_reading(cls, root: Path) -> DirectoryStore:
        """Return a store on an existing directory; a ConfigurationError otherwise."""
        if not root.is_dir():
            raise ConfigurationError(f"the archive directory {root} does not exist")
        return cls(root)

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        """Write to ``name.partial``, fsync, rename into place, fsync the directory."""
        target = self.root / name
        partial = self.root / (name + _PARTIAL)
        try:
            with partial.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            partial.replace(target)
            _sync_directory(self.root)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ConfigurationError(f"cannot write {target}: {exc.strerror}") from None

    def open(self, name: str) -> IO[bytes]:
        """Open ``name`` for reading."""
        return (self.root / name).open("rb")

    def exists(self, name: str) -> bool:
        """Tell whether ``name`` is there."""
        return (self.root / name).is_file()

    def names(self) -> list[str]:
        """Return the files' names (the lock file apart), sorted."""
        return sorted(p.name for p in self.root.iterdir() if p.is_file() and p.name != _LOCK)

    def remove(self, name: str) -> None:
        """Remove ``name`` if it is there."""
        (self.root / name).unlink(missing_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the directory's ``.lock`` file (waiting for another run)."""
        with (self.root / _LOCK).open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _sync_directory(root: Path) -> None:
    descriptor = os.open(root, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_chunks(handle: IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """Yield a file's bytes a chunk at a time."""
    while chunk := handle.read(size):
        yield chunk
