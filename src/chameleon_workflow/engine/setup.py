"""The engine's set-up writes: instances, workflows, actors, role grants and revocations.

Each function works in the caller's session (``WorkflowEngine`` owns the transaction)
and checks what it refers to first, so an unknown id is a ``NotFoundError`` naming it,
never a foreign-key failure reported as a conflict.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from chameleon_workflow.engine.lookups import actor_role_ids
from chameleon_workflow.engine.views import ActorFacts, RoleFacts
from chameleon_workflow.errors import InvalidValueError, NotFoundError
from chameleon_workflow.models import ActorRoleAssignment, InstanceContext, LocalActor, as_uuid
from chameleon_workflow.states import ActorType
from chameleon_workflow.workflow.definition import WorkflowDefinition
from chameleon_workflow.workflow.loading import parse_workflow_text


def create_instance(session: Session, name: str, description: str | None) -> uuid.UUID:
    """Add an instance and return its id."""
    instance = InstanceContext(instance_id=uuid.uuid4(), name=name, description=description)
    session.add(instance)
    session.flush()
    return instance.instance_id


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
) -> uuid.UUID:
    """Add an actor to an existing instance and return its id."""
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
    return actor.actor_id


def grant_role(session: Session, actor: ActorFacts, role: RoleFacts) -> None:
    """Give an actor a role of its instance, unless it holds it already."""
    if role.role_id in actor_role_ids(session, actor.actor_id):
        return
    session.add(
        ActorRoleAssignment(
            instance_id=actor.instance_id, actor_id=actor.actor_id, role_id=role.role_id
        )
    )
    session.flush()


def withdraw_role(session: Session, actor: ActorFacts, role: RoleFacts) -> None:
    """Take a role away from an actor; NotFoundError when it does not hold it."""
    removed = session.execute(
        delete(ActorRoleAssignment).where(
            ActorRoleAssignment.actor_id == actor.actor_id,
            ActorRoleAssignment.role_id == role.role_id,
        )
    )
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(f"actor {actor.identity_key!r} does not hold role {role.name!r}")


def clear_token(session: Session, actor_id: uuid.UUID) -> None:
    """Forget an actor's token hash, so the token names nobody; NotFoundError if no actor."""
    changed = session.execute(
        update(LocalActor).where(LocalActor.actor_id == actor_id).values(token_hash=None)
    )
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(f"no actor with id {actor_id}")
