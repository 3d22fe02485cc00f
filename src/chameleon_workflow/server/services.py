"""The server's background services (flusher, sweeper, checkpointer, archiver) and health checks.

The services start in the app's lifespan and stop in reverse order on shutdown
(SIGTERM/SIGINT): the checkpointer (when ``CHAMELEON_CHECKPOINT_INTERVAL_S`` > 0) and the
sweeper first, so no new telemetry is produced by them, then the flusher, which drains
the buffer within ``CHAMELEON_TELEMETRY_DRAIN_DEADLINE_S``. Each is a
``BackgroundService``: an iteration that fails (the database is down) is logged in one
line and retried after a backoff, and ``/health`` reports which service is failing and why.
The archiver (when ``CHAMELEON_RETENTION_DAYS`` > 0) applies the retention policy every
``CHAMELEON_RETENTION_INTERVAL_S``: an archive run of every UOW finished and unchanged for
that many days (docs/lifecycle.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.admin_ledger import SYSTEM
from chameleon_workflow.archive.run import ArchiveResult, archive
from chameleon_workflow.archive.selection import Scope
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.background import BackgroundService, FailureLog, ServiceHealth
from chameleon_workflow.checkpoints.keys import Signer, load_signing_key
from chameleon_workflow.checkpoints.paths import checkpoint_path, signing_key_path
from chameleon_workflow.checkpoints.sealer import SealResult, seal_to_file
from chameleon_workflow.db import translated_errors
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.models import utcnow
from chameleon_workflow.server.metrics import CountingBuffer, ServerMetrics
from chameleon_workflow.server.settings import ServerSettings
from chameleon_workflow.telemetry.flusher import TelemetryFlusher

log = logging.getLogger(__name__)
_health_failures = FailureLog(log)


class ZombieSweeper(BackgroundService):
    """Background thread that reclaims UOWs whose holders stopped heartbeating."""

    def __init__(
        self,
        engine: WorkflowEngine,
        metrics: ServerMetrics,
        interval_s: float,
        backoff_max_s: float = 60.0,
    ) -> None:
        """Sweep ``engine`` every ``interval_s``, counting reclaimed UOWs in ``metrics``."""
        super().__init__("zombie-sweeper", interval_s, backoff_max_s, log)
        self.engine = engine
        self.metrics = metrics

    def stop(self, timeout_s: float) -> None:
        """Ask the thread to end and wait for it (a sweep in progress finishes)."""
        self.request_stop()
        self.join(timeout_s)

    def run_once(self) -> None:
        """Sweep now, counting the UOWs reclaimed; any error is the iteration's failure."""
        result = self.engine.sweep_zombies()
        self.metrics.record_sweep(result.requeued, result.dead)


class Checkpointer(BackgroundService):
    """Background thread that seals the ledger and writes the checkpoint file every interval."""

    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        path: Path,
        interval_s: float,
        backoff_max_s: float = 60.0,
    ) -> None:
        """Seal ``engine`` every ``interval_s`` and write the signed head to ``path``."""
        super().__init__("checkpointer", interval_s, backoff_max_s, log)
        self.engine = engine
        self.signer = signer
        self.path = path
        self.last: SealResult | None = None

    @property
    def failures(self) -> int:
        """Return how many seals have failed."""
        return self.failures_total

    def alive(self) -> bool:
        """Tell whether the thread is running."""
        return self.health().state != "stopped"

    def stop(self, timeout_s: float) -> None:
        """Ask the thread to end and wait for it (a seal in progress finishes)."""
        self.request_stop()
        self.join(timeout_s)

    def run_once(self) -> None:
        """Seal now and write the file; any error is the iteration's failure."""
        self.last = seal_to_file(self.engine, self.signer, self.path)


class Archiver(BackgroundService):
    """Background thread that archives UOWs older than the retention period every interval."""

    def __init__(
        self, engine: Engine, signer: Signer, root: Path, days: int, interval_s: float, **kw: float
    ) -> None:
        """Archive from ``engine`` to ``root`` what finished more than ``days`` days ago."""
        super().__init__("archiver", interval_s, kw.get("backoff_max_s", 60.0), log)
        self.engine, self.signer, self.root, self.days = engine, signer, root, days
        self.last: ArchiveResult | None = None

    def stop(self, timeout_s: float) -> None:
        """Ask the thread to end and wait for it (a run in progress finishes its batch)."""
        self.request_stop()
        self.join(timeout_s)

    def run_once(self) -> None:
        """Archive now; any error is the iteration's failure (nothing is deleted then)."""
        store = DirectoryStore.for_writing(self.root)
        cut = Scope(utcnow() - timedelta(days=self.days))
        self.last = archive(self.engine, store, self.signer, cut, principal=SYSTEM)


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
        """Build the services from the settings; nothing runs until ``start``."""
        self.settings = settings
        self.flusher = TelemetryFlusher(
            buffer,
            session_factory,
            settings.telemetry_flush_interval_s,
            settings.telemetry_flush_size_trigger or settings.telemetry_batch_size,
            settings.telemetry_drain_deadline_s,
            settings.background_backoff_max_s,
        )
        self.sweeper = ZombieSweeper(
            engine, metrics, settings.sweep_interval_s, settings.background_backoff_max_s
        )
        self.checkpointer = _checkpointer(engine.engine, settings)
        self.archiver = archiver_of(engine.engine, settings)
        self._started = False

    @property
    def services(self) -> tuple[BackgroundService, ...]:
        """Return every background service, in start order."""
        extra = tuple(s for s in (self.checkpointer, self.archiver) if s is not None)
        return (self.flusher, self.sweeper, *extra)

    def start(self) -> None:
        """Start the flusher, then the sweeper and the checkpointer."""
        self.flusher.start()
        self.sweeper.start()
        if self.checkpointer is not None:
            self.checkpointer.start()
        if self.archiver is not None:
            self.archiver.start()
        self._started = True

    def stop(self) -> int:
        """Stop the checkpointer and the sweeper, then drain the buffer; return entries left."""
        deadline = self.settings.telemetry_drain_deadline_s
        if self.archiver is not None:
            self.archiver.stop(deadline)
        if self.checkpointer is not None:
            self.checkpointer.stop(deadline)
        self.sweeper.stop(deadline)
        left = self.flusher.stop(deadline)
        if left:
            log.error(
                "telemetry drain deadline passed: %d entries unwritten and lost (%s)",
                left,
                self.flusher.health().last_error or "the flush did not finish in time",
            )
        return left

    def health(self) -> tuple[ServiceHealth, ...]:
        """Report the state of every service."""
        return tuple(service.health() for service in self.services)

    def flusher_alive(self) -> bool:
        """Tell whether the flusher thread is running."""
        return self._started and self.flusher.health().state != "stopped"


def _checkpointer(engine: Engine, settings: ServerSettings) -> Checkpointer | None:
    """Build the checkpointer when an interval is set; a missing key stops the server here."""
    if settings.checkpoint_interval_s <= 0:
        return None
    url = settings.database_url
    signer = load_signing_key(signing_key_path(url, settings))
    path = checkpoint_path(url, settings)
    return Checkpointer(
        engine, signer, path, settings.checkpoint_interval_s, settings.background_backoff_max_s
    )


def archiver_of(engine: Engine, settings: ServerSettings) -> Archiver | None:
    """Build the archiver when a retention period is set; no directory or key stops the server."""
    if settings.retention_days <= 0:
        return None
    if not settings.archive_dir:
        raise ConfigurationError(
            "CHAMELEON_RETENTION_DAYS needs CHAMELEON_ARCHIVE_DIR: where the segments go"
        )
    root = DirectoryStore.for_writing(Path(settings.archive_dir)).root
    signer = load_signing_key(signing_key_path(settings.database_url, settings))
    return Archiver(
        engine,
        signer,
        root,
        settings.retention_days,
        settings.retention_interval_s,
        backoff_max_s=settings.background_backoff_max_s,
    )


def database_reachable(session_factory: sessionmaker[Session]) -> bool:
    """Tell whether one trivial query succeeds (a failure is logged in one line)."""
    try:
        with translated_errors(), session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable" to a health check
        _health_failures.failure("database health check failed", exc)
        return False
    return True
