"""Chameleon: a workflow engine whose every UOW change lands in a verifiable, chained ledger."""

from __future__ import annotations

from .audit import Finding, FindingKind, VerificationReport
from .config import Settings, load_settings
from .db import make_engine, make_session_factory
from .errors import (
    AppendOnlyViolationError,
    ChameleonError,
    ConcurrencyError,
    ConfigurationError,
    DatabaseError,
    ExpressionError,
    IntegrityViolationError,
    InvalidTransitionError,
    InvalidValueError,
    InvalidWorkflowError,
    NotAuthorizedError,
    NotFoundError,
    StateDriftError,
)
from .hashing import canonical_json, content_hash
from .models import (
    Instance_Context,
    InstanceContext,
    Interaction_Logs,
    InteractionLog,
    Local_Actors,
    LocalActor,
    UnitsOfWork,
    UnitsOfWorkHistory,
    UOW_Attributes,
    UOWAttribute,
)
from .persistence import UOWPersistenceService, UOWStateTransition
from .schema import upgrade_database
from .states import UOWStatus
from .telemetry import (
    ShadowLoggerTelemetryAdapter,
    TelemetryBuffer,
    TelemetryEntry,
    TelemetryFlusher,
    get_telemetry_buffer,
    reset_telemetry_buffer,
)

__all__ = [
    "AppendOnlyViolationError",
    "ChameleonError",
    "ConcurrencyError",
    "ConfigurationError",
    "DatabaseError",
    "ExpressionError",
    "Finding",
    "FindingKind",
    "InstanceContext",
    "Instance_Context",
    "IntegrityViolationError",
    "InteractionLog",
    "Interaction_Logs",
    "InvalidTransitionError",
    "InvalidValueError",
    "InvalidWorkflowError",
    "LocalActor",
    "Local_Actors",
    "NotAuthorizedError",
    "NotFoundError",
    "Settings",
    "ShadowLoggerTelemetryAdapter",
    "StateDriftError",
    "TelemetryBuffer",
    "TelemetryEntry",
    "TelemetryFlusher",
    "UOWAttribute",
    "UOWPersistenceService",
    "UOWStateTransition",
    "UOWStatus",
    "UOW_Attributes",
    "UnitsOfWork",
    "UnitsOfWorkHistory",
    "VerificationReport",
    "canonical_json",
    "content_hash",
    "get_telemetry_buffer",
    "load_settings",
    "make_engine",
    "make_session_factory",
    "reset_telemetry_buffer",
    "upgrade_database",
]
