"""Bearer tokens: one per actor (stored only as a SHA-256 hash), an admin and an auditor token.

The admin token may do everything; the auditor token may read everything and write
nothing; an actor token reads and works in its own instance only. A refusal never names
anything of another instance.

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
    "AUDITOR",
    "Principal",
    "authenticate",
    "hash_token",
    "issue_token",
    "new_token",
    "require_actor",
    "require_admin",
    "require_instance",
    "require_instance_reader",
    "require_metrics_token",
    "require_reader",
    "require_uow_reader",
    "require_writer",
    "scope_of",
]

TOKEN_PREFIX = "chm_"  # noqa: S105 - a public prefix that makes tokens recognisable


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin, the auditor (read-only), or one actor of one instance."""

    is_admin: bool
    actor_id: uuid.UUID | None = None
    instance_id: uuid.UUID | None = None
    is_auditor: bool = False

    @property
    def reads_everything(self) -> bool:
        """Tell whether the caller may read every instance (the admin or the auditor)."""
        return self.is_admin or self.is_auditor


ADMIN = Principal(is_admin=True)
AUDITOR = Principal(is_admin=False, is_auditor=True)
READ_ONLY = "the auditor token is read-only"


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
    session_factory: sessionmaker[Session],
    token: str | None,
    admin_token: str | None,
    auditor_token: str | None = None,
) -> Principal:
    """Return the principal a bearer token names, or raise NotAuthenticatedError."""
    if not token:
        raise NotAuthenticatedError("missing bearer token")
    # Constant-time: fixed secrets an attacker could otherwise probe byte by byte.
    given = token.encode()
    is_admin = admin_token is not None and hmac.compare_digest(given, admin_token.encode())
    is_auditor = auditor_token is not None and hmac.compare_digest(given, auditor_token.encode())
    if is_admin:
        return ADMIN
    if is_auditor:
        return AUDITOR
    if not token.startswith(TOKEN_PREFIX):
        raise NotAuthenticatedError("invalid bearer token")
    query = select(LocalActor.actor_id, LocalActor.instance_id).where(
        LocalActor.token_hash == hash_token(token)
    )
    # A Core connection, not a Session: this runs before every actor request, and the
    # Session's own setup and teardown cost more than the indexed lookup.
    with translated_errors(), session_factory.kw["bind"].connect() as conn:
        row = conn.execute(query).first()
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
        suffix = f" ({READ_ONLY})" if principal.is_auditor else ""
        raise NotAuthorizedError(f"this operation needs the admin token{suffix}")


def require_reader(principal: Principal) -> None:
    """Raise NotAuthorizedError unless the caller is the admin or the auditor."""
    if not principal.reads_everything:
        raise NotAuthorizedError("this operation needs the admin token or the auditor token")


def require_actor(principal: Principal) -> uuid.UUID:
    """Return the calling actor's id; the admin and the auditor hold no UOWs, so are refused."""
    if principal.actor_id is None:
        raise NotAuthorizedError("this operation needs an actor token")
    return principal.actor_id


def require_writer(principal: Principal) -> None:
    """Refuse the auditor, whose token is read-only."""
    if principal.is_auditor:
        raise NotAuthorizedError(READ_ONLY)


def require_instance(principal: Principal, instance_id: uuid.UUID) -> None:
    """Let the admin, or an actor of the instance, write in it (never the auditor)."""
    require_writer(principal)
    if not principal.is_admin and principal.instance_id != instance_id:
        raise NotAuthorizedError("an actor acts only in its own instance")


def require_instance_reader(principal: Principal, instance_id: uuid.UUID, what: str) -> None:
    """Let the admin, the auditor or an actor of the instance read ``what`` of it."""
    if not principal.reads_everything and principal.instance_id != instance_id:
        raise NotAuthorizedError(f"{what} belongs to another instance")


def scope_of(principal: Principal) -> uuid.UUID | None:
    """Return the one instance a caller may list, or None when it may list them all."""
    return None if principal.reads_everything else principal.instance_id


def require_uow_reader(
    session_factory: sessionmaker[Session], principal: Principal, uow_id: uuid.UUID
) -> None:
    """Let the admin, the auditor or an actor of the UOW's instance read it; 404 if unknown."""
    with translated_errors(), session_factory() as session:
        instance_id = session.scalar(
            select(UnitsOfWork.instance_id).where(UnitsOfWork.uow_id == uow_id)
        )
    if instance_id is None:
        raise NotFoundError(f"no unit of work with id {uow_id}")
    require_instance_reader(principal, instance_id, f"UOW {uow_id}")
