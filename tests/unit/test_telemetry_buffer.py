"""Unit tests of the telemetry buffer with a fake writer and a fake session (no I/O)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chameleon_workflow.errors import DatabaseError, InvalidValueError
from chameleon_workflow.keys import Keyring, LedgerKey
from chameleon_workflow.log_links import log_link
from chameleon_workflow.states import LogType
from chameleon_workflow.telemetry.buffer import (
    TelemetryBuffer,
    get_telemetry_buffer,
    reset_telemetry_buffer,
)
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.streams import Stream
from chameleon_workflow.telemetry.writers import link_rows, render_json


class FakeSession:
    """Collects written entries and makes them visible only on commit."""

    def __init__(self) -> None:
        self.staged: list[TelemetryEntry] = []
        self.committed: list[TelemetryEntry] = []
        self.fail_next = False
        self.rollbacks = 0

    def write(self, session: Any, entries: Sequence[TelemetryEntry], streams: Any) -> None:
        """Stage entries, failing once after partial work when asked."""
        self.staged.extend(entries[: len(entries) // 2])
        if self.fail_next:
            self.fail_next = False
            raise DatabaseError("injected failure")
        self.staged.extend(entries[len(entries) // 2 :])

    def commit(self) -> None:
        """Make staged entries durable."""
        self.committed.extend(self.staged)
        self.staged.clear()

    def rollback(self) -> None:
        """Forget staged entries."""
        self.staged.clear()
        self.rollbacks += 1

    def in_transaction(self) -> bool:
        """Report an idle session, which the buffer uses for its own transaction."""
        return False


def _entry(seq: int, log_type: str = "TELEMETRY") -> TelemetryEntry:
    return TelemetryEntry(None, None, None, None, None, log_type, {"seq": seq})


def _buffer(fake: FakeSession, batch: int = 1000, size: int = 10000) -> TelemetryBuffer:
    return TelemetryBuffer(batch, size, writer=fake.write)


def _seqs(entries: Sequence[TelemetryEntry]) -> list[int]:
    return [e.event_details["seq"] for e in entries if e.log_type != "TELEMETRY_LOSS"]


def test_entry_sets_aware_utc_timestamp() -> None:
    """An entry without a timestamp gets the current aware UTC time."""
    before = datetime.now(UTC)
    entry = _entry(0)
    assert entry.timestamp is not None
    assert entry.timestamp.tzinfo is UTC
    assert before <= entry.timestamp <= datetime.now(UTC)


def test_entry_rejects_unknown_log_type() -> None:
    """A log type outside LogType is refused at construction."""
    with pytest.raises(InvalidValueError, match="unknown log_type 'NOPE'"):
        _entry(0, "NOPE")


def test_entry_stores_enum_log_type_as_plain_str() -> None:
    """A LogType member is stored as its plain string value."""
    entry = TelemetryEntry(None, None, None, None, None, LogType.ERROR)
    assert type(entry.log_type) is str
    assert entry.log_type == "ERROR"


def test_entry_rejects_naive_timestamp() -> None:
    """A naive timestamp is refused at construction."""
    with pytest.raises(InvalidValueError, match="has no time zone"):
        TelemetryEntry(None, None, None, None, None, timestamp=datetime(2024, 1, 1))


def test_record_counts_pending() -> None:
    """Every accepted entry is pending until flushed."""
    buffer = _buffer(FakeSession())
    assert [buffer.record(_entry(i)) for i in range(3)] == [True, True, True]
    assert buffer.get_pending_count() == 3
    assert buffer.recorded_total == 3


def test_full_buffer_refuses_and_counts_per_type() -> None:
    """A full buffer returns False and counts the drop under the entry's log type."""
    buffer = _buffer(FakeSession(), size=2)
    results = [buffer.record(_entry(i, t)) for i, t in enumerate(["ERROR"] * 3 + ["TELEMETRY"])]
    assert results == [True, True, False, False]
    assert buffer.get_pending_count() == 2
    assert buffer.dropped_by_type == {"ERROR": 1, "TELEMETRY": 1}


def test_flush_commits_then_removes_oldest_batch() -> None:
    """A flush writes one batch of the oldest entries and removes only those."""
    fake = FakeSession()
    buffer = _buffer(fake, batch=2)
    for i in range(5):
        buffer.record(_entry(i))
    assert buffer.flush(fake) == 2  # type: ignore[arg-type]
    assert _seqs(fake.committed) == [0, 1]
    assert buffer.get_pending_count() == 3
    assert buffer.flush(fake, max_entries=1) == 1  # type: ignore[arg-type]
    assert _seqs(fake.committed) == [0, 1, 2]


def test_failed_flush_keeps_entries_and_rolls_back() -> None:
    """A failed write keeps every entry in order, rolls back, and the retry writes each once."""
    fake = FakeSession()
    buffer = _buffer(fake, batch=4)
    for i in range(6):
        buffer.record(_entry(i))
    fake.fail_next = True
    with pytest.raises(DatabaseError, match="injected failure"):
        buffer.flush(fake)  # type: ignore[arg-type]
    assert (fake.rollbacks, fake.committed, buffer.get_pending_count()) == (1, [], 6)
    assert buffer.flush_all(fake) == 6  # type: ignore[arg-type]
    assert _seqs(fake.committed) == [0, 1, 2, 3, 4, 5]


def test_loss_row_written_once_and_kept_on_failure() -> None:
    """Drop counts survive a failed flush and are written as one TELEMETRY_LOSS row."""
    fake = FakeSession()
    buffer = _buffer(fake, size=1)
    buffer.record(_entry(0))
    buffer.record(_entry(1, "ERROR"))
    buffer.record(_entry(2, "ERROR"))
    fake.fail_next = True
    with pytest.raises(DatabaseError):
        buffer.flush(fake)  # type: ignore[arg-type]
    assert buffer.flush_all(fake) == 1  # type: ignore[arg-type]
    losses = [e for e in fake.committed if e.log_type == "TELEMETRY_LOSS"]
    assert len(losses) == 1
    assert losses[0].event_details["dropped"] == {"ERROR": 2}
    assert losses[0].event_details["total"] == 2
    assert buffer.flush(fake) == 0  # type: ignore[arg-type]
    assert len(fake.committed) == 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("record"), st.integers(1, 20)),
            st.tuples(st.just("flush"), st.integers(1, 20)),
            st.tuples(st.just("fail"), st.integers(1, 20)),
        ),
        max_size=40,
    )
)
def test_buffer_is_fifo_under_any_interleaving(ops: list[tuple[str, int]]) -> None:
    """Committed entries always come out in recording order, each exactly once."""
    fake = FakeSession()
    buffer = _buffer(fake, batch=7, size=50)
    accepted: list[int] = []
    seq = 0
    for op, n in ops:
        if op == "record":
            for _ in range(n):
                if buffer.record(_entry(seq)):
                    accepted.append(seq)
                seq += 1
        else:
            fake.fail_next = op == "fail"
            with contextlib.suppress(DatabaseError):
                buffer.flush(fake, max_entries=n)  # type: ignore[arg-type]
            fake.fail_next = False  # a flush with nothing to write never reaches the writer
    buffer.flush_all(fake)  # type: ignore[arg-type]
    assert _seqs(fake.committed) == accepted
    assert buffer.get_pending_count() == 0


def test_concurrent_producers_never_exceed_capacity() -> None:
    """Threads recording at once never push the buffer past max_queue_size."""
    buffer = _buffer(FakeSession(), size=1000)
    results: list[list[bool]] = [[] for _ in range(4)]

    def produce(out: list[bool]) -> None:
        out.extend(buffer.record(_entry(i)) for i in range(500))

    threads = [threading.Thread(target=produce, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = sum(sum(r) for r in results)
    assert accepted == buffer.get_pending_count() == 1000
    assert buffer.dropped_by_type == {"TELEMETRY": 1000}


def test_render_json_marks_values_that_are_not_json() -> None:
    """Non-JSON values become markers instead of failing the row."""

    class Weird:
        def __repr__(self) -> str:
            return "Weird()"

    assert orjson.loads(render_json({"w": Weird(), "n": 2**70}) or b"") == {
        "__unserializable__": "dict",
        "repr": "{'w': Weird(), 'n': 1180591620717411303424}",
    }
    assert orjson.loads(render_json({"w": Weird()}) or b"") == {
        "w": {"__unserializable__": "Weird", "repr": "Weird()"}
    }
    assert render_json({"s": "a\x00b"}) == '{"s":"a\ufffdb"}'.encode()
    assert render_json(None) is None


def test_sqlite_rows_convert_ids_time_and_invalid_ids() -> None:
    """SQLite tuples carry canonical text; a malformed id becomes NULL and is noted."""
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    moment = datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    entry = TelemetryEntry(
        uid, str(uid).upper(), "junk", None, uid, "ERROR", {"a": 1}, None, moment
    )
    keys = Keyring.of(LedgerKey.of(b"k" * 32))
    stream = Stream(uuid.uuid4(), keys)
    linked = link_rows([entry], stream, 7, None, "sqlite")
    (row,) = linked.rows
    assert row[1:10] == (
        str(uid),
        str(uid),
        None,
        None,
        str(uid),
        "2024-05-06T07:08:09.000010Z",
        "ERROR",
        '{"a":1}',
        '{"original":null,"invalid_ids":{"actor_id":"\'junk\'"}}',
    )
    assert uuid.UUID(row[0]).version == 4
    assert row[10:13] == (str(stream.stream_id), 7, keys.current_id)
    # The link is the MAC of the row's canonical form, which verification recomputes.
    values = {
        "log_id": row[0],
        "instance_id": str(uid),
        "uow_id": str(uid),
        "actor_id": None,
        "role_id": None,
        "interaction_id": str(uid),
        "timestamp": "2024-05-06T07:08:09.000010Z",
        "log_type": "ERROR",
        "event_details": {"a": 1},
        "error_metadata": {"original": None, "invalid_ids": {"actor_id": "'junk'"}},
        "stream_id": str(stream.stream_id),
        "stream_seq": 7,
        "key_id": keys.current_id,
    }
    assert row[13] == linked.last_link == log_link(keys, None, values)
    assert linked.next_seq == 8


def test_a_value_json_cannot_hold_exactly_is_stored_as_a_marker_and_still_linked() -> None:
    """An integer beyond 2**53 cannot be linked canonically: the row keeps a marker instead."""
    keys = Keyring.of(LedgerKey.of(b"k" * 32))
    entry = TelemetryEntry(None, None, None, None, None, "ERROR", {"big": 2**60})
    (row,) = link_rows([entry], Stream(uuid.uuid4(), keys), 0, None, "sqlite").rows
    assert orjson.loads(row[8])["__unlinkable__"].startswith("a value JSON cannot hold")
    assert str(2**60) in orjson.loads(row[8])["repr"]


def test_singleton_get_and_reset() -> None:
    """get_telemetry_buffer returns one object until reset gives a new one."""
    reset_telemetry_buffer()
    first = get_telemetry_buffer()
    assert get_telemetry_buffer() is first
    reset_telemetry_buffer()
    second = get_telemetry_buffer()
    assert second is not first
    assert get_telemetry_buffer() is second
    reset_telemetry_buffer()


def test_singleton_created_once_across_threads() -> None:
    """Threads racing on first use all get the same buffer."""
    reset_telemetry_buffer()
    seen: list[TelemetryBuffer] = []
    threads = [
        threading.Thread(target=lambda: seen.append(get_telemetry_buffer())) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(b) for b in seen}) == 1
    reset_telemetry_buffer()
