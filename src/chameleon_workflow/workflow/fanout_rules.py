"""The rules of decomposition, joins and pilot oversight in a workflow definition.

They run after the topology rules, over the items that parsed, and report through the
same ``add(where, what)`` so that every problem of a definition is listed at once:

- ``decompose`` only on a BETA role; its start interactions exist; a decomposing BETA has
  exactly one exit, and that exit is a join's interaction (a join downstream);
- a join (a CERBERUS guardian with ``join``) stands on the only INBOUND component of a
  BETA role (the engine releases its UOWs: nobody checks them out); its outcome policy
  names exits of that role; every producer of its interaction decomposes;
- each high-risk rule names a real role and a status that role can move a UOW to, and
  an interaction to reject to; rule names are unique.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from chameleon_workflow.states import Direction, RoleType
from chameleon_workflow.workflow.definition import (
    CerberusGuardian,
    ComponentSpec,
    HighRiskRule,
    JoinSpec,
    OversightSpec,
    WorkflowDefinition,
)

Add = Callable[[str, str], None]

#: Statuses a high-risk rule may name, by the role types that can move a UOW there.
_RISK_STATUSES = {
    "PENDING": (RoleType.BETA,),
    "COMPLETED": (RoleType.OMEGA,),
    "FAILED": (RoleType.BETA, RoleType.OMEGA),
}


def parse_oversight(raw: Any, add: Add) -> OversightSpec | None:
    """Validate the ``oversight`` section rule by rule; return the rules that parsed."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        add("oversight", f"must be a mapping with 'high_risk', got {type(raw).__name__}")
        return None
    for key in raw:
        if key != "high_risk":
            add("oversight", f"unknown key {key!r} (expected high_risk)")
    rules = raw.get("high_risk", [])
    if not isinstance(rules, list):
        add("oversight, field 'high_risk'", "must be a list of rules")
        return None
    parsed: list[HighRiskRule] = []
    for index, item in enumerate(rules):
        name = item.get("name") if isinstance(item, dict) else None
        label = f"rule {name!r}" if isinstance(name, str) else f"rule #{index + 1}"
        try:
            parsed.append(HighRiskRule.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                where = f"oversight, {label}" + (f", field {field!r}" if field else "")
                add(where, str(error["msg"]).removeprefix("Value error, "))
    return OversightSpec(high_risk=tuple(parsed))


def join_of(component: ComponentSpec) -> tuple[str, JoinSpec] | None:
    """Return the join guardian's name and settings on a component, if it has one."""
    for guardian in component.guardians:
        if isinstance(guardian, CerberusGuardian) and guardian.config.join is not None:
            return guardian.name, guardian.config.join
    return None


def check_fanout(wf: WorkflowDefinition, add: Add, interactions: set[str]) -> None:
    """Report every problem of decompositions, joins and high-risk rules."""
    joins = _check_joins(wf, add)
    _check_decompositions(wf, add, interactions, joins)
    if wf.oversight is not None:
        _check_oversight(wf, wf.oversight, add, interactions)


def _check_joins(wf: WorkflowDefinition, add: Add) -> set[str]:
    """Check each join; return the interactions joins stand on."""
    types = {r.name: r.type for r in wf.roles}
    decomposing = {r.name for r in wf.roles if r.decompose is not None}
    found: set[str] = set()
    for component in wf.components:
        joined = join_of(component)
        if joined is None:
            continue
        name, join = joined
        where = f"component {component.name!r}, guardian {name!r}"
        if component.direction != Direction.INBOUND:
            add(where, "a join stands on an INBOUND component (where the parent waits)")
            continue
        found.add(component.interaction)
        role = component.role
        if types.get(role) != RoleType.BETA:
            add(where, f"a join's role must be a BETA, {role!r} is {types.get(role)}")
        if len(wf.components_of(role, Direction.INBOUND)) != 1:
            add(
                where,
                f"role {role!r} is a join: the engine releases its UOWs, so the join must be "
                "its only INBOUND component",
            )
        exits = [c.interaction for c in wf.components_of(role, Direction.OUTBOUND)]
        for field, target in (("on_completed", join.on_completed), ("on_failed", join.on_failed)):
            if target not in exits:
                add(
                    f"{where}, field 'config.join.{field}'",
                    f"{target!r} is not an exit of role {role!r} (exits: {', '.join(exits)})",
                )
        for key in sorted(set(join.merge) & set(join.collect)):
            add(f"{where}, field 'config.join'", f"key {key!r} is both merged and collected")
        producers = [
            c.role
            for c in wf.components
            if c.interaction == component.interaction and c.direction == Direction.OUTBOUND
        ]
        for producer in producers:
            if producer not in decomposing:
                add(
                    where,
                    f"role {producer!r} sends UOWs to join interaction "
                    f"{component.interaction!r} but does not decompose them",
                )
    return found


def _check_decompositions(
    wf: WorkflowDefinition, add: Add, interactions: set[str], joins: set[str]
) -> None:
    for role in wf.roles:
        spec = role.decompose
        if spec is None:
            continue
        where = f"role {role.name!r}"
        if role.type != RoleType.BETA:
            add(f"{where}, field 'decompose'", f"only a BETA role may decompose, not {role.type}")
            continue
        starts = [("decompose.start", spec.start)] if spec.start is not None else []
        starts += [(f"decompose.kinds[{i}].start", k.start) for i, k in enumerate(spec.kinds)]
        for field, start in starts:
            if start not in interactions:
                add(f"{where}, field {field!r}", f"unknown interaction {start!r}")
        for kind, count in Counter(k.kind for k in spec.kinds).items():
            if count > 1:
                add(f"{where}, field 'decompose.kinds'", f"kind {kind!r} is listed {count} times")
        exits = wf.components_of(role.name, Direction.OUTBOUND)
        if len(exits) != 1 or exits[0].interaction not in joins:
            add(
                where,
                "a decomposing BETA needs exactly one exit, the interaction of a join "
                "(a CERBERUS guardian with 'join' on the INBOUND component that takes it)",
            )


def _check_oversight(
    wf: WorkflowDefinition, oversight: OversightSpec, add: Add, interactions: set[str]
) -> None:
    types = {r.name: r.type for r in wf.roles}
    for name, count in Counter(r.name for r in oversight.high_risk).items():
        if count > 1:
            add(f"oversight, rule {name!r}", "duplicate high-risk rule name")
    for rule in oversight.high_risk:
        where = f"oversight, rule {rule.name!r}"
        role_type = types.get(rule.role)
        if role_type is None:
            add(f"{where}, field 'role'", f"unknown role {rule.role!r}")
        elif rule.status is not None and role_type not in _RISK_STATUSES[rule.status]:
            add(
                f"{where}, field 'status'",
                f"a {role_type} role never moves a UOW to {rule.status}",
            )
        elif role_type not in (RoleType.BETA, RoleType.OMEGA):
            add(f"{where}, field 'role'", f"a {role_type} role's moves cannot be held for a pilot")
        if rule.reject_to is not None and rule.reject_to not in interactions:
            add(f"{where}, field 'reject_to'", f"unknown interaction {rule.reject_to!r}")
