"""A typed Python client of the Chameleon HTTP API (httpx, retries with tenacity).

It speaks HTTP only (no database, no engine), so it runs wherever a worker or an agent
runs. See docs/workers.md.
"""

from __future__ import annotations

from chameleon_workflow.client.api import TOKEN_VARIABLE, URL_VARIABLE, ChameleonClient
from chameleon_workflow.client.models import (
    UOW,
    Actor,
    ActorCreated,
    Checkpoint,
    Finding,
    Health,
    HistoryEntry,
    Instance,
    LogEntry,
    LogPage,
    Page,
    Problem,
    RoleAssigned,
    RoleRef,
    Verification,
    Workflow,
)
from chameleon_workflow.client.transport import AnswerLost, RetryPolicy

__all__ = [
    "TOKEN_VARIABLE",
    "UOW",
    "URL_VARIABLE",
    "Actor",
    "ActorCreated",
    "AnswerLost",
    "ChameleonClient",
    "Checkpoint",
    "Finding",
    "Health",
    "HistoryEntry",
    "Instance",
    "LogEntry",
    "LogPage",
    "Page",
    "Problem",
    "RetryPolicy",
    "RoleAssigned",
    "RoleRef",
    "Verification",
    "Workflow",
]
