"""What the routes depend on: the app's services, the caller its bearer token names, raw bodies.

``create_app`` builds one ``Services`` per app and keeps it in ``app.state``; the routes
receive it, and the caller, through the ``Annotated`` aliases here (``Svc``, ``Caller``,
``Admin``, ``Reader``, ``ActorId``, ``MetricsReader``, ``RawBody``), so no route reads a header or a
token itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.server import auth
from chameleon_workflow.server.metrics import CountingBuffer, ServerMetrics
from chameleon_workflow.server.services import BackgroundServices
from chameleon_workflow.server.settings import ServerSettings

T = TypeVar("T")


# Dependencies that only look at the request or the caller are ``async def``: FastAPI runs a
# plain ``def`` dependency in its thread pool, and each such hop (a queue put, a thread
# wake-up, a wait for the GIL) cost more than the check itself. ``_principal`` reads the
# database and stays in the pool, as do the synchronous endpoints.


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the routes of one app use; built once by ``create_app``."""

    settings: ServerSettings
    session_factory: sessionmaker[Session]
    engine: WorkflowEngine
    persistence: UOWPersistenceService
    buffer: CountingBuffer
    metrics: ServerMetrics
    background: BackgroundServices

    def read(self, query: Callable[[Session], T]) -> T:
        """Run a read-only query in a short session of its own (retried on a lost connection)."""
        return self.engine.read(query)


_bearer = HTTPBearer(
    auto_error=False, description="An actor token, the admin token or the auditor token."
)


async def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


Svc = Annotated[Services, Depends(_services)]


def _principal(
    svc: Svc, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> auth.Principal:
    token = credentials.credentials if credentials is not None else None
    admin, auditor = svc.settings.admin_token, svc.settings.auditor_token
    return auth.authenticate(
        svc.session_factory,
        token,
        admin.get_secret_value() if admin else None,
        auditor.get_secret_value() if auditor else None,
    )


Caller = Annotated[auth.Principal, Depends(_principal)]


async def _admin(caller: Caller) -> auth.Principal:
    auth.require_admin(caller)
    return caller


async def _actor(caller: Caller) -> uuid.UUID:
    return auth.require_actor(caller)


async def _reader(caller: Caller) -> auth.Principal:
    auth.require_reader(caller)
    return caller


Admin = Annotated[auth.Principal, Depends(_admin)]
Reader = Annotated[auth.Principal, Depends(_reader)]
ActorId = Annotated[uuid.UUID, Depends(_actor)]


async def _metrics_reader(svc: Svc, request: Request) -> None:
    # The header is read by hand: /metrics is open unless a metrics token is configured,
    # so the OpenAPI document must not declare it as always needing one.
    wanted = svc.settings.metrics_token
    if wanted is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    admin = svc.settings.admin_token
    auth.require_metrics_token(
        token.strip() if scheme.lower() == "bearer" else None,
        wanted.get_secret_value(),
        admin.get_secret_value() if admin else None,
    )


MetricsReader = Annotated[None, Depends(_metrics_reader)]


async def _raw_body(request: Request) -> bytes:
    # The endpoint is synchronous; only reading the body needs the event loop.
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]
