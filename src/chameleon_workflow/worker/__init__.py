"""``chameleon worker``'s engine room: a handler run over the UOWs of one role.

It drives the HTTP API through ``chameleon_workflow.client``; see docs/workers.md.
"""

from __future__ import annotations

from chameleon_workflow.worker.handlers import Handler, Result, load_handler, result_of
from chameleon_workflow.worker.runner import Worker, WorkerOptions, WorkerStats

__all__ = [
    "Handler",
    "Result",
    "Worker",
    "WorkerOptions",
    "WorkerStats",
    "load_handler",
    "result_of",
]
