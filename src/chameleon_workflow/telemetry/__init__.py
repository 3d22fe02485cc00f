"""Telemetry: entries recorded without blocking, flushed in bulk into ``interaction_logs``."""

from chameleon_workflow.telemetry.adapter import ShadowLoggerTelemetryAdapter
from chameleon_workflow.telemetry.buffer import (
    RowWriter,
    TelemetryBuffer,
    get_telemetry_buffer,
    reset_telemetry_buffer,
)
from chameleon_workflow.telemetry.entry import IdLike, TelemetryEntry
from chameleon_workflow.telemetry.flusher import TelemetryFlusher

__all__ = [
    "IdLike",
    "RowWriter",
    "ShadowLoggerTelemetryAdapter",
    "TelemetryBuffer",
    "TelemetryEntry",
    "TelemetryFlusher",
    "get_telemetry_buffer",
    "reset_telemetry_buffer",
]
