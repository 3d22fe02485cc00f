"""The engine's set-up writes: instances, workflows, actors, role grants and revocations.

Each one is recorded in the admin ledger in the same transaction (``admin_ledger``).

Each function works in the caller's session (``WorkflowEngine`` owns the transaction)
and checks what it refers to first, so an unknown id is a ``NotFoundError`` naming it,
never a foreign-key failure reported as a conflict.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from chameleon_workflow.admin_ledger import ACTOR, record_admin_event
from chameleon_workflow.engine.lookups import actor_role_ids
from chameleon_workflow.engine.views import ActorFacts, RoleFacts
from chameleon_workflow.errors import InvalidValueError, NotFoundError
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import (
    ActorRoleAssignment,
    InstanceContext,
    LocalActor,
    LocalWorkflow,
    UnitsOfWork,
    as_uuid,
)
from chameleon_workflow.states import ActorType, AdminAction
from chameleon_workflow.workflow.definition import WorkflowDefinition
from chameleon_workflow.workflow.loading import parse_workflow_text


def create_instance(
    session: Session, name: str, description: str | None, keys: KeyProvider
) -> uuid.UUID:
    """Add an instance, recorded in the admin ledger, and return its id."""
    instance = InstanceContext(instance_id=uuid.uuid4(), name=name, description=description)
    session.add(instance)
    session.flush()
    record_admin_event(
        session,
        AdminAction.INSTANCE_CREATED,
        instance_id=instance.instance_id,
        subject_id=instance.instance_id,
        details={"name": name},
        keys=keys,
    )
    return instance.instance_id


def record_import(
    session: Session, keys: KeyProvider, instance_id: uuid.UUID, workflow: LocalWorkflow
) -> uuid.UUID:
    """Record an imported workflow version in the admin ledger; return the workflow's id."""
    record_admin_event(
        session,
        AdminAction.WORKFLOW_IMPORTED,
        instance_id=instance_id,
        subject_id=workflow.local_workflow_id,
        details={
            "name": workflow.name,
            "version": workflow.version,
            "definition_hash": workflow.definition_hash,
        },
        keys=keys,
    )
    return workflow.local_workflow_id


def find_instance(session: Session, name: str) -> uuid.UUID | None:
    """Return the id of the instance called ``name``, if there is one."""
    query = select(InstanceContext.instance_id).where(InstanceContext.name == name)
    return session.scalars(query).first()


def require_instance(session: Session, instance_id: uuid.UUID) -> None:
    """Raise NotFoundError unless the instance exists."""
    if session.get(InstanceContext, as_uuid(instance_id, "instance id")) is None:
        raise NotFoundError(f"instance {instance_id} does not exist")


def definition_of(source: str | WorkflowDefinition) -> WorkflowDefinition:
    """Return a validated definition: as given, or parsed from YAML text (never a file path)."""
    if isinstance(source, WorkflowDefinition):
        return source
    if not isinstance(source, str):
        raise InvalidValueError(
            f"a workflow is YAML text or a WorkflowDefinition, not {type(source).__name__}; "
            "read a file with chameleon_workflow.workflow.definition.load_workflow"
        )
    return parse_workflow_text(source)


def add_actor(
    session: Session,
    instance_id: uuid.UUID,
    identity_key: str,
    name: str,
    actor_type: ActorType | str,
    capabilities: Any,
    keys: KeyProvider,
) -> uuid.UUID:
    """Add an actor to an existing instance (recorded in the admin ledger); return its id."""
    try:
        kind = ActorType(actor_type)
    except ValueError:
        raise InvalidValueError(f"unknown actor type {actor_type!r}") from None
    require_instance(session, instance_id)
    actor = LocalActor(
        actor_id=uuid.uuid4(),
        instance_id=instance_id,
        identity_key=identity_key,
        name=name,
        actor_type=kind,
        capabilities=capabilities,
    )
    session.add(actor)
    session.flush()
    record_admin_event(
        session,
        AdminAction.ACTOR_REGISTERED,
        instance_id=instance_id,
        subject_id=actor.actor_id,
        details={"identity_key": identity_key, "name": name, "actor_type": str(kind)},
        keys=keys,
    )
    return actor.actor_id


def grant_role(session: Session, actor: ActorFacts, role: RoleFacts, keys: KeyProvider) -> None:
    """Give an actor a role of its instance, unless it holds it already (a grant is recorded)."""
    if role.role_id in actor_role_ids(session, actor.actor_id):
        return
    session.add(
        ActorRoleAssignment(
            instance_id=actor.instance_id, actor_id=actor.actor_id, role_id=role.role_id
        )
    )
    session.flush()
    record_admin_event(
        session,
        AdminAction.ROLE_GRANTED,
        instance_id=actor.instance_id,
        subject_id=actor.actor_id,
        details={"role_id": str(role.role_id), "role": role.name},
        keys=keys,
    )


def record_remediation(
    session: Session,
    keys: KeyProvider,
    actor: ActorFacts,
    uow: UnitsOfWork,
    moved: dict[str, str | None],
) -> None:
    """Record a remediation (an EPSILON actor sending a failed UOW back) in the admin ledger."""
    record_admin_event(
        session,
        AdminAction.UOW_REMEDIATED,
        principal=ACTOR,
        actor_id=actor.actor_id,
        instance_id=uow.instance_id,
        subject_id=uow.uow_id,
        details=moved,
        keys=keys,
    )


def withdraw_role(session: Session, actor: ActorFacts, role: RoleFacts, keys: KeyProvider) -> None:
    """Take a role away from an actor (recorded); NotFoundError when it does not hold it."""
    removed = session.execute(
        delete(ActorRoleAssignment).where(
            ActorRoleAssignment.actor_id == actor.actor_id,
            ActorRoleAssignment.role_id == role.role_id,
        )
    )
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(f"actor {actor.identity_key!r} does not hold role {role.name!r}")
    record_admin_event(
        session,
        AdminAction.ROLE_REVOKED,
        instance_id=actor.instance_id,
        subject_id=actor.actor_id,
        details={"role_id": str(role.role_id), "role": role.name},
        keys=keys,
    )


def clear_token(session: Session, actor_id: uuid.UUID, keys: KeyProvider) -> None:
    """Forget an actor's token hash (recorded), so the token names nobody; 404 if no actor."""
    changed = session.execute(
        update(LocalActor).where(LocalActor.actor_id == actor_id).values(token_hash=None)
    )
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(f"no actor with id {actor_id}")
    record_admin_event(session, AdminAction.TOKEN_REVOKED, subject_id=actor_id, keys=keys)


def record_switch(
    session: Session,
    persistence: UOWPersistenceService,
    pilot: ActorFacts,
    instance_id: uuid.UUID,
    reasoning: str,
    moved: int,
    *,
    pause: bool,
) -> None:
    """Record a pilot pausing or resuming an instance in the admin ledger.

    The instance's status is a plain column; this row is what the ledger keeps of it (the
    UOWs it parked or let go carry PAUSE or RESUME history rows of their own).
    """
    bind = session.get_bind()
    record_admin_event(
        session,
        AdminAction.INSTANCE_PAUSED if pause else AdminAction.INSTANCE_RESUMED,
        principal=ACTOR,
        actor_id=pilot.actor_id,
        instance_id=instance_id,
        subject_id=instance_id,
        details={"reasoning": reasoning, "uows": moved},
        keys=persistence.ledger_keys(bind if isinstance(bind, Engine) else bind.engine),
    )
