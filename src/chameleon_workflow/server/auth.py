"""Bearer tokens: one per actor (stored only as a SHA-256 hash) and an admin token.

A token is shown once, when it is issued; the database keeps its hash in
``local_actors.token_hash`` (unique, so a lookup is one index probe). Hashing with plain
SHA-256 is enough here because tokens are 256 random bits, not passwords.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.admin_ledger import record_admin_event
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import NotAuthenticatedError, NotAuthorizedError, NotFoundError
from chameleon_workflow.models import LocalActor, UnitsOfWork
from chameleon_workflow.states import AdminAction

__all__ = [
    "ADMIN",
    "Principal",
    "authenticate",
    "hash_token",
    "issue_token",
    "new_token",
    "require_actor",
    "require_admin",
    "require_instance",
    "require_metrics_token",
    "require_uow_reader",
]

TOKEN_PREFIX = "chm_"  # noqa: S105 - a public prefix that makes tokens recognisable


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin, or one actor of one instance."""

    is_admin: bool
    actor_id: uuid.UUID | None = None
    instance_id: uuid.UUID | None = None


ADMIN = Principal(is_admin=True)


def new_token() -> str:
    """Return a fresh random bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session_factory: sessionmaker[Session], actor_id: uuid.UUID) -> str:
    """Give an actor a new token (replacing any old one) and return it; only its hash is kept."""
    token = new_token()
    # One UPDATE and no read first: on SQLite a transaction that reads and then writes
    # cannot wait for another writer (the checkpointer, say) and fails at once as busy.
    change = update(LocalActor).where(LocalActor.actor_id == actor_id)
    with translated_errors(), session_factory() as session:
        result = session.execute(change.values(token_hash=hash_token(token)))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFoundError(f"no actor with id {actor_id}")
        record_admin_event(session, AdminAction.TOKEN_ISSUED, subject_id=actor_id)
        session.commit()
    return token


def authenticate(
    session_factory: sessionmaker[Session], token: str | None, admin_token: str | None
) -> Principal:
    """Return the principal a bearer token names, or raise NotAuthenticatedError."""
    if not token:
        raise NotAuthenticatedError("missing bearer token")
    # Constant-time: the admin token is a fixed secret an attacker could probe byte by byte.
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return ADMIN
    if not token.startswith(TOKEN_PREFIX):
        raise NotAuthenticatedError("invalid bearer token")
    query = select(LocalActor.actor_id, LocalActor.instance_id).where(
        LocalActor.token_hash == hash_token(token)
    )
    with translated_errors(), session_factory() as session:
        row = session.execute(query).first()
    if row is None:
        raise NotAuthenticatedError("invalid bearer token")
    return Principal(is_admin=False, actor_id=row[0], instance_id=row[1])


def require_metrics_token(token: str | None, metrics_token: str, admin_token: str | None) -> None:
    """Let the metrics token or the admin token through; raise NotAuthenticatedError else."""
    if not token:
        raise NotAuthenticatedError("missing bearer token")
    given = token.encode()
    # Both comparisons always run, in constant time, so timing tells nothing.
    metrics_ok = hmac.compare_digest(given, metrics_token.encode())
    admin_ok = admin_token is not None and hmac.compare_digest(given, admin_token.encode())
    if not (metrics_ok or admin_ok):
        raise NotAuthenticatedError("invalid bearer token")


def require_admin(principal: Principal) -> None:
    """Raise NotAuthorizedError unless the caller is the admin."""
    if not principal.is_admin:
        raise NotAuthorizedError("this operation needs the admin token")


def require_actor(principal: Principal) -> uuid.UUID:
    """Return the calling actor's id; the admin holds no UOWs, so it is refused."""
    if principal.actor_id is None:
        raise NotAuthorizedError("this operation needs an actor token")
    return principal.actor_id


def require_instance(principal: Principal, instance_id: uuid.UUID) -> None:
    """Raise NotAuthorizedError unless the caller is the admin or an actor of the instance."""
    if not principal.is_admin and principal.instance_id != instance_id:
        raise NotAuthorizedError(f"actor {principal.actor_id} is not in instance {instance_id}")


def require_uow_reader(
    session_factory: sessionmaker[Session], principal: Principal, uow_id: uuid.UUID
) -> None:
    """Let the admin, or an actor of the UOW's instance, read a UOW; 404 for an unknown one."""
    with translated_errors(), session_factory() as session:
        instance_id = session.scalar(
            select(UnitsOfWork.instance_id).where(UnitsOfWork.uow_id == uow_id)
        )
    if instance_id is None:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    require_instance(principal, instance_id)
