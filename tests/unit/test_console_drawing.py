"""The workflow drawing: columns by distance from ALPHA, the unreached last, labelled arrows."""

from __future__ import annotations

import uuid

from chameleon_workflow.console.drawing import COLUMN_GAP, MARGIN, NODE_W, Parts, layout
from chameleon_workflow.models import LocalComponent, LocalGuardian, LocalInteraction, LocalRole
from chameleon_workflow.states import Direction, GuardianType, RoleType


def role(name: str, kind: RoleType) -> LocalRole:
    """Build an unsaved role."""
    return LocalRole(role_id=uuid.uuid4(), name=name, role_type=kind)


def place(name: str) -> LocalInteraction:
    """Build an unsaved interaction."""
    return LocalInteraction(interaction_id=uuid.uuid4(), name=name)


def link(r: LocalRole, i: LocalInteraction, way: Direction) -> LocalComponent:
    """Build an unsaved component."""
    return LocalComponent(
        component_id=uuid.uuid4(), role_id=r.role_id, interaction_id=i.interaction_id, direction=way
    )


def test_nodes_are_placed_by_distance_from_alpha() -> None:
    """ALPHA, its interaction, the next role: columns 0, 1, 2; an unreached role goes last."""
    alpha, beta, fixer = (
        role("start", RoleType.ALPHA),
        role("work", RoleType.BETA),
        role("fix", RoleType.EPSILON),
    )
    inbox = place("inbox")
    out, into = link(alpha, inbox, Direction.OUTBOUND), link(beta, inbox, Direction.INBOUND)
    gate = LocalGuardian(
        component_id=into.component_id, name="<b>gate</b>", guardian_type=GuardianType.TTL_CHECK
    )
    drawing = layout(
        Parts([alpha, beta, fixer], [inbox], [out, into], [gate], {inbox.interaction_id: 4})
    )
    column = {node.name: (node.x - MARGIN) // (NODE_W + COLUMN_GAP) for node in drawing.nodes}
    assert column == {"start": 0, "inbox": 1, "work": 2, "fix": 3}
    waiting = {node.name: node.detail for node in drawing.nodes if node.kind == "interaction"}
    assert waiting == {"inbox": "4 waiting"}
    assert [edge.guardians for edge in drawing.edges] == ["", "<b>gate</b>"]
    assert drawing.width == 2 * MARGIN + 4 * NODE_W + 3 * COLUMN_GAP
