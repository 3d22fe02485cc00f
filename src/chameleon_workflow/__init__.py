"""Chameleon: a workflow engine whose every UOW change lands in a verifiable, chained ledger."""

from __future__ import annotations

from chameleon_workflow.audit.report import Finding, FindingKind, VerificationReport
from chameleon_workflow.config import Settings, load_settings
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.demo import DemoSummary, run_demo
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.engine.views import SweepResult, UOWView
from chameleon_workflow.errors import (
    AppendOnlyViolationError,
    ChameleonError,
    ConcurrencyError,
    ConfigurationError,
    CorruptWorkflowError,
    DatabaseError,
    DatabaseUnavailableError,
    DuplicateWorkflowError,
    ExpressionError,
    IntegrityViolationError,
    InvalidTransitionError,
    InvalidValueError,
    InvalidWorkflowError,
    LimitExceededError,
    MalformedRequestError,
    NotAuthenticatedError,
    NotAuthorizedError,
    NotFoundError,
    StateDriftError,
)
from chameleon_workflow.hashing import canonical_json, content_hash
from chameleon_workflow.ledger.rotation import provision_keys
from chameleon_workflow.ledger.service import UOWPersistenceService, UOWStateTransition
from chameleon_workflow.models import (
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
from chameleon_workflow.schema import upgrade_database
from chameleon_workflow.states import UOWStatus
from chameleon_workflow.telemetry.adapter import ShadowLoggerTelemetryAdapter
from chameleon_workflow.telemetry.buffer import (
    TelemetryBuffer,
    get_telemetry_buffer,
    reset_telemetry_buffer,
)
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.flusher import TelemetryFlusher
from chameleon_workflow.workflow.definition import WorkflowDefinition
from chameleon_workflow.workflow.loading import load_workflow, parse_workflow, parse_workflow_text

__all__ = [
    "AppendOnlyViolationError",
    "ChameleonError",
    "ConcurrencyError",
    "ConfigurationError",
    "CorruptWorkflowError",
    "DatabaseError",
    "DatabaseUnavailableError",
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
    "LimitExceededError",
    "LocalActor",
    "Local_Actors",
    "MalformedRequestError",
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
    "provision_keys",
    "reset_telemetry_buffer",
    "run_demo",
    "upgrade_database",
]
