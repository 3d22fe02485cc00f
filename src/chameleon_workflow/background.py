"""Background services that outlive the failure of any one iteration, and quiet failure logs.

A ``BackgroundService`` runs ``run_once`` in a daemon thread on an interval. An iteration
that raises is logged as one line, counted, and retried after a backoff that doubles up
to a cap; the thread itself never ends because of it. ``health()`` says at any moment
whether the service is running, failing (its last iteration failed, and why) or stopped.

``FailureLog`` is the logging policy for faults that repeat (a database outage fails
every iteration and every request): one line per failure, and the full traceback only
the first time a distinct error is seen.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass
from typing import Literal

ServiceState = Literal["running", "failing", "stopped"]


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """What one background service reports about itself."""

    name: str
    state: ServiceState
    failures_total: int
    consecutive_failures: int
    last_error: str | None

    @property
    def ok(self) -> bool:
        """Tell whether the service runs and its last iteration succeeded."""
        return self.state == "running"


def describe(exc: BaseException) -> str:
    """Describe an error in one line: its type and the first line of its message."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


class FailureLog:
    """Log each failure as one line; log a traceback only for the first of each kind."""

    MAX_KINDS = 1000

    def __init__(self, logger: logging.Logger) -> None:
        """Write to ``logger``."""
        self.logger = logger
        self._seen: set[tuple[tuple[str, str, int], ...]] = set()
        self._lock = threading.Lock()

    def failure(self, message: str, exc: BaseException, level: int = logging.WARNING) -> None:
        """Log ``message`` and the error in one line; add the traceback if it is new."""
        first = self._first_time(exc)
        self.logger.log(level, "%s: %s", message, describe(exc), exc_info=exc if first else None)

    def _first_time(self, exc: BaseException) -> bool:
        key = _kind(exc)
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) < self.MAX_KINDS:
                self._seen.add(key)
            return True


def _kind(exc: BaseException) -> tuple[tuple[str, str, int], ...]:
    """Identify an error by each chained exception's type and where it was raised."""
    kinds: list[tuple[str, str, int]] = []
    current: BaseException | None = exc
    while current is not None and len(kinds) < 10:
        frames = traceback.extract_tb(current.__traceback__)
        where = (frames[-1].filename, frames[-1].lineno or 0) if frames else ("", 0)
        kinds.append((type(current).__qualname__, *where))
        current = current.__cause__ or current.__context__
    return tuple(kinds)


class BackgroundService:
    """A daemon thread that runs ``run_once`` every interval and survives its failures."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        backoff_max_s: float,
        logger: logging.Logger | None = None,
    ) -> None:
        """Run every ``interval_s``; after failures back off up to ``backoff_max_s``."""
        self.name = name
        self.interval_s = interval_s
        self.backoff_max_s = max(backoff_max_s, interval_s)
        self.failure_log = FailureLog(logger or logging.getLogger(__name__))
        self.wake_event = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures_total = 0
        self._consecutive = 0
        self._last_error: str | None = None

    def run_once(self) -> None:
        """Do one iteration of work; raise to report a failure (subclasses override)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Do what is left once a stop is asked, in the service's thread (default: nothing)."""

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"chameleon-{self.name}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to end after its current iteration and ``finish``."""
        self._stopping.set()
        self.wake_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; return True when it has (or never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def stopping(self) -> bool:
        """Tell whether a stop has been asked."""
        return self._stopping.is_set()

    # ------------------------------------------------------------------ state

    @property
    def failures_total(self) -> int:
        """Return how many iterations have failed since the service was built."""
        return self._failures_total

    def health(self) -> ServiceHealth:
        """Report running, failing (the last iteration failed) or stopped, with the last error."""
        thread = self._thread
        why: str | None
        if thread is None or not thread.is_alive():
            state: ServiceState = "stopped"
            why = self._last_error or ("not started" if thread is None else "stopped")
        else:
            state = "failing" if self._consecutive else "running"
            why = self._last_error if self._consecutive else None
        return ServiceHealth(self.name, state, self._failures_total, self._consecutive, why)

    def iterate(self) -> bool:
        """Run one iteration now; record and log a failure instead of raising it."""
        try:
            self.run_once()
        except Exception as exc:  # noqa: BLE001 - any error of one iteration must not end the service
            self._failures_total += 1
            self._consecutive += 1
            self._last_error = describe(exc)
            self.failure_log.failure(
                f"{self.name}: iteration failed ({self._consecutive} in a row, retry in "
                f"{self.backoff():.2f} s)",
                exc,
            )
            return False
        self._consecutive = 0
        self._last_error = None
        return True

    def backoff(self) -> float:
        """Return the wait before the next try: the interval, doubled per failure, capped."""
        doublings = min(max(self._consecutive - 1, 0), 30)
        return float(min(self.interval_s * 2**doublings, self.backoff_max_s))

    def _run(self) -> None:
        try:
            delay = self.interval_s
            while not self._stopping.is_set():
                if self._consecutive:
                    # A wake-up (a full buffer) must not turn the backoff into a busy loop.
                    self._stopping.wait(delay)
                else:
                    self.wake_event.wait(delay)
                    self.wake_event.clear()
                if self._stopping.is_set():
                    break
                delay = self.interval_s if self.iterate() else self.backoff()
            self.finish()
        except BaseException as exc:
            self._last_error = f"died: {describe(exc)}"
            self.failure_log.failure(f"{self.name}: stopped unexpectedly", exc, logging.ERROR)
            raise
