"""Prometheus metrics of a server process: transitions, telemetry, flushes, audits, zombies.

Every app gets its own registry, so two apps in one process (tests) never collide. Every
counter is kept in memory by this process, so a scrape reads no table: transitions are
counted as the engine hands their STATE_TRANSITION entries to the telemetry buffer (once
committed, whether or not the buffer has room), and the background services report their
failed iterations themselves.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from chameleon_workflow.audit.report import VerificationReport
from chameleon_workflow.background import ServiceHealth
from chameleon_workflow.states import LogType
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.streams import Streams
from chameleon_workflow.telemetry.writers import write_entries

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class CountingBuffer(TelemetryBuffer):
    """A telemetry buffer that also counts entries recorded and flushed, by log type."""

    def __init__(self, batch_size: int = 1000, max_queue_size: int = 10000) -> None:
        super().__init__(batch_size, max_queue_size, writer=self._write_counted)
        self.recorded_by_type: Tally[str] = Tally()
        #: Committed status changes by new status, counted even when the buffer is full.
        self.transitions_by_status: Tally[str] = Tally()
        self.flushed_by_type: Tally[str] = Tally()
        #: Called with the duration of every flush that committed rows.
        self.on_flush: Callable[[float], None] | None = None
        self._tally_lock = threading.Lock()
        self._flushing = threading.Lock()
        self._in_flight: Tally[str] = Tally()

    def record(self, entry: TelemetryEntry) -> bool:
        """Enqueue like the base buffer, counting accepted entries by type."""
        accepted = super().record(entry)
        transition = entry.log_type == LogType.STATE_TRANSITION
        if accepted or transition:
            with self._tally_lock:
                if accepted:
                    self.recorded_by_type[entry.log_type] += 1
                if transition and isinstance(entry.event_details, dict):
                    self.transitions_by_status[str(entry.event_details.get("to"))] += 1
        return accepted

    def tallies(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Return copies of the recorded, flushed and transition counts, taken together."""
        with self._tally_lock:
            return (
                dict(self.recorded_by_type),
                dict(self.flushed_by_type),
                dict(self.transitions_by_status),
            )

    def _write_counted(
        self, session: Session, entries: Sequence[TelemetryEntry], streams: Streams
    ) -> None:
        write_entries(session, entries, streams)
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

    def __init__(self, buffer: CountingBuffer) -> None:
        """Register every family over ``buffer``; background services join with ``watch``."""
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

    def watch(self, services: Callable[[], Iterable[ServiceHealth]]) -> None:
        """Export the failed iterations and the state of the services ``services`` reports."""
        self.registry.register(_ServicesCollector(services))

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
        recorded, flushed, transitions = self.buffer.tallies()
        yield _by_type("chameleon_telemetry_recorded", "Entries accepted.", recorded)
        dropped = dict(self.buffer.dropped_by_type)  # replaced, never changed in place
        yield _by_type("chameleon_telemetry_dropped", "Entries refused (full).", dropped)
        yield _by_type("chameleon_telemetry_flushed", "Rows committed.", flushed)
        family = CounterMetricFamily(
            "chameleon_transitions",
            "Status transitions this process committed, by new status.",
            labels=["status"],
        )
        for status, count in sorted(transitions.items()):
            family.add_metric([status], count)
        yield family


class _ServicesCollector(Collector):
    """Failed iterations and liveness of the background services, read at scrape time."""

    def __init__(self, services: Callable[[], Iterable[ServiceHealth]]) -> None:
        self.services = services

    def collect(self) -> Iterable[Metric]:
        failed = CounterMetricFamily(
            "chameleon_background_iterations_failed",
            "Iterations of a background service that failed (each is retried).",
            labels=["service"],
        )
        up = GaugeMetricFamily(
            "chameleon_background_service_up",
            "1 while a background service runs and its last iteration succeeded, else 0.",
            labels=["service"],
        )
        for health in self.services():
            failed.add_metric([health.name], health.failures_total)
            up.add_metric([health.name], 1.0 if health.ok else 0.0)
        yield failed
        yield up


def _by_type(name: str, documentation: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["type"])
    for kind, count in sorted(counts.items()):
        family.add_metric([kind], count)
    return family
