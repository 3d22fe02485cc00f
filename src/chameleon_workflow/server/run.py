"""Run the HTTP API under uvicorn, with its background services (flusher, zombie sweeper).

``serve`` is what ``chameleon serve`` calls. The services start in the app's lifespan
and stop in reverse order on shutdown (SIGTERM/SIGINT): the sweeper first, so no new
telemetry is produced by it, then the flusher, which drains the buffer within
``CHAMELEON_TELEMETRY_DRAIN_DEADLINE_S``.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import Settings
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.errors import ChameleonError, ConfigurationError
from chameleon_workflow.schema import upgrade_database
from chameleon_workflow.telemetry.flusher import TelemetryFlusher

if TYPE_CHECKING:
    from chameleon_workflow.engine.service import WorkflowEngine
    from chameleon_workflow.server.metrics import CountingBuffer, ServerMetrics

log = logging.getLogger(__name__)


class ServerSettings(Settings):
    """Settings of the HTTP server on top of the common ones (``CHAMELEON_`` prefix too)."""

    model_config = SettingsConfigDict(env_prefix="CHAMELEON_", extra="ignore", frozen=True)

    admin_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    sweep_interval_s: float = Field(default=30.0, gt=0)
    telemetry_flush_size_trigger: int | None = Field(default=None, ge=1)

    @classmethod
    def of(cls, settings: Settings | None) -> ServerSettings:
        """Return server settings: as given, or the common ones completed from the environment."""
        if isinstance(settings, ServerSettings):
            return settings
        if settings is None:
            return cls()
        return cls(**settings.model_dump())


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
        self._started = False

    def start(self) -> None:
        """Start the flusher, then the sweeper."""
        self.flusher.start()
        self.sweeper.start()
        self._started = True

    def stop(self) -> int:
        """Stop the sweeper, then drain the buffer within the deadline; return entries left."""
        deadline = self.settings.telemetry_drain_deadline_s
        self.sweeper.stop(deadline)
        left = self.flusher.stop(deadline)
        if left:
            log.error("telemetry drain deadline passed with %d entries unwritten", left)
        return left

    def flusher_alive(self) -> bool:
        """Tell whether the flusher thread is running."""
        return self._started and not self.flusher.join(0)


def load_server_settings(**given: Any) -> ServerSettings:
    """Read the server settings from the environment, ``given`` values (not None) winning.

    A malformed variable or value is a ConfigurationError naming it, never a traceback.
    """
    overrides = {name: value for name, value in given.items() if value is not None}
    try:
        return ServerSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"CHAMELEON_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigurationError(f"bad configuration: {problems}") from exc


def database_reachable(session_factory: sessionmaker[Session]) -> bool:
    """Tell whether one trivial query succeeds."""
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # any failure means "not reachable" to a health check
        log.warning("database health check failed", exc_info=True)
        return False
    return True


def serve(
    host: str | None = None, port: int | None = None, settings: Settings | None = None
) -> None:
    """Migrate the database, then serve the API until SIGTERM/SIGINT (blocks)."""
    # A cycle otherwise: the app's lifespan uses this module's background services.
    import uvicorn  # noqa: PLC0415 - only the serving process needs it

    from chameleon_workflow.server.routes import create_app  # noqa: PLC0415 - see above

    config = ServerSettings.of(settings)
    db = make_engine(config.database_url, config)
    upgrade_database(db)
    if config.admin_token is None:
        generated = secrets.token_urlsafe(32)
        config = config.model_copy(update={"admin_token": SecretStr(generated)})
        # Shown once on stderr, like an actor token; set CHAMELEON_ADMIN_TOKEN to fix it.
        print(f"chameleon: generated admin token {generated}", file=sys.stderr, flush=True)
    app = create_app(config, make_session_factory(db))
    uvicorn.run(
        app,
        host=host or config.host,
        port=config.port if port is None else port,
        log_level="info",
        timeout_graceful_shutdown=int(config.telemetry_drain_deadline_s) + 1,
    )


def main(argv: list[str] | None = None) -> None:
    """Serve from the command line: ``python -m chameleon_workflow.server.run --port 8000``."""
    parser = argparse.ArgumentParser(description="Serve the Chameleon HTTP API.")
    parser.add_argument("--host", default=None, help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8000)")
    args = parser.parse_args(argv)
    try:
        serve(settings=load_server_settings(host=args.host, port=args.port))
    except ChameleonError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
