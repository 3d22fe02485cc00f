"""Copy a validated workflow definition into an instance, and read it back for the engine.

``import_workflow`` writes the ``local_*`` rows inside the caller's transaction, under a
savepoint, so a failed import leaves nothing behind. ``load_local_workflow`` turns those
rows into frozen values (``CompiledWorkflow``) so no ORM object leaves this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from chameleon_workflow.db import translated_errors
from chameleon_workflow.definitions import objects_hash
from chameleon_workflow.errors import (
    AppendOnlyViolationError,
    CorruptWorkflowError,
    DefinitionAlteredError,
    DuplicateWorkflowError,
    IntegrityViolationError,
    InvalidWorkflowError,
    NotFoundError,
)
from chameleon_workflow.models import (
    InstanceContext,
    LocalComponent,
    LocalGuardian,
    LocalInteraction,
    LocalRole,
    LocalWorkflow,
    utcnow,
)
from chameleon_workflow.states import Direction
from chameleon_workflow.workflow.compiled import (
    CompiledComponent,
    CompiledGuardian,
    CompiledRole,
    CompiledWorkflow,
)
from chameleon_workflow.workflow.definition import (
    DecomposeSpec,
    GuardianSpec,
    OversightSpec,
    WorkflowDefinition,
)
from chameleon_workflow.workflow.rules import collect_problems

__all__ = [
    "CompiledComponent",
    "CompiledGuardian",
    "CompiledRole",
    "CompiledWorkflow",
    "find_local_workflow",
    "import_workflow",
    "load_local_workflow",
]

_Row = TypeVar("_Row", LocalRole, LocalInteraction, LocalComponent, LocalGuardian)
_GUARDIAN: TypeAdapter[GuardianSpec] = TypeAdapter(GuardianSpec)


def import_workflow(
    session: Session, instance_id: uuid.UUID, definition: WorkflowDefinition
) -> LocalWorkflow:
    """Write ``definition`` into an instance in the caller's transaction; all or nothing."""
    document = definition.to_document()
    problems = collect_problems(document, f"workflow {definition.name!r}")
    if problems:
        raise InvalidWorkflowError(problems)
    with translated_errors():
        if session.get(InstanceContext, instance_id) is None:
            raise NotFoundError(f"instance {instance_id} does not exist")
        _refuse_duplicate(session, instance_id, definition.name)
    try:
        # The savepoint rolls back first, then the driver error is translated.
        with translated_errors(), session.begin_nested():
            return _write_rows(session, instance_id, definition, document)
    except (IntegrityViolationError, AppendOnlyViolationError) as exc:
        # A concurrent import of the same name won the unique constraint (on SQLite the
        # append-only trigger that refuses a colliding insert speaks first).
        raise _duplicate(definition.name, instance_id) from exc


def _duplicate(name: str, instance_id: uuid.UUID) -> DuplicateWorkflowError:
    return DuplicateWorkflowError([f"workflow {name!r} already exists in instance {instance_id}"])


def _refuse_duplicate(session: Session, instance_id: uuid.UUID, name: str) -> None:
    query = select(LocalWorkflow.local_workflow_id).where(
        LocalWorkflow.instance_id == instance_id, LocalWorkflow.name == name
    )
    if session.execute(query).first() is not None:
        raise _duplicate(name, instance_id)


def _write_rows(
    session: Session, instance_id: uuid.UUID, wf: WorkflowDefinition, document: dict[str, Any]
) -> LocalWorkflow:
    workflow = LocalWorkflow(
        local_workflow_id=uuid.uuid4(),
        instance_id=instance_id,
        name=wf.name,
        version=wf.version,
        description=wf.description,
        definition=document,
        created_at=utcnow(),
    )
    common = {"instance_id": instance_id, "local_workflow_id": workflow.local_workflow_id}
    roles = {
        r.name: LocalRole(
            role_id=uuid.uuid4(), name=r.name, role_type=r.type, description=r.description, **common
        )
        for r in wf.roles
    }
    interactions = {
        i.name: LocalInteraction(
            interaction_id=uuid.uuid4(), name=i.name, description=i.description, **common
        )
        for i in wf.interactions
    }
    components: list[LocalComponent] = []
    guardians: list[LocalGuardian] = []
    for spec in wf.components:
        component = LocalComponent(
            component_id=uuid.uuid4(),
            role_id=roles[spec.role].role_id,
            interaction_id=interactions[spec.interaction].interaction_id,
            direction=spec.direction,
            name=spec.name,
            **common,
        )
        components.append(component)
        guardians.extend(
            LocalGuardian(
                guardian_id=uuid.uuid4(),
                component_id=component.component_id,
                name=g.name,
                guardian_type=g.guardian_type,
                config=g.config.model_dump(mode="json"),
                **common,
            )
            for g in spec.guardians
        )
    rows = [*roles.values(), *interactions.values(), *components, *guardians]
    workflow.definition_hash = objects_hash([workflow, *rows])
    # Flushed in dependency order: the models declare foreign keys but no relationships.
    for batch in ([workflow], [*roles.values(), *interactions.values()], components, guardians):
        session.add_all(batch)
        session.flush()
    return workflow


def find_local_workflow(session: Session, instance_id: uuid.UUID, name: str) -> uuid.UUID:
    """Return the id of the workflow called ``name`` in an instance."""
    query = select(LocalWorkflow.local_workflow_id).where(
        LocalWorkflow.instance_id == instance_id, LocalWorkflow.name == name
    )
    with translated_errors():
        found = session.execute(query).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"no workflow {name!r} in instance {instance_id}")
    return uuid.UUID(str(found))


def load_local_workflow(session: Session, local_workflow_id: uuid.UUID) -> CompiledWorkflow:
    """Read an imported workflow back as frozen values for the engine.

    Rows edited behind the engine's back so that they no longer make a workflow raise
    ``CorruptWorkflowError`` naming what is wrong.
    """
    with translated_errors():
        workflow = session.get(LocalWorkflow, local_workflow_id)
        if workflow is None:
            raise NotFoundError(f"workflow {local_workflow_id} does not exist")
        roles = _rows(session, LocalRole, local_workflow_id)
        interactions = _rows(session, LocalInteraction, local_workflow_id)
        components = _rows(session, LocalComponent, local_workflow_id)
        guardians = _rows(session, LocalGuardian, local_workflow_id)
    recomputed = objects_hash([workflow, *roles, *interactions, *components, *guardians])
    if recomputed != workflow.definition_hash:
        raise DefinitionAlteredError(
            f"workflow {workflow.name!r} ({local_workflow_id}) was altered after its import: "
            f"its rows hash to {recomputed}, recorded {workflow.definition_hash}"
        )
    try:
        return _compile(workflow, recomputed, roles, interactions, components, guardians)
    except CorruptWorkflowError as exc:  # a guardian, named; the workflow is named here
        raise _corrupt(workflow, exc.problems) from exc
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration, IndexError) as exc:
        raise _corrupt(workflow, [f"{type(exc).__name__}: {exc}"]) from exc


def _corrupt(workflow: LocalWorkflow, problems: list[str]) -> CorruptWorkflowError:
    where = f"stored workflow {workflow.name!r} ({workflow.local_workflow_id})"
    return CorruptWorkflowError([f"{where}: {problem}" for problem in problems])


def _compile(
    workflow: LocalWorkflow,
    definition_hash: str,
    roles: Sequence[LocalRole],
    interactions: Sequence[LocalInteraction],
    components: Sequence[LocalComponent],
    guardians: Sequence[LocalGuardian],
) -> CompiledWorkflow:
    order = _declared_order(workflow.definition)
    document = workflow.definition if isinstance(workflow.definition, dict) else {}
    decompositions = {
        r["name"]: DecomposeSpec.model_validate(r["decompose"])
        for r in document.get("roles") or ()
        if r.get("decompose") is not None
    }
    oversight = document.get("oversight")
    names = {i.interaction_id: i.name for i in interactions}
    on_component: dict[uuid.UUID, list[CompiledGuardian]] = {}
    for g in sorted(guardians, key=lambda g: order.get(g.name, 0)):
        on_component.setdefault(g.component_id, []).append(_compile_guardian(g))
    compiled = [
        CompiledComponent(
            component_id=c.component_id,
            name=c.name,
            role_id=c.role_id,
            interaction_id=c.interaction_id,
            interaction_name=names[c.interaction_id],
            direction=c.direction,
            guardians=tuple(on_component.get(c.component_id, ())),
        )
        for c in sorted(components, key=lambda c: order.get(c.name, 0))
    ]
    return CompiledWorkflow(
        local_workflow_id=workflow.local_workflow_id,
        instance_id=workflow.instance_id,
        name=workflow.name,
        version=workflow.version,
        definition_hash=definition_hash,
        roles=tuple(
            _compile_role(r, compiled, definition_hash, decompositions.get(r.name))
            for r in sorted(roles, key=lambda r: order.get(r.name, 0))
        ),
        interaction_ids=MappingProxyType({name: iid for iid, name in names.items()}),
        high_risk=OversightSpec.model_validate(oversight).high_risk if oversight else (),
    )


def _rows(session: Session, model: type[_Row], local_workflow_id: uuid.UUID) -> Sequence[_Row]:
    return session.scalars(select(model).where(model.local_workflow_id == local_workflow_id)).all()


def _declared_order(document: Any) -> dict[str, int]:
    """Map role, component and guardian names to their position in the stored definition."""
    if not isinstance(document, dict):
        return {}
    order: dict[str, int] = {}
    for section in ("roles", "components"):
        for index, item in enumerate(document.get(section) or ()):
            order.setdefault(item.get("name", ""), index)
            for g_index, guardian in enumerate(item.get("guardians") or ()):
                order.setdefault(guardian.get("name", ""), g_index)
    return order


def _compile_guardian(row: LocalGuardian) -> CompiledGuardian:
    raw = {"name": row.name, "type": str(row.guardian_type), "config": row.config or {}}
    try:
        spec = _GUARDIAN.validate_python(raw)
    except ValidationError as exc:
        raise CorruptWorkflowError(
            [
                f"guardian {row.name!r}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors()
            ]
        ) from exc
    return CompiledGuardian(row.guardian_id, row.name, row.guardian_type, spec)


def _compile_role(
    row: LocalRole,
    components: list[CompiledComponent],
    definition_hash: str,
    decompose: DecomposeSpec | None,
) -> CompiledRole:
    mine = [c for c in components if c.role_id == row.role_id]
    return CompiledRole(
        role_id=row.role_id,
        name=row.name,
        role_type=row.role_type,
        definition_hash=definition_hash,
        inbound=tuple(c for c in mine if c.direction == Direction.INBOUND),
        outbound=tuple(c for c in mine if c.direction == Direction.OUTBOUND),
        decompose=decompose,
    )
