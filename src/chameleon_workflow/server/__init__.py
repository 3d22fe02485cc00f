"""The HTTP server: FastAPI routes over the engine, bearer tokens, metrics and health.

``run.serve`` (``chameleon serve``, ``python -m chameleon_workflow.server``) migrates the
database and runs the app ``app.create_app`` builds. Its ``routes`` take their services
and caller from ``dependencies``, speak the bodies of ``schemas``, and fail with the
problem documents of ``problems``; the flusher and zombie sweeper of ``services`` run
beside them, configured by ``settings``.
"""

from chameleon_workflow.server.app import build_services, create_app
from chameleon_workflow.server.auth import Principal
from chameleon_workflow.server.dependencies import Services
from chameleon_workflow.server.metrics import CountingBuffer, ServerMetrics
from chameleon_workflow.server.problems import ERROR_STATUS, Problem, problem_of
from chameleon_workflow.server.run import main, serve
from chameleon_workflow.server.services import (
    BackgroundServices,
    ZombieSweeper,
    database_reachable,
)
from chameleon_workflow.server.settings import ServerSettings, load_server_settings

__all__ = [
    "ERROR_STATUS",
    "BackgroundServices",
    "CountingBuffer",
    "Principal",
    "Problem",
    "ServerMetrics",
    "ServerSettings",
    "Services",
    "ZombieSweeper",
    "build_services",
    "create_app",
    "database_reachable",
    "load_server_settings",
    "main",
    "problem_of",
    "serve",
]
