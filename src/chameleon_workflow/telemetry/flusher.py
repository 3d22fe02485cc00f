"""Background flushing of a telemetry buffer: on an interval, on a size trigger, and a drain."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import load_settings
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

log = logging.getLogger(__name__)


class TelemetryFlusher:
    """Background thread that flushes a buffer on an interval or when it fills past a size."""

    def __init__(
        self,
        buffer: TelemetryBuffer,
        session_factory: sessionmaker[Session],
        interval_s: float,
        size_trigger: int | None = None,
        drain_deadline_s: float | None = None,
    ) -> None:
        self.buffer = buffer
        self.session_factory = session_factory
        self.interval_s = interval_s
        self.size_trigger = size_trigger
        self.drain_deadline_s = (
            load_settings().telemetry_drain_deadline_s
            if drain_deadline_s is None
            else drain_deadline_s
        )
        self.failures = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._drain_until = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        if self.size_trigger is not None:
            self.buffer.set_wakeup(self._wake, self.size_trigger)
        self._thread = threading.Thread(target=self._run, name="chameleon-telemetry", daemon=True)
        self._thread.start()

    def stop(self, deadline_s: float | None = None) -> int:
        """Drain the buffer within the deadline, stop the thread; return the entries left."""
        deadline = self.drain_deadline_s if deadline_s is None else deadline_s
        self._drain_until = time.monotonic() + deadline
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            # A hung database keeps the daemon thread busy; the caller still gets control back.
            self._thread.join(max(0.0, self._drain_until - time.monotonic()))
        self.buffer.set_wakeup(None, None)
        return self.buffer.get_pending_count()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; return True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self.flush_once()
        while (self.buffer.get_pending_count() or self.buffer.loss_pending) and (
            time.monotonic() < self._drain_until
        ):
            if not self.flush_once():
                time.sleep(min(0.05, max(0.0, self._drain_until - time.monotonic())))

    def flush_once(self) -> bool:
        """Flush what is pending now (bounded, so producers cannot starve us); log failures."""
        rounds = self.buffer.get_pending_count() // self.buffer.batch_size + 1
        try:
            with self.session_factory() as session:
                for _ in range(rounds):
                    if self.buffer.flush(session) == 0:
                        break
        except Exception:
            # Never let one failure kill the thread: entries stay buffered for the next tick.
            self.failures += 1
            log.exception(
                "telemetry flush failed; %d entries kept", self.buffer.get_pending_count()
            )
            return False
        return True
