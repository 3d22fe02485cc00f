"""Writer streams: every process's log rows form a keyed chain of their own.

A stream is what one telemetry buffer writes into one database. Its first row
(``stream_seq`` 0) is STREAM_OPENED, naming the writer, host and process; every row after
it carries the next ``stream_seq`` and a ``chain_hash`` that is the HMAC-SHA256, under the
ledger key, of the previous row's link followed by the row's canonical form
(``log_links.log_body``); a clean shutdown ends the stream with STREAM_CLOSED. So an edited, deleted
or reordered log row breaks its stream, and a stream whose process was killed ends
without its close row: the next stream opened by the same writer on the same host records
that gap as a TELEMETRY_LOSS row naming it (``lost_streams``), and verification reports it
as lost telemetry, not as tampering.

Streams never share a counter, so many processes write side by side with no contention.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from chameleon_workflow.keys import KeyProvider, find_keys
from chameleon_workflow.states import LogType
from chameleon_workflow.telemetry.entry import TelemetryEntry


def writer_name() -> str:
    """Return this writer's name: ``CHAMELEON_WRITER_NAME``, else the host name."""
    return os.environ.get("CHAMELEON_WRITER_NAME") or socket.gethostname()


def process_id() -> int:
    """Return this process's id, as a stream's open row records it."""
    return os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


@dataclass(slots=True)
class Stream:
    """One stream's position: the next sequence number and the last committed link."""

    stream_id: uuid.UUID
    keys: KeyProvider
    next_seq: int = 0
    last_link: str | None = None

    @property
    def opened(self) -> bool:
        """Tell whether the open row is committed."""
        return self.next_seq > 0


@dataclass(slots=True)
class _Staged:
    stream: Stream
    next_seq: int
    last_link: str | None


@dataclass
class Streams:
    """The streams of one buffer, one per database, moved on only when a flush commits.

    A writer asks for its database's stream (``for_session``), links rows from the stream's
    position (``stage``) and the buffer then either ``commit``s the staged positions or
    ``discard``s them, so a failed flush leaves every stream where it was.
    """

    keys: KeyProvider | None = None
    _by_database: dict[str, Stream] = field(default_factory=dict)
    _staged: list[_Staged] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_session(self, session: Session) -> Stream:
        """Return the stream of the session's database, made (not yet opened) on first use."""
        url = session.get_bind().engine.url.render_as_string(hide_password=False)
        with self._lock:
            stream = self._by_database.get(url)
            if stream is None:
                keys = self.keys if self.keys is not None else find_keys(url)
                stream = self._by_database[url] = Stream(uuid.uuid4(), keys)
            return stream

    def stage(self, stream: Stream, next_seq: int, last_link: str | None) -> None:
        """Remember where ``stream`` will be once the flush commits."""
        self._staged.append(_Staged(stream, next_seq, last_link))

    def commit(self) -> None:
        """Move every staged stream on (the flush committed)."""
        for staged in self._staged:
            staged.stream.next_seq, staged.stream.last_link = staged.next_seq, staged.last_link
        self._staged.clear()

    def discard(self) -> None:
        """Forget staged positions (the flush rolled back)."""
        self._staged.clear()

    def forget(self, session: Session) -> None:
        """Drop the session's database's stream, after its close row committed."""
        url = session.get_bind().engine.url.render_as_string(hide_password=False)
        with self._lock:
            self._by_database.pop(url, None)

    def owns(self, stream_id: str) -> bool:
        """Tell whether a stream id is one of this buffer's."""
        return any(str(s.stream_id) == stream_id for s in self._by_database.values())


def open_entry(stream: Stream) -> TelemetryEntry:
    """Return the first row of a stream, naming its writer."""
    details = {
        "stream_id": str(stream.stream_id),
        "writer": writer_name(),
        "host": socket.gethostname(),
        "pid": process_id(),
    }
    return TelemetryEntry(None, None, None, None, None, LogType.STREAM_OPENED, details)


def close_entry(stream: Stream, rows: int) -> TelemetryEntry:
    """Return the last row of a cleanly closed stream."""
    details = {"stream_id": str(stream.stream_id), "rows": rows}
    return TelemetryEntry(None, None, None, None, None, LogType.STREAM_CLOSED, details)


_STREAM_ROWS = (
    "SELECT stream_id, stream_seq, log_type, event_details FROM interaction_logs "
    "WHERE log_type IN ('STREAM_OPENED', 'STREAM_CLOSED', 'TELEMETRY_LOSS') "
    "AND stream_id IS NOT NULL"
)
_LAST_ROW = "SELECT max(stream_seq) FROM interaction_logs WHERE stream_id = :stream"


def lost_streams(session: Session, streams: Streams) -> list[TelemetryEntry]:
    """Return a TELEMETRY_LOSS row for each stream of this writer whose process is gone.

    A stream is this writer's when its open row names this writer and host; it is gone when
    it has no close row, no loss row names it yet, it is not one of ``streams``' own, and
    its process no longer runs (or is this very process, which never wrote it: a restart
    that reused the id).
    """
    me, host, pid = writer_name(), socket.gethostname(), process_id()
    opened: dict[str, dict[str, Any]] = {}
    ended: set[str] = set()
    for stream_id, _, log_type, details in session.execute(text(_STREAM_ROWS)):
        doc = _json(details)  # an edited row reads as empty here; verification reports it
        if log_type == LogType.STREAM_OPENED:
            opened[str(stream_id)] = doc
        elif log_type == LogType.STREAM_CLOSED:
            ended.add(str(stream_id))
        elif isinstance(doc.get("lost_stream"), str):
            ended.add(doc["lost_stream"])
    entries = []
    for stream_id, doc in sorted(opened.items()):
        if stream_id in ended or streams.owns(stream_id):
            continue
        if doc.get("writer") != me or doc.get("host") != host:
            continue
        their_pid = doc.get("pid")
        if isinstance(their_pid, int) and their_pid != pid and _alive(their_pid):
            continue
        last = session.execute(text(_LAST_ROW), {"stream": _id_param(session, stream_id)})
        details = {
            "lost_stream": stream_id,
            "last_stream_seq": last.scalar_one(),
            "reason": "its writer stopped without closing the stream (killed or crashed); "
            "rows it had not yet written are lost",
        }
        entries.append(
            TelemetryEntry(None, None, None, None, None, LogType.TELEMETRY_LOSS, details)
        )
    return entries


def _id_param(session: Session, stream_id: str) -> Any:
    return stream_id if session.get_bind().dialect.name == "sqlite" else uuid.UUID(stream_id)


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):  # SQLite hands JSON back as text
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}
