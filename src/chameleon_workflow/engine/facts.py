"""What the engine has looked up once and need not query again.

Actors and roles never change once written, and workflow definitions (and the name a
workflow has in its instance) never change once imported, so each is read from the
database once per engine and kept. Role grants are not kept: a revoked role must stop
working at once, in every process. A transaction that
rolls back leaves nothing wrong here: only facts already committed are ever read.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from chameleon_workflow.engine.lookups import find_role, get_actor, require_role
from chameleon_workflow.engine.views import ActorFacts, RoleFacts
from chameleon_workflow.workflow.importer import (
    CompiledWorkflow,
    find_local_workflow,
    load_local_workflow,
)


class KnownFacts:
    """Actors, roles and compiled workflows, each looked up at most once."""

    def __init__(self) -> None:
        """Start knowing nothing."""
        self._actors: dict[uuid.UUID | str, ActorFacts] = {}
        self._roles: dict[tuple[uuid.UUID, uuid.UUID | str], RoleFacts] = {}
        self._workflows: dict[uuid.UUID, CompiledWorkflow] = {}
        self._workflow_ids: dict[tuple[uuid.UUID, str], uuid.UUID] = {}

    def actor(self, session: Session, actor_id: uuid.UUID | str) -> ActorFacts:
        """Return an actor's facts (NotFoundError for an unknown id)."""
        facts = self._actors.get(actor_id)
        if facts is None:
            facts = get_actor(session, actor_id)
            self._actors[actor_id] = facts
        return facts

    def role(self, session: Session, instance_id: uuid.UUID, role: uuid.UUID | str) -> RoleFacts:
        """Return the facts of a role (name or id) of an instance."""
        facts = self._roles.get((instance_id, role))
        if facts is None:
            facts = find_role(session, instance_id, role)
            self._roles[instance_id, role] = facts
        return facts

    def require_role(
        self, session: Session, actor: ActorFacts, role_id: uuid.UUID, name: str
    ) -> None:
        """Raise NotAuthorizedError unless the actor holds the role (asked every time)."""
        require_role(session, actor, role_id, name)

    def workflow_id(self, session: Session, instance_id: uuid.UUID, name: str) -> uuid.UUID:
        """Return the id of the workflow called ``name`` in an instance.

        A name is unique in its instance and a workflow is never renamed or removed.
        """
        found = self._workflow_ids.get((instance_id, name))
        if found is None:
            found = find_local_workflow(session, instance_id, name)
            self._workflow_ids[instance_id, name] = found
        return found

    def workflow(self, session: Session, workflow_id: uuid.UUID) -> CompiledWorkflow:
        """Return an imported workflow, compiled."""
        compiled = self._workflows.get(workflow_id)
        if compiled is None:
            compiled = load_local_workflow(session, workflow_id)
            self._workflows[workflow_id] = compiled
        return compiled
