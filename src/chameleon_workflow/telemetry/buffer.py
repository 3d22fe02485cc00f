"""Non-blocking telemetry: a bounded in-memory buffer bulk-written to ``interaction_logs``.

Producers call ``record`` (a lock-free admission check and a deque append). One flusher
at a time copies the oldest entries, writes them with the driver's fastest bulk path
(binary COPY on PostgreSQL, ``executemany`` on SQLite; see ``writers``), commits, and
only then removes them, so a failed write loses nothing.

A flush never touches work that is not its own: it commits (or rolls back) only its own
transaction. Given an idle session it uses that session's connection; given a session
with a transaction in progress, it leaves that transaction alone and writes through a
second session on the same engine (on SQLite that second connection waits for the
write lock, so flush after committing your own writes).
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from chameleon_workflow.config import load_settings
from chameleon_workflow.db import translate_error
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.states import LogType
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.streams import Streams, close_entry
from chameleon_workflow.telemetry.writers import write_entries

#: Writes entries through the session's connection into the database's stream (staging
#: the stream's new position in ``Streams``); must not commit.
RowWriter = Callable[[Session, Sequence[TelemetryEntry], Streams], None]


@dataclass(slots=True)
class _Loss:
    counts: dict[str, int]
    first: float
    last: float


class TelemetryBuffer:
    """Bounded, thread-safe, never-blocking queue of entries that flushes without loss."""

    def __init__(
        self,
        batch_size: int = 1000,
        max_queue_size: int = 10000,
        *,
        writer: RowWriter | None = None,
        keys: KeyProvider | None = None,
    ) -> None:
        if batch_size < 1 or max_queue_size < 1:
            raise InvalidValueError("batch_size and max_queue_size must be at least 1")
        self.batch_size = batch_size
        self.max_queue_size = max_queue_size
        self._write = writer or write_entries
        #: This buffer's stream in each database it writes to (keys: found per database).
        self.streams = Streams(keys)
        self._queue: deque[TelemetryEntry] = deque()
        # Admission is lock-free: a ticket per attempt, minus slots given back (rejections and
        # committed entries). Slots are given back late, so the estimate only errs towards full.
        self._tickets = itertools.count()
        self._released = 0
        self._fast_limit = max_queue_size
        self._wake: threading.Event | None = None
        self._lock = threading.Lock()  # guards _released, drop counters (rare paths only)
        self._flush_lock = threading.Lock()
        self._loss: _Loss | None = None
        self.dropped_by_type: dict[str, int] = {}
        self.flushed_total = 0
        self.flush_count = 0
        self.last_flush_seconds = 0.0

    def record(self, entry: TelemetryEntry) -> bool:
        """Enqueue an entry without blocking; return False (and count a drop) when full."""
        occupied = next(self._tickets) - self._released
        if occupied < self._fast_limit:
            self._queue.append(entry)
            return True
        return self._record_slow(entry, occupied)

    def _record_slow(self, entry: TelemetryEntry, occupied: int) -> bool:
        if occupied >= self.max_queue_size:
            with self._lock:
                self._released += 1
                self._count_drop(entry.log_type)
            return False
        self._queue.append(entry)
        wake = self._wake
        if wake is not None and not wake.is_set():
            wake.set()
        return True

    def _count_drop(self, log_type: str) -> None:
        moment = time.time()
        # Copy on write, so metric readers can iterate without taking the lock.
        counts = self.dropped_by_type
        self.dropped_by_type = {**counts, log_type: counts.get(log_type, 0) + 1}
        if self._loss is None:
            self._loss = _Loss({}, moment, moment)
        self._loss.counts[log_type] = self._loss.counts.get(log_type, 0) + 1
        self._loss.last = moment

    def set_wakeup(self, event: threading.Event | None, threshold: int | None) -> None:
        """Set ``event`` as soon as at least ``threshold`` entries are pending (None: never)."""
        with self._lock:
            self._wake = event
            wake_at = min(threshold or self.max_queue_size, self.max_queue_size)
            # Records that reach the threshold leave the fast path to set the event.
            self._fast_limit = wake_at - 1 if event is not None else self.max_queue_size

    def get_pending_count(self) -> int:
        """Return how many entries wait to be written."""
        return len(self._queue)

    @property
    def recorded_total(self) -> int:
        """Return how many entries were ever accepted."""
        return self.flushed_total + len(self._queue)

    @property
    def loss_pending(self) -> bool:
        """Tell whether drops wait to be written as a TELEMETRY_LOSS row."""
        return self._loss is not None

    @property
    def dropped_total(self) -> int:
        """Return how many entries backpressure refused."""
        return sum(self.dropped_by_type.values())

    def flush(self, session: Session, max_entries: int | None = None) -> int:
        """Write up to one batch of the oldest entries, commit, then drop them; return the count.

        Only the flush's own transaction is committed or rolled back: work pending in
        ``session`` stays pending (see the module docstring).
        """
        limit = self.batch_size if max_entries is None else min(max_entries, self.batch_size)
        with self._flush_lock:
            started = time.perf_counter()
            queue = self._queue
            # Only this (locked) flusher removes entries, so the left end is stable to index.
            batch = [queue[i] for i in range(min(limit, len(queue)))]
            loss = self._take_loss()
            if not batch and loss is None:
                return 0
            rows = batch if loss is None else [*batch, _loss_entry(loss)]
            self._commit(session, rows, loss)
            for _ in batch:
                queue.popleft()
            with self._lock:
                self._released += len(batch)
            self.flushed_total += len(batch)
            self.flush_count += 1
            self.last_flush_seconds = time.perf_counter() - started
            return len(batch)

    def _commit(self, session: Session, rows: Sequence[TelemetryEntry], loss: _Loss | None) -> None:
        own = _own_session(session)
        try:
            self._write(own, rows, self.streams)
            own.commit()
            self.streams.commit()
        except BaseException as exc:
            self.streams.discard()
            self._undo(own, loss)
            if isinstance(exc, psycopg.Error | sqlite3.Error):
                # Wrap raw driver errors as SQLAlchemy would, so one translation table applies.
                base = psycopg.Error if isinstance(exc, psycopg.Error) else sqlite3.Error
                raise translate_error(sa_exc.DBAPIError.instance(None, None, exc, base)) from exc
            if isinstance(exc, sa_exc.SQLAlchemyError):
                raise translate_error(exc) from exc
            raise
        finally:
            if own is not session:
                with suppress(sa_exc.SQLAlchemyError, psycopg.Error, sqlite3.Error):
                    own.close()

    def _undo(self, session: Session, loss: _Loss | None) -> None:
        with suppress(sa_exc.SQLAlchemyError, psycopg.Error, sqlite3.Error):
            session.rollback()
        if loss is not None:
            self._restore_loss(loss)

    def _take_loss(self) -> _Loss | None:
        with self._lock:
            loss, self._loss = self._loss, None
            return loss

    def _restore_loss(self, loss: _Loss) -> None:
        """Put back loss counts whose row was not committed, merged with newer drops."""
        with self._lock:
            newer = self._loss
            if newer is not None:
                for kind, count in newer.counts.items():
                    loss.counts[kind] = loss.counts.get(kind, 0) + count
                loss.last = newer.last
            self._loss = loss

    def flush_all(self, session: Session) -> int:
        """Flush batch after batch until the buffer is empty; return the number written."""
        total = 0
        while (written := self.flush(session)) > 0:
            total += written
        return total

    def close(self, session: Session) -> int:
        """Flush everything, then end this buffer's stream in the session's database.

        The STREAM_CLOSED row tells verification the stream ended cleanly; a stream that
        was never opened (nothing written) is left alone. Returns the entries flushed.
        """
        written = self.flush_all(session)
        with self._flush_lock:
            stream = self.streams.for_session(session)
            if stream.opened:
                self._commit(session, [close_entry(stream, stream.next_seq)], None)
            self.streams.forget(session)
        return written


def _own_session(session: Session) -> Session:
    """Return a session whose transaction is the flush's alone: ``session`` if it is idle."""
    if not session.in_transaction():
        return session
    bind = session.get_bind()
    return Session(bind=bind.engine if isinstance(bind, Connection) else bind)


def _loss_entry(loss: _Loss) -> TelemetryEntry:
    details = {
        "dropped": dict(sorted(loss.counts.items())),
        "total": sum(loss.counts.values()),
        "first_drop_at": format_timestamp(datetime.fromtimestamp(loss.first, UTC)),
        "last_drop_at": format_timestamp(datetime.fromtimestamp(loss.last, UTC)),
    }
    return TelemetryEntry(None, None, None, None, None, LogType.TELEMETRY_LOSS, details)


_singleton: TelemetryBuffer | None = None
_singleton_lock = threading.Lock()


def get_telemetry_buffer() -> TelemetryBuffer:
    """Return the process-wide buffer, creating it from the settings on first use."""
    global _singleton  # noqa: PLW0603 - the one deliberate singleton (SPEC §6)
    buffer = _singleton
    if buffer is None:
        with _singleton_lock:
            if _singleton is None:
                settings = load_settings()
                _singleton = TelemetryBuffer(
                    settings.telemetry_batch_size, settings.telemetry_max_queue_size
                )
            buffer = _singleton
    return buffer


def reset_telemetry_buffer() -> None:
    """Forget the process-wide buffer so the next get creates a fresh one (tests, reconfig)."""
    global _singleton  # noqa: PLW0603 - see get_telemetry_buffer
    with _singleton_lock:
        _singleton = None
