"""The server's background services (flusher, zombie sweeper, checkpointer) and its health checks.

The services start in the app's lifespan and stop in reverse order on shutdown
(SIGTERM/SIGINT): the checkpointer (when ``CHAMELEON_CHECKPOINT_INTERVAL_S`` > 0) and the
sweeper first, so no new telemetry is produced by them, then the flusher, which drains
the buffer within ``CHAMELEON_TELEMETRY_DRAIN_DEADLINE_S``.
``/health`` asks ``database_reachable`` and ``BackgroundServices.flusher_alive``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.checkpoints.keys import Signer, load_signing_key
from chameleon_workflow.checkpoints.paths import checkpoint_path, signing_key_path
from chameleon_workflow.checkpoints.sealer import SealResult, seal_to_file
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import ChameleonError
from chameleon_workflow.server.metrics import CountingBuffer, ServerMetrics
from chameleon_workflow.server.settings import ServerSettings
from chameleon_workflow.telemetry.flusher import TelemetryFlusher

log = logging.getLogger(__name__)


class ZombieSweeper:
    """Background thread that reclaims UOWs whose holders stopped heartbeating."""

    def __init__(self, engine: WorkflowEngine, metrics: ServerMetrics, interval_s: float) -> None:
        self.engine = engine
        self.metrics = metrics
        self.interval_s = interval_s
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chameleon-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping every interval."""
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Ask the thread to end and wait for it (a sweep in progress finishes)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def sweep_once(self) -> None:
        """Sweep now, counting reclaimed UOWs; a failure is logged and retried next tick."""
        try:
            result = self.engine.sweep_zombies()
        except ChameleonError:
            self.failures += 1
            log.exception("zombie sweep failed")
            return
        self.metrics.record_sweep(result.requeued, result.dead)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sweep_once()


class Checkpointer:
    """Background thread that seals the ledger and writes the checkpoint file every interval."""

    def __init__(self, engine: Engine, signer: Signer, path: Path, interval_s: float) -> None:
        self.engine = engine
        self.signer = signer
        self.path = path
        self.interval_s = interval_s
        self.failures = 0
        self.last: SealResult | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chameleon-sealer", daemon=True)

    def start(self) -> None:
        """Start sealing every interval."""
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Ask the thread to end and wait for it (a seal in progress finishes)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def alive(self) -> bool:
        """Tell whether the thread is running."""
        return self._thread.is_alive()

    def seal_once(self) -> None:
        """Seal now; any failure is counted and logged, and the next tick tries again."""
        try:
            self.last = seal_to_file(self.engine, self.signer, self.path)
        except Exception:  # one bad iteration (a bug included) must not end the anchoring
            self.failures += 1
            log.exception("checkpoint failed")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.seal_once()


class BackgroundServices:
    """The telemetry flusher and the zombie sweeper of one app, started and stopped together."""

    def __init__(
        self,
        engine: WorkflowEngine,
        buffer: CountingBuffer,
        metrics: ServerMetrics,
        settings: ServerSettings,
        session_factory: sessionmaker[Session],
    ) -> None:
        self.settings = settings
        self.flusher = TelemetryFlusher(
            buffer,
            session_factory,
            settings.telemetry_flush_interval_s,
            settings.telemetry_flush_size_trigger or settings.telemetry_batch_size,
            settings.telemetry_drain_deadline_s,
        )
        self.sweeper = ZombieSweeper(engine, metrics, settings.sweep_interval_s)
        self.checkpointer = _checkpointer(engine.engine, settings)
        self._started = False

    def start(self) -> None:
        """Start the flusher, then the sweeper and the checkpointer."""
        self.flusher.start()
        self.sweeper.start()
        if self.checkpointer is not None:
            self.checkpointer.start()
        self._started = True

    def stop(self) -> int:
        """Stop the checkpointer and the sweeper, then drain the buffer; return entries left."""
        deadline = self.settings.telemetry_drain_deadline_s
        if self.checkpointer is not None:
            self.checkpointer.stop(deadline)
        self.sweeper.stop(deadline)
        left = self.flusher.stop(deadline)
        if left:
            log.error("telemetry drain deadline passed with %d entries unwritten", left)
        return left

    def flusher_alive(self) -> bool:
        """Tell whether the flusher thread is running."""
        return self._started and not self.flusher.join(0)


def _checkpointer(engine: Engine, settings: ServerSettings) -> Checkpointer | None:
    """Build the checkpointer when an interval is set; a missing key stops the server here."""
    if settings.checkpoint_interval_s <= 0:
        return None
    url = settings.database_url
    signer = load_signing_key(signing_key_path(url, settings))
    path = checkpoint_path(url, settings)
    return Checkpointer(engine, signer, path, settings.checkpoint_interval_s)


def database_reachable(session_factory: sessionmaker[Session]) -> bool:
    """Tell whether one trivial query succeeds."""
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # any failure means "not reachable" to a health check
        log.warning("database health check failed", exc_info=True)
        return False
    return True
