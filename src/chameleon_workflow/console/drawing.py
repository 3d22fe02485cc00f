"""A workflow version drawn on the server: roles, interactions, guardians, UOWs waiting.

Roles and interactions are laid out in columns by their distance from the ALPHA role
(role -> interaction for an OUTBOUND component, interaction -> role for an INBOUND
one); what that walk never reaches (EPSILON, TAU, the failure interaction) takes the
last column. Each edge names the guardians of its component; each interaction shows
how many UOWs wait at it now. The template ``drawing.svg`` turns this into SVG, every
name escaped like any other text.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chameleon_workflow.db import translated_errors
from chameleon_workflow.models import (
    LocalComponent,
    LocalGuardian,
    LocalInteraction,
    LocalRole,
    UnitsOfWork,
)
from chameleon_workflow.states import Direction, RoleType, UOWStatus

NODE_W, NODE_H, COLUMN_GAP, ROW_GAP, MARGIN = 160, 46, 70, 40, 20


@dataclass(frozen=True, slots=True)
class Node:
    """A role or an interaction, placed."""

    node_id: uuid.UUID
    kind: str  # "role" or "interaction"
    name: str
    detail: str  # the role's type, or how many UOWs wait at the interaction
    waiting: int
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Edge:
    """A component: an arrow between a role and an interaction, with its guardians."""

    path: str  # SVG path data
    label_x: int
    label_y: int
    guardians: str


@dataclass(frozen=True, slots=True)
class Drawing:
    """A placed workflow: its nodes, its edges and the size of the picture."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


@dataclass(frozen=True, slots=True)
class Parts:
    """What a drawing is made of, as read: a workflow's rows and its live counts."""

    roles: Sequence[LocalRole]
    interactions: Sequence[LocalInteraction]
    components: Sequence[LocalComponent]
    guardians: Sequence[LocalGuardian]
    waiting: dict[uuid.UUID | None, int]


def draw(session: Session, workflow_id: uuid.UUID) -> Drawing:
    """Read a workflow's parts and live counts, and place them."""
    return layout(read_parts(session, workflow_id))


def read_parts(session: Session, workflow_id: uuid.UUID) -> Parts:
    """Read a workflow's roles, interactions, components, guardians and UOWs waiting."""

    def rows(model: Any) -> Sequence[Any]:
        return session.scalars(select(model).where(model.local_workflow_id == workflow_id)).all()

    waiting = (
        select(UnitsOfWork.current_interaction_id, func.count())
        .where(
            UnitsOfWork.local_workflow_id == workflow_id,
            UnitsOfWork.status == UOWStatus.PENDING,
        )
        .group_by(UnitsOfWork.current_interaction_id)
    )
    with translated_errors():
        counts = {key: int(count) for key, count in session.execute(waiting).all()}
        return Parts(
            rows(LocalRole),
            rows(LocalInteraction),
            rows(LocalComponent),
            rows(LocalGuardian),
            counts,
        )


def layout(parts: Parts) -> Drawing:
    """Place the parts in columns and join them with labelled arrows."""
    arrows = [
        (c.role_id, c.interaction_id)
        if c.direction == Direction.OUTBOUND
        else (c.interaction_id, c.role_id)
        for c in parts.components
    ]
    starts = [r.role_id for r in parts.roles if r.role_type == RoleType.ALPHA]
    everything = [r.role_id for r in parts.roles] + [i.interaction_id for i in parts.interactions]
    columns = _columns(starts, everything, arrows)
    places = _places(columns)
    nodes = [
        Node(r.role_id, "role", r.name, str(r.role_type), 0, *places[r.role_id])
        for r in parts.roles
    ]
    for i in parts.interactions:
        count = parts.waiting.get(i.interaction_id, 0)
        place = places[i.interaction_id]
        nodes.append(
            Node(i.interaction_id, "interaction", i.name, f"{count} waiting", count, *place)
        )
    named: dict[uuid.UUID, list[str]] = {}
    for guardian in parts.guardians:
        named.setdefault(guardian.component_id, []).append(guardian.name)
    edges = [
        _edge(places[start], places[end], ", ".join(sorted(named.get(c.component_id, []))))
        for c, (start, end) in zip(parts.components, arrows, strict=True)
    ]
    width = MARGIN * 2 + len(columns) * NODE_W + (len(columns) - 1) * COLUMN_GAP
    tallest = max((len(column) for column in columns), default=1)
    height = MARGIN * 2 + tallest * (NODE_H + ROW_GAP)
    return Drawing(tuple(nodes), tuple(edges), max(width, NODE_W), max(height, NODE_H))


def _columns(
    starts: list[uuid.UUID], everything: list[uuid.UUID], arrows: list[tuple[uuid.UUID, uuid.UUID]]
) -> list[list[uuid.UUID]]:
    """Rank nodes by their distance from the starts; the unreached go in a last column."""
    following: dict[uuid.UUID, list[uuid.UUID]] = {}
    for start, end in arrows:
        following.setdefault(start, []).append(end)
    rank = dict.fromkeys(starts, 0)
    queue = deque(starts)
    while queue:
        node = queue.popleft()
        for nxt in following.get(node, []):
            if nxt not in rank:
                rank[nxt] = rank[node] + 1
                queue.append(nxt)
    last = max(rank.values(), default=-1) + 1
    columns: list[list[uuid.UUID]] = [[] for _ in range(last)]
    rest = [node for node in everything if node not in rank]
    for node in everything:
        if node in rank:
            columns[rank[node]].append(node)
    if rest:
        columns.append(rest)
    return columns


def _places(columns: list[list[uuid.UUID]]) -> dict[uuid.UUID, tuple[int, int]]:
    return {
        node: (MARGIN + c * (NODE_W + COLUMN_GAP), MARGIN + r * (NODE_H + ROW_GAP))
        for c, column in enumerate(columns)
        for r, node in enumerate(column)
    }


def _edge(start: tuple[int, int], end: tuple[int, int], guardians: str) -> Edge:
    """Join two boxes: straight ahead, or curving below both when the arrow goes back."""
    (x1, y1), (x2, y2) = start, end
    if x2 >= x1 + NODE_W:
        a, b = (x1 + NODE_W, y1 + NODE_H // 2), (x2, y2 + NODE_H // 2)
        return Edge(
            f"M {a[0]} {a[1]} L {b[0]} {b[1]}",
            (a[0] + b[0]) // 2,
            (a[1] + b[1]) // 2 - 5,
            guardians,
        )
    a, b = (x1 + NODE_W // 2, y1 + NODE_H), (x2 + NODE_W // 2, y2 + NODE_H)
    low = max(a[1], b[1]) + ROW_GAP
    path = f"M {a[0]} {a[1]} C {a[0]} {low} {b[0]} {low} {b[0]} {b[1]}"
    return Edge(path, (a[0] + b[0]) // 2, low - 2, guardians)
