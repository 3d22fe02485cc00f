"""The worker loop: check out, heartbeat while the handler runs, submit or fail, repeat.

``concurrency`` slots run side by side, each a thread with its own connection to the
server. A slot with nothing to do waits, doubling its wait up to a cap, and starts again
at the shortest wait once it finds work. ``stop()`` (SIGTERM in ``chameleon worker``)
lets every slot finish the UOW it holds, submit it, and check out nothing more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from chameleon_workflow.client.api import ChameleonClient
from chameleon_workflow.client.models import UOW
from chameleon_workflow.errors import (
    ChameleonError,
    NotAuthenticatedError,
    NotAuthorizedError,
    NotFoundError,
    ServerError,
)
from chameleon_workflow.worker.handlers import Handler, result_of

log = logging.getLogger("chameleon_workflow.worker")

#: Errors of a checkout that no retry will mend: a bad token, a role not held or unknown.
FATAL = (NotAuthenticatedError, NotAuthorizedError, NotFoundError)
#: Longest failure reason sent; the server bounds reasoning (CHAMELEON_MAX_REASONING_CHARS).
REASON_MAX = 2000


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """What a worker does: its role, how many UOWs at once, how often it beats and waits."""

    role: str
    concurrency: int = 1
    heartbeat_s: float = 10.0
    idle_min_s: float = 0.2
    idle_max_s: float = 5.0
    max_uows: int | None = None  # stop after this many UOWs (None: until stopped)


@dataclass
class WorkerStats:
    """What a worker did, counted as it goes."""

    submitted: int = 0
    failed: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, what: str) -> None:
        """Add one to a counter."""
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)


class Heartbeat(threading.Thread):
    """Beats for one held UOW every ``interval_s`` until finished; keeps its latest state."""

    def __init__(self, client: ChameleonClient, uow: UOW, interval_s: float) -> None:
        """Beat for ``uow`` through ``client``."""
        super().__init__(name=f"heartbeat-{uow.uow_id}", daemon=True)
        self.client, self.latest, self.interval_s = client, uow, interval_s
        self.lost: ChameleonError | None = None
        self._done = threading.Event()

    def run(self) -> None:
        """Beat until finished or until the server says the UOW is no longer held."""
        while not self._done.wait(self.interval_s):
            try:
                self.latest = self.client.heartbeat(self.latest)
            except ChameleonError as exc:
                log.warning("UOW %s: heartbeat failed: %s", self.latest.uow_id, exc)
                if _taken_away(exc):
                    self.lost = exc
                    return

    def finish(self) -> UOW:
        """Stop beating and return the UOW as the last beat saw it."""
        self._done.set()
        self.join()
        return self.latest


def _taken_away(exc: ChameleonError) -> bool:
    """Tell whether a heartbeat error means the UOW is no longer the worker's."""
    status = getattr(getattr(exc, "problem", None), "status", None)
    return status in (403, 404, 409)


class Worker:
    """Runs a handler over the UOWs of one role until stopped."""

    def __init__(
        self, connect: Callable[[], ChameleonClient], handler: Handler, options: WorkerOptions
    ) -> None:
        """``connect`` makes one client per slot (each holds its own connections)."""
        self.connect, self.handler, self.options = connect, handler, options
        self.stats = WorkerStats()
        self._stopping = threading.Event()
        self._started = 0
        self._quota = threading.Lock()
        self._fatal: ChameleonError | None = None

    def stop(self) -> None:
        """Check out nothing more; each slot finishes and submits the UOW it holds."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Tell whether the worker was asked to stop."""
        return self._stopping.is_set()

    def run(self) -> WorkerStats:
        """Run every slot until stopped; raise the error that stopped a slot, if any."""
        slots = [
            threading.Thread(target=self._slot, name=f"slot-{n}", daemon=True)
            for n in range(self.options.concurrency)
        ]
        for slot in slots:
            slot.start()
        for slot in slots:
            while slot.is_alive():
                slot.join(0.2)  # short joins, so the main thread still sees signals
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    def _slot(self) -> None:
        try:
            self._loop()
        except ChameleonError as exc:  # the client could not be made (a malformed URL)
            self._fatal = exc
            self._stopping.set()
        except Exception as exc:  # a bug in a slot stops the worker with one line, not a hang
            log.exception("worker slot failed")
            self._fatal = ServerError(f"a worker slot failed: {type(exc).__name__}: {exc}")
            self._stopping.set()

    def _loop(self) -> None:
        idle = self.options.idle_min_s
        with self.connect() as client:
            while not self._stopping.is_set() and self._reserve():
                try:
                    uow = client.checkout(self.options.role)
                except FATAL as exc:
                    self._fatal = exc
                    self._stopping.set()
                    return
                except ChameleonError as exc:
                    log.warning("checkout at %s failed: %s", self.options.role, exc)
                    uow = None
                if uow is None:
                    self._release()
                    self._stopping.wait(idle)
                    idle = min(idle * 2, self.options.idle_max_s)
                    continue
                idle = self.options.idle_min_s
                self._work(client, uow)

    def _reserve(self) -> bool:
        with self._quota:
            if self.options.max_uows is not None and self._started >= self.options.max_uows:
                return False
            self._started += 1
            return True

    def _release(self) -> None:
        with self._quota:
            self._started -= 1

    def _work(self, client: ChameleonClient, uow: UOW) -> None:
        beat = Heartbeat(client, uow, self.options.heartbeat_s)
        beat.start()
        try:
            result = result_of(self.handler(uow))
        except Exception as exc:  # noqa: BLE001 - a handler's failure is the UOW's failure
            reason = (str(exc).strip() or type(exc).__name__)[:REASON_MAX]
            self._settle(uow, "failed", lambda: client.fail(beat.finish(), reason))
            return
        held = beat.finish()
        attributes = dict(result.attributes) or None
        self._settle(uow, "submitted", lambda: client.submit(held, attributes, result.reasoning))

    def _settle(self, uow: UOW, what: str, call: Callable[[], UOW]) -> None:
        try:
            after = call()
        except ChameleonError as exc:
            self.stats.count("refused")
            log.warning("UOW %s: the server refused it as %s: %s", uow.uow_id, what, exc)
            return
        self.stats.count(what)
        log.info("UOW %s %s: now %s at %s", uow.uow_id, what, after.status, after.interaction)
