"""Chameleon: a workflow engine whose every UOW change lands in a verifiable, chained ledger."""

from __future__ import annotations

from .audit import Finding, FindingKind, VerificationReport
from .config import Settings, load_settings
from .db import make_engine, make_session_factory
from .demo import DemoSummary, run_demo
from .engine import SweepResult, UOWView, WorkflowEngine
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
    NotAuthenticatedError,
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
from .workflow import WorkflowDefinition, load_workflow, parse_workflow, parse_workflow_text
from .workflow_import import DuplicateWorkflowError

__all__ = [
    "AppendOnlyViolationError",
    "ChameleonError",
    "ConcurrencyError",
    "ConfigurationError",
    "DatabaseError",
    "DemoSummary",
    "DuplicateWorkflowError",
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
    "NotAuthenticatedError",
    "NotAuthorizedError",
    "NotFoundError",
    "Settings",
    "ShadowLoggerTelemetryAdapter",
    "StateDriftError",
    "SweepResult",
    "TelemetryBuffer",
    "TelemetryEntry",
    "TelemetryFlusher",
    "UOWAttribute",
    "UOWPersistenceService",
    "UOWStateTransition",
    "UOWStatus",
    "UOWView",
    "UOW_Attributes",
    "UnitsOfWork",
    "UnitsOfWorkHistory",
    "VerificationReport",
    "WorkflowDefinition",
    "WorkflowEngine",
    "canonical_json",
    "content_hash",
    "get_telemetry_buffer",
    "load_settings",
    "load_workflow",
    "make_engine",
    "make_session_factory",
    "parse_workflow",
    "parse_workflow_text",
    "reset_telemetry_buffer",
    "run_demo",
    "upgrade_database",
]
