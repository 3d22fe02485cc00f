"""Background flushing of a telemetry buffer: on an interval, on a size trigger, and a drain.

The flusher is a ``BackgroundService``: a flush that fails (the database is down, a
connection was lost) keeps its entries buffered, is logged as one line, and is retried
after a backoff; ``health()`` reports it failing meanwhile. On ``stop`` it drains what
is left within a deadline that holds even when the database hangs, then closes the
buffer's stream (``streams``) so verification sees a clean end.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.background import BackgroundService
from chameleon_workflow.config import load_settings
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

log = logging.getLogger(__name__)


class TelemetryFlusher(BackgroundService):
    """Background thread that flushes a buffer on an interval or when it fills past a size."""

    def __init__(
        self,
        buffer: TelemetryBuffer,
        session_factory: sessionmaker[Session],
        interval_s: float,
        size_trigger: int | None = None,
        drain_deadline_s: float | None = None,
        backoff_max_s: float | None = None,
    ) -> None:
        """Flush ``buffer`` every ``interval_s`` (sooner at ``size_trigger`` entries)."""
        if drain_deadline_s is None or backoff_max_s is None:
            settings = load_settings()
            if drain_deadline_s is None:
                drain_deadline_s = settings.telemetry_drain_deadline_s
            if backoff_max_s is None:
                backoff_max_s = settings.background_backoff_max_s
        super().__init__("telemetry-flusher", interval_s, backoff_max_s, log)
        self.buffer = buffer
        self.session_factory = session_factory
        self.size_trigger = size_trigger
        self.drain_deadline_s = drain_deadline_s
        self._drain_until = 0.0

    def start(self) -> None:
        """Start the thread (once), woken early when the buffer reaches the size trigger."""
        if self.size_trigger is not None:
            self.buffer.set_wakeup(self.wake_event, self.size_trigger)
        super().start()

    def stop(self, deadline_s: float | None = None) -> int:
        """Drain the buffer within the deadline, stop the thread; return the entries left."""
        deadline = self.drain_deadline_s if deadline_s is None else deadline_s
        self._drain_until = time.monotonic() + deadline
        self.request_stop()
        # A hung database keeps the daemon thread busy; the caller still gets control back.
        self.join(max(0.0, self._drain_until - time.monotonic()))
        self.buffer.set_wakeup(None, None)
        return self.buffer.get_pending_count()

    @property
    def failures(self) -> int:
        """Return how many flushes have failed."""
        return self.failures_total

    def run_once(self) -> None:
        """Flush what is pending now (bounded, so producers cannot starve the loop)."""
        rounds = self.buffer.get_pending_count() // self.buffer.batch_size + 1
        with self.session_factory() as session:
            for _ in range(rounds):
                if self.buffer.flush(session) == 0:
                    break

    def finish(self) -> None:
        """Drain until the buffer is empty or the deadline has passed."""
        buffer = self.buffer
        while (buffer.get_pending_count() or buffer.loss_pending) and (
            time.monotonic() < self._drain_until
        ):
            if not self.iterate():
                time.sleep(min(self.backoff(), max(0.0, self._drain_until - time.monotonic())))
        if buffer.get_pending_count() == 0 and not buffer.loss_pending:
            self._close_stream()

    def _close_stream(self) -> None:
        """End the buffer's stream with its close row (a failure leaves it to read as lost)."""
        try:
            with self.session_factory() as session:
                self.buffer.close(session)
        except Exception as exc:  # noqa: BLE001 - shutdown goes on; the gap is recorded later
            self.failure_log.failure(f"{self.name}: could not close its stream", exc)
