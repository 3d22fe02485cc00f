"""Verification runs started from the console: one thread each, their progress, their report.

A run verifies one UOW, one instance or every UOW (``UOWPersistenceService``), and,
when the server has the checkpoint key, whether the database still extends the latest
signed checkpoint. Runs are kept in memory, each visible only to the session that
started it, and the oldest are forgotten past ``KEPT_RUNS``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from chameleon_workflow.audit.report import VerificationReport
from chameleon_workflow.checkpoints.heads import Checkpoint
from chameleon_workflow.checkpoints.verify import CheckpointReport, verify_checkpoint
from chameleon_workflow.console import data
from chameleon_workflow.console.backend import ConsoleBackend
from chameleon_workflow.errors import ChameleonError

KEPT_RUNS = 50
log = logging.getLogger("chameleon_workflow.console")


@dataclass(frozen=True, slots=True)
class Target:
    """What a run verifies: one UOW, one instance, or (both None) everything."""

    uow_id: uuid.UUID | None = None
    instance_id: uuid.UUID | None = None

    def describe(self) -> str:
        """Say what the run covers, for the page's heading."""
        if self.uow_id is not None:
            return f"UOW {self.uow_id}"
        if self.instance_id is not None:
            return f"instance {self.instance_id}"
        return "every UOW"


@dataclass(slots=True)
class Run:
    """One verification run: its owner, progress and, when done, its reports or error."""

    run_id: str
    owner: str
    target: Target
    total: int
    started: float = field(default_factory=time.monotonic)
    checked: int = 0
    report: VerificationReport | None = None
    checkpoint: CheckpointReport | None = None
    error: str | None = None
    done: bool = False

    @property
    def percent(self) -> int:
        """Return how far the run is, 0 to 100."""
        if self.done:
            return 100
        return min(99, int(100 * self.checked / self.total)) if self.total else 0


class Runs:
    """The verification runs of one console."""

    def __init__(self, backend: ConsoleBackend) -> None:
        """Run verifications with ``backend``'s engine and checkpoint key."""
        self.backend = backend
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, owner: str, target: Target, total: int) -> Run:
        """Start verifying ``target`` in a thread of its own; return the run."""
        run = Run(secrets.token_urlsafe(16), owner, target, max(total, 1))
        with self._lock:
            self._runs[run.run_id] = run
            while len(self._runs) > KEPT_RUNS:
                self._runs.popitem(last=False)
        threading.Thread(target=self._work, args=(run,), name="console-verify", daemon=True).start()
        return run

    def find(self, owner: str, run_id: str) -> Run | None:
        """Return a run its owner asks for, or None (unknown, forgotten or someone else's)."""
        with self._lock:
            run = self._runs.get(run_id)
        return run if run is not None and run.owner == owner else None

    def _work(self, run: Run) -> None:
        engine = self.backend.engine
        persistence = engine.persistence

        def advance(rows: int) -> None:
            run.checked += rows

        def verify(session: Session) -> VerificationReport:
            if run.target.uow_id is not None:
                return persistence.verify_uow(session, run.target.uow_id)
            return persistence.verify_database(session, run.target.instance_id, advance)

        try:
            run.report = engine.read(verify)
            run.checkpoint = self._checkpoint(engine.read(data.latest_checkpoint))
        except ChameleonError as exc:
            run.error = str(exc)
        except Exception:  # a run must end and say so, never leave its page reloading forever
            log.exception("console verification run failed")
            run.error = "the verification failed; the server log has the error"
        finally:
            run.done = True

    def _checkpoint(self, head: Checkpoint | None) -> CheckpointReport | None:
        key = self.backend.checkpoint_key()
        if head is None or key is None:
            return None
        return self.backend.engine.read(
            lambda session: verify_checkpoint(session.connection(), head, key)
        )
