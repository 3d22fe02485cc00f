"""Importing workflow definitions into an instance, on both back ends."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chameleon_workflow.errors import DuplicateWorkflowError, NotFoundError
from chameleon_workflow.models import (
    InstanceContext,
    LocalComponent,
    LocalGuardian,
    LocalInteraction,
    LocalRole,
    LocalWorkflow,
)
from chameleon_workflow.states import Direction, GuardianType, RoleType
from chameleon_workflow.workflow import importer as workflow_import
from chameleon_workflow.workflow.importer import (
    find_local_workflow,
    import_workflow,
    load_local_workflow,
)
from chameleon_workflow.workflow.loading import load_workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "chameleon_workflow" / "examples"
TABLES = (LocalWorkflow, LocalRole, LocalInteraction, LocalComponent, LocalGuardian)


def _instance(session: Session, name: str = "acme") -> uuid.UUID:
    instance = InstanceContext(instance_id=uuid.uuid4(), name=name)
    session.add(instance)
    session.flush()
    return instance.instance_id


def _counts(session: Session) -> list[int]:
    return [session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES]


def test_import_writes_every_definition_row(session: Session) -> None:
    """Importing the invoice workflow writes one row per definition item."""
    instance_id = _instance(session)
    workflow = import_workflow(
        session, instance_id, load_workflow(EXAMPLES / "invoice_approval.yaml")
    )
    session.commit()
    assert _counts(session) == [1, 6, 4, 9, 4]
    stored = session.get(LocalWorkflow, workflow.local_workflow_id)
    assert stored is not None
    assert (stored.name, stored.version, stored.instance_id) == (
        "invoice_approval",
        "1",
        instance_id,
    )
    assert [r["name"] for r in stored.definition["roles"]] == [
        "intake", "triage", "manual_review", "approval", "remediation", "reaper",
    ]  # fmt: skip
    guardians = session.scalars(select(LocalGuardian).order_by(LocalGuardian.name)).all()
    assert [(g.name, g.guardian_type) for g in guardians] == [
        ("amount_router", GuardianType.DIRECTIONAL_FILTER),
        ("final_check", GuardianType.CERBERUS),
        ("fresh_invoice", GuardianType.TTL_CHECK),
        ("review_gate", GuardianType.PASS_THRU),
    ]
    router = next(g for g in guardians if g.name == "amount_router")
    assert router.config == {
        "branches": [{"condition": "amount > 10000", "next_interaction": "needs_review"}],
        "default": "ready_for_approval",
        "on_error": "needs_review",
    }


def test_load_local_workflow_compiles_roles_and_routes(session: Session) -> None:
    """The compiled workflow exposes ALPHA's exit, EPSILON/OMEGA inbound and each role's routes."""
    instance_id = _instance(session)
    row = import_workflow(session, instance_id, load_workflow(EXAMPLES / "invoice_approval.yaml"))
    session.commit()
    compiled = load_local_workflow(session, row.local_workflow_id)
    ids = compiled.interaction_ids
    assert sorted(ids) == ["failed", "needs_review", "ready_for_approval", "submitted"]
    assert compiled.alpha_exit_interaction_id == ids["submitted"]
    assert compiled.epsilon_inbound_interaction_id == ids["failed"]
    assert compiled.omega_inbound_interaction_ids == (ids["ready_for_approval"],)
    triage = compiled.role("triage")
    assert triage.role_type == RoleType.BETA
    assert triage.inbound_interaction_ids == (ids["submitted"],)
    assert dict(triage.outbound_by_name) == {
        "needs_review": ids["needs_review"],
        "ready_for_approval": ids["ready_for_approval"],
    }
    policy = triage.routing_policy
    assert policy is not None
    assert policy.policy is not None
    assert (policy.name, policy.policy.default, policy.policy.on_error) == (
        "amount_router", "ready_for_approval", "needs_review",
    )  # fmt: skip
    gate = compiled.role("triage").inbound_component(ids["submitted"])
    assert gate is not None
    assert [(g.name, g.guardian_type) for g in gate.gates] == [
        ("fresh_invoice", GuardianType.TTL_CHECK)
    ]
    assert [r.name for r in compiled.consumers(ids["ready_for_approval"])] == ["approval"]
    assert compiled.role_by_id(triage.role_id).name == "triage"
    assert compiled.role_of_type(RoleType.TAU).name == "reaper"
    assert compiled.interaction_name(ids["failed"]) == "failed"
    assert find_local_workflow(session, instance_id, "invoice_approval") == row.local_workflow_id
    assert compiled.role("approval").inbound[0].direction == Direction.INBOUND


def test_duplicate_workflow_name_is_refused_and_writes_nothing(session: Session) -> None:
    """A second import of the same name in one instance raises and leaves the first intact."""
    instance_id = _instance(session)
    definition = load_workflow(EXAMPLES / "minimal.yaml")
    import_workflow(session, instance_id, definition)
    session.commit()
    before = _counts(session)
    with pytest.raises(DuplicateWorkflowError) as info:
        import_workflow(session, instance_id, definition)
    assert info.value.problems == [f"workflow 'minimal' already exists in instance {instance_id}"]
    session.commit()
    assert _counts(session) == before == [1, 4, 2, 3, 1]


def test_same_name_in_another_instance_is_allowed(session: Session) -> None:
    """Workflow names are unique per instance, not globally."""
    definition = load_workflow(EXAMPLES / "minimal.yaml")
    import_workflow(session, _instance(session, "one"), definition)
    import_workflow(session, _instance(session, "two"), definition)
    session.commit()
    assert _counts(session)[0] == 2


def test_unknown_instance_is_refused_and_writes_nothing(session: Session) -> None:
    """Importing into an instance that does not exist raises NotFoundError."""
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError, match=f"instance {missing} does not exist"):
        import_workflow(session, missing, load_workflow(EXAMPLES / "minimal.yaml"))
    assert _counts(session) == [0, 0, 0, 0, 0]


def test_failed_import_leaves_callers_other_work_in_place(session: Session) -> None:
    """A refused import rolls back only itself, not the caller's earlier changes."""
    instance_id = _instance(session)
    definition = load_workflow(EXAMPLES / "minimal.yaml")
    import_workflow(session, instance_id, definition)
    with pytest.raises(DuplicateWorkflowError):
        import_workflow(session, instance_id, definition)
    session.commit()
    assert _counts(session) == [1, 4, 2, 3, 1]


def test_load_unknown_workflow_raises(session: Session) -> None:
    """Loading a workflow id that does not exist raises NotFoundError."""
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError, match=f"workflow {missing} does not exist"):
        load_local_workflow(session, missing)


def test_database_refusal_mid_import_writes_nothing(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the unique constraint (not the pre-check) refuses a duplicate, nothing stays."""
    instance_id = _instance(session)
    definition = load_workflow(EXAMPLES / "minimal.yaml")
    import_workflow(session, instance_id, definition)
    session.commit()
    monkeypatch.setattr(workflow_import, "_refuse_duplicate", lambda *_args: None)
    with pytest.raises(DuplicateWorkflowError):
        import_workflow(session, instance_id, definition)
    session.commit()
    assert _counts(session) == [1, 4, 2, 3, 1]
