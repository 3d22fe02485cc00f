"""Prometheus metrics of a server process: transitions, telemetry, flushes, audits, zombies.

Every app gets its own registry, so two apps in one process (tests) never collide.
Transitions are read from the ledger at scrape time: ``uow_history`` is append-only, so
a count per status is a true counter, exact across processes and restarts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.audit.report import VerificationReport
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import ChameleonError
from chameleon_workflow.models import UnitsOfWorkHistory
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.writers import write_entries

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class CountingBuffer(TelemetryBuffer):
    """A telemetry buffer that also counts entries recorded and flushed, by log type."""

    def __init__(self, batch_size: int = 1000, max_queue_size: int = 10000) -> None:
        super().__init__(batch_size, max_queue_size, writer=self._write_counted)
        self.recorded_by_type: Tally[str] = Tally()
        self.flushed_by_type: Tally[str] = Tally()
        #: Called with the duration of every flush that committed rows.
        self.on_flush: Callable[[float], None] | None = None
        self._tally_lock = threading.Lock()
        self._flushing = threading.Lock()
        self._in_flight: Tally[str] = Tally()

    def record(self, entry: TelemetryEntry) -> bool:
        """Enqueue like the base buffer, counting accepted entries by type."""
        accepted = super().record(entry)
        if accepted:
            with self._tally_lock:
                self.recorded_by_type[entry.log_type] += 1
        return accepted

    def _write_counted(self, session: Session, entries: Sequence[TelemetryEntry]) -> None:
        write_entries(session, entries)
        self._in_flight = Tally(e.log_type for e in entries)

    def flush(self, session: Session, max_entries: int | None = None) -> int:
        """Flush like the base buffer; count by type only what was committed."""
        with self._flushing:
            self._in_flight = Tally()
            started = time.perf_counter()
            written = super().flush(session, max_entries)  # raises before counting on failure
            if self._in_flight:
                with self._tally_lock:
                    self.flushed_by_type.update(self._in_flight)
                if self.on_flush is not None:
                    self.on_flush(time.perf_counter() - started)
            return written


class ServerMetrics:
    """The server's metric families in one registry, rendered in Prometheus text format."""

    def __init__(self, buffer: CountingBuffer, session_factory: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.buffer = buffer
        r = self.registry
        self.findings = Counter(
            "chameleon_verification_findings",
            "Findings reported by verification requests, by kind.",
            ["kind"],
            registry=r,
        )
        self.verifications = Counter(
            "chameleon_verifications", "Verification requests answered.", registry=r
        )
        self.zombies = Counter(
            "chameleon_zombies_reclaimed",
            "Stale UOWs the sweeper took from their holders, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.flush_latency = Histogram(
            "chameleon_telemetry_flush_seconds",
            "Duration of telemetry flushes that wrote rows.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        buffer.on_flush = self.flush_latency.observe
        fill = Gauge(
            "chameleon_telemetry_buffer_fill_ratio",
            "Pending telemetry entries as a fraction of the buffer's capacity.",
            registry=r,
        )
        fill.set_function(lambda: buffer.get_pending_count() / buffer.max_queue_size)
        pending = Gauge(
            "chameleon_telemetry_buffer_pending", "Telemetry entries waiting.", registry=r
        )
        pending.set_function(lambda: float(buffer.get_pending_count()))
        r.register(_BufferCollector(buffer))
        r.register(_LedgerCollector(session_factory))

    def record_verification(self, report: VerificationReport) -> None:
        """Count one verification and its findings."""
        self.verifications.inc()
        for finding in report.findings:
            self.findings.labels(kind=str(finding.kind)).inc()

    def record_sweep(self, requeued: int, dead: int) -> None:
        """Count UOWs one zombie sweep reclaimed."""
        self.zombies.labels(outcome="requeued").inc(requeued)
        self.zombies.labels(outcome="dead").inc(dead)

    def render(self) -> bytes:
        """Return every metric in the Prometheus text exposition format."""
        return generate_latest(self.registry)


class _BufferCollector(Collector):
    """Telemetry counters read from the buffer at scrape time."""

    def __init__(self, buffer: CountingBuffer) -> None:
        self.buffer = buffer

    def collect(self) -> Iterable[Metric]:
        buf = self.buffer
        yield _by_type(
            "chameleon_telemetry_recorded", "Entries accepted.", dict(buf.recorded_by_type)
        )
        yield _by_type(
            "chameleon_telemetry_dropped", "Entries refused (full).", dict(buf.dropped_by_type)
        )
        yield _by_type("chameleon_telemetry_flushed", "Rows committed.", dict(buf.flushed_by_type))


class _LedgerCollector(Collector):
    """Transitions by new status, counted in the append-only ledger at scrape time."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "chameleon_transitions",
            "Status transitions in the ledger, by new status.",
            labels=["status"],
        )
        for status, count in self._counts():
            family.add_metric([status], count)
        yield family

    def _counts(self) -> list[tuple[str, int]]:
        table = UnitsOfWorkHistory
        query = select(table.new_status, func.count()).group_by(table.new_status)
        try:
            with self.session_factory() as session, translated_errors():
                return [(str(status), int(n)) for status, n in session.execute(query)]
        except ChameleonError:
            return []  # an unreachable database shows in /health; a scrape still answers


def _by_type(name: str, documentation: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["type"])
    for kind, count in sorted(counts.items()):
        family.add_metric([kind], count)
    return family
