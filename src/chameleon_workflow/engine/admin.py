"""The engine's set-up operations: instances, workflows, actors, role grants and tokens.

``WorkflowEngine`` takes them from ``AdminOperations``; each runs in one transaction and
is recorded in the admin ledger in that same transaction (``engine.setup``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from chameleon_workflow.engine import setup
from chameleon_workflow.engine.facts import KnownFacts
from chameleon_workflow.engine.limits import Limits
from chameleon_workflow.engine.txn import TxnLog
from chameleon_workflow.errors import IntegrityViolationError
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.states import ActorType
from chameleon_workflow.workflow.definition import WorkflowDefinition
from chameleon_workflow.workflow.importer import import_workflow

T = TypeVar("T")


class Writer(Protocol):
    """Runs one unit of work in a writing transaction and returns its result."""

    def __call__(self, work: Callable[[Session, TxnLog], T]) -> T:
        """Run ``work`` in one transaction."""
        ...


class AdminOperations:
    """Set-up and admin operations of ``WorkflowEngine`` (which provides what they use)."""

    _write: Writer
    _keys: KeyProvider
    _known: KnownFacts
    limits: Limits

    def read(self, query: Callable[[Session], T]) -> T:  # pragma: no cover - the engine's
        """Run a read-only query (implemented by ``WorkflowEngine``)."""
        raise NotImplementedError

    def create_instance(self, name: str, description: str | None = None) -> uuid.UUID:
        """Create an instance (an isolation container) and return its id."""
        try:
            return self._write(
                lambda session, _: setup.create_instance(session, name, description, self._keys)
            )
        except IntegrityViolationError as exc:
            # The driver's wording differs per back end; the unique name is what broke.
            raise IntegrityViolationError(f"an instance named {name!r} already exists") from exc

    def ensure_instance(self, name: str) -> uuid.UUID:
        """Return the id of the instance called ``name``, creating it if needed."""
        found = self.read(lambda session: setup.find_instance(session, name))
        return found if found is not None else self.create_instance(name)

    def import_workflow(
        self, instance_id: uuid.UUID, source: str | WorkflowDefinition
    ) -> uuid.UUID:
        """Validate a workflow (YAML text, never read as a path) and import it, all or nothing."""
        definition = setup.definition_of(source)
        return self._write(
            lambda session, _: setup.record_import(
                session, self._keys, instance_id, import_workflow(session, instance_id, definition)
            )
        )

    def register_actor(
        self,
        instance_id: uuid.UUID,
        identity_key: str,
        name: str,
        actor_type: ActorType | str,
        capabilities: Any = None,
    ) -> uuid.UUID:
        """Register a HUMAN, AI_AGENT or SYSTEM actor in an instance and return its id."""
        self.limits.check_metadata(capabilities, "capabilities")
        try:
            return self._write(
                lambda session, _: setup.add_actor(
                    session, instance_id, identity_key, name, actor_type, capabilities, self._keys
                )
            )
        except IntegrityViolationError as exc:
            raise IntegrityViolationError(
                f"instance {instance_id} already has an actor {identity_key!r}"
            ) from exc

    def assign_role(self, actor_id: uuid.UUID, role: uuid.UUID | str) -> uuid.UUID:
        """Grant an actor a role (name or id) of its instance; return the role id."""
        return self._change_role(actor_id, role, setup.grant_role)

    def revoke_role(self, actor_id: uuid.UUID, role: uuid.UUID | str) -> uuid.UUID:
        """Take a role (name or id) away from an actor at once; return the role id."""
        return self._change_role(actor_id, role, setup.withdraw_role)

    def revoke_token(self, actor_id: uuid.UUID) -> None:
        """Revoke an actor's bearer token: from the commit on, it authenticates nobody."""
        self._write(lambda session, _: setup.clear_token(session, actor_id, self._keys))

    def _change_role(
        self, actor_id: uuid.UUID, role: uuid.UUID | str, change: Callable[..., None]
    ) -> uuid.UUID:
        def work(session: Session, _: TxnLog) -> uuid.UUID:
            actor = self._known.actor(session, actor_id)
            facts = self._known.role(session, actor.instance_id, role)
            change(session, actor, facts, self._keys)
            return facts.role_id

        return self._write(work)
