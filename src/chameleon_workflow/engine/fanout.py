"""Fan-out and join: a BETA decomposes a UOW into children; a CERBERUS join waits for them.

Decomposition runs inside the transaction of the submit (or of the pilot's approval)
that moves the parent: every child is created there, PENDING in its start interaction,
with ``parent_id`` set and a CREATED history row naming the parent; the parent's history
row (a DECOMPOSITION) names every child. Nothing of it remains if anything fails.

The join is released by the transaction in which the last child reaches a final status
(COMPLETED, FAILED, ZOMBIED_DEAD or FAILED_SECURITY_BREACH). That transaction locks the
parent's row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one writer at a time)
*after* writing its child, then counts the children. Two children finishing at once are
serialised on the parent's row: the second to lock it counts after the first committed,
so exactly one of them sees every child final, and a parent already released is no
longer waiting at its join. The release merges the children's declared attributes into
the parent, checks the join's heads, and routes by the outcome (``on_completed`` /
``on_failed``) with a JOIN history row; a merge conflict fails the parent instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chameleon_workflow.engine.steps import JOIN_FINAL, Move, Steps
from chameleon_workflow.engine.txn import TxnLog
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.guard import ShadowLogger, check_guardian
from chameleon_workflow.hashing import canonical_json
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.states import HistoryEvent, UOWStatus
from chameleon_workflow.workflow.definition import CerberusGuardian, DecomposeSpec, JoinSpec
from chameleon_workflow.workflow.importer import CompiledComponent, CompiledRole, CompiledWorkflow

S = UOWStatus
#: How deep decompositions may nest (a root UOW is at depth 0, its children at 1).
MAX_DEPTH = 4
#: The most children one decomposition may create.
MAX_CHILDREN = 10_000

WorkflowLoader = Callable[[Session, uuid.UUID], CompiledWorkflow]


class FanOut:
    """Create children when a decomposing role moves a UOW; release parents at their join."""

    def __init__(
        self, steps: Steps, persistence: UOWPersistenceService, workflow: WorkflowLoader
    ) -> None:
        """Plug into ``steps`` (its decomposer and child hook); load workflows with ``workflow``."""
        self.steps = steps
        self.persistence = persistence
        self.workflow = workflow
        steps.decomposer = self.decompose
        steps.on_child_final = self.child_final

    # ------------------------------------------------------------ decomposition

    def decompose(
        self,
        session: Session,
        txn: TxnLog,
        role: CompiledRole,
        parent: UnitsOfWork,
        actor_id: uuid.UUID | None,
        attrs: dict[str, Any],
    ) -> dict[str, Any]:
        """Create the children of ``parent``; return what its history row records of them."""
        spec = role.decompose
        if spec is None:  # pragma: no cover - the caller checks
            raise InvalidValueError(f"role {role.name!r} does not decompose")
        compiled = self.workflow(session, parent.local_workflow_id)
        depth = self._depth(session, parent) + 1
        if depth > MAX_DEPTH:
            raise InvalidValueError(
                f"UOW {parent.uow_id}: decomposition by {role.name!r} would nest children "
                f"{depth} levels deep; the limit is {MAX_DEPTH}"
            )
        plan = _children(spec, attrs, parent.uow_id)
        children: list[str] = []
        for index, (start, own) in enumerate(plan):
            inherited = {key: attrs[key] for key in spec.inherit if key in attrs}
            child = self.persistence.create_uow(
                session,
                instance_id=parent.instance_id,
                local_workflow_id=parent.local_workflow_id,
                attributes={**inherited, **own, "index": index},
                interaction_id=compiled.interaction_ids[start],
                parent_id=parent.uow_id,
                actor_id=actor_id,
                reasoning=f"child {index + 1} of {len(plan)} of UOW {parent.uow_id}",
                metadata={"parent": str(parent.uow_id), "decomposed_by": role.name},
            )
            children.append(str(child.uow_id))
        return {"role": role.name, "depth": depth, "count": len(children), "children": children}

    def _depth(self, session: Session, uow: UnitsOfWork) -> int:
        depth, parent_id = 0, uow.parent_id
        while parent_id is not None and depth <= MAX_DEPTH:
            depth += 1
            parent_id = session.scalar(
                select(UnitsOfWork.parent_id).where(UnitsOfWork.uow_id == parent_id)
            )
        return depth

    # ------------------------------------------------------------------- join

    def check_remediable(self, session: Session, uow: UnitsOfWork) -> None:
        """Refuse to remediate a child whose parent's join has already counted it."""
        if uow.parent_id is None:
            return
        parent = session.get(UnitsOfWork, uow.parent_id)
        waiting = (
            parent is not None
            and parent.status == S.PENDING
            and parent.current_interaction_id is not None
            and self.workflow(session, parent.local_workflow_id).join_at(
                parent.current_interaction_id
            )
            is not None
        )
        if not waiting:
            raise InvalidValueError(
                f"UOW {uow.uow_id} is a child whose parent {uow.parent_id} is no longer "
                "waiting at its join: its outcome was already counted"
            )

    def child_final(self, session: Session, txn: TxnLog, child: UnitsOfWork) -> None:
        """Release the child's parent from its join when every child is now final."""
        query = (
            select(UnitsOfWork)
            .where(UnitsOfWork.uow_id == child.parent_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        parent = session.scalars(query).one()
        if parent.status != S.PENDING or parent.current_interaction_id is None:
            return  # not waiting at a join (already released, paused, or parked)
        compiled = self.workflow(session, parent.local_workflow_id)
        found = compiled.join_at(parent.current_interaction_id)
        if found is None:
            return
        counts = dict(
            session.execute(
                select(UnitsOfWork.status, func.count())
                .where(UnitsOfWork.parent_id == parent.uow_id)
                .group_by(UnitsOfWork.status)
            ).all()
        )
        if any(S(status) not in JOIN_FINAL for status in counts):
            return
        self._release(session, txn, compiled, found, parent, counts, child)

    def _release(
        self,
        session: Session,
        txn: TxnLog,
        compiled: CompiledWorkflow,
        found: tuple[CompiledRole, CompiledComponent],
        parent: UnitsOfWork,
        counts: dict[Any, int],
        child: UnitsOfWork,
    ) -> None:
        role, component = found
        joined = component.join
        assert joined is not None  # join_at found it
        guardian, join = joined
        completed = counts.get(S.COMPLETED, 0)
        total = sum(counts.values())
        summary: dict[str, Any] = {
            "guardian": guardian.name,
            "children": total,
            "completed": completed,
            "failed": total - completed,
            "released_by": str(child.uow_id),
        }
        merged, conflict = self._merged(session, parent, join)
        if conflict is not None:
            reason = f"join {guardian.name!r} found conflicting results: {conflict}"
            summary["conflict"] = conflict
            self.steps.to_epsilon(
                session, txn, compiled, parent, None, role, reason, {"join": summary},
                HistoryEvent.JOIN,
            )  # fmt: skip
            return
        if merged:
            why = f"children's results merged by join {guardian.name!r}"
            self.persistence.set_attributes(session, parent, merged, None, why)
        outcome = S.COMPLETED if completed == total else S.FAILED
        spec = guardian.spec
        if outcome == S.COMPLETED and isinstance(spec, CerberusGuardian) and spec.config.heads:
            attrs = self.persistence.get_attributes(session, parent.uow_id)
            context = self.steps.context(parent, role, None)
            heads = check_guardian(spec, attrs, context, ShadowLogger(txn.sink))
            if not heads.allowed:
                outcome, summary["heads"] = S.FAILED, heads.reason
        target_name = join.on_completed if outcome == S.COMPLETED else join.on_failed
        summary["outcome"] = str(outcome)
        why = f"join {guardian.name!r}: {completed} of {total} children completed"
        target = role.outbound_by_name[target_name]
        move = Move(
            S.PENDING, None, why, role.role_id, target, {"join": summary}, None,
            event=HistoryEvent.JOIN,
        )  # fmt: skip
        self.steps.move(session, txn, parent, move)

    def _merged(
        self, session: Session, parent: UnitsOfWork, join: JoinSpec
    ) -> tuple[dict[str, Any], str | None]:
        """Return the attributes the join writes on the parent, or the first conflict."""
        if not join.merge and not join.collect:
            return {}, None
        kids = session.scalars(
            select(UnitsOfWork.uow_id).where(UnitsOfWork.parent_id == parent.uow_id)
        ).all()
        rows = [self.persistence.get_attributes(session, kid) for kid in kids]
        rows.sort(key=lambda attrs: _order(attrs.get("index")))
        current = self.persistence.get_attributes(session, parent.uow_id)
        merged: dict[str, Any] = {}
        for key in join.merge:
            values = {canonical_json(r[key]): r[key] for r in rows if key in r}
            if key in current:
                values.setdefault(canonical_json(current[key]), current[key])
            if len(values) > 1:
                shown = ", ".join(sorted(v.decode() for v in values))
                return {}, f"key {key!r} has {len(values)} different values ({shown})"
            if values:
                merged[key] = next(iter(values.values()))
        for target, source in join.collect.items():
            merged[target] = [r.get(source) for r in rows]
        return merged, None


def refuse_join_checkout(role: CompiledRole) -> None:
    """Refuse a checkout for a join's role: the engine, not an actor, moves its UOWs."""
    if role.is_join:
        raise InvalidValueError(
            f"role {role.name!r} is a join: the engine releases its UOWs when their "
            "children are back, nobody checks them out"
        )


def _order(index: Any) -> int:
    return index if isinstance(index, int) and not isinstance(index, bool) else MAX_CHILDREN


def _children(
    spec: DecomposeSpec, attrs: dict[str, Any], parent_id: uuid.UUID
) -> list[tuple[str, dict[str, Any]]]:
    """Return each child's start interaction and own attributes, in order."""
    if spec.kinds:
        return [(k.start, {"kind": k.kind}) for k in spec.kinds]
    assert spec.for_each is not None  # the spec's validator: for_each comes with start
    assert spec.start is not None
    items = attrs.get(spec.for_each)
    where = f"UOW {parent_id}: cannot decompose by {spec.for_each!r}"
    if not isinstance(items, list):
        got = "it is missing" if spec.for_each not in attrs else f"got {type(items).__name__}"
        raise InvalidValueError(f"{where}: it must be a list attribute ({got})")
    if not items:
        raise InvalidValueError(f"{where}: the list is empty, there is nothing to decompose")
    if len(items) > MAX_CHILDREN:
        raise InvalidValueError(f"{where}: {len(items)} items, the limit is {MAX_CHILDREN}")
    return [(spec.start, {spec.item_attribute: item}) for item in items]
