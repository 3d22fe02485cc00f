"""Every rule a workflow definition must follow, checked so that all problems are reported.

Each role, interaction and component is validated on its own; the topology rules then
run over the items that parsed. Names declared by an item that failed to parse still
count as declared, so one bad item does not also produce "unknown name" noise elsewhere.
Problems read ``<file>: <where>: <what>``; their order is deterministic (document order
for item problems, then the rules in the order they are listed in docs/workflows.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from chameleon_workflow.states import Direction, RoleType
from chameleon_workflow.workflow.definition import (
    ComponentSpec,
    DirectionalFilterGuardian,
    GuardianSpec,
    InteractionSpec,
    RoleSpec,
    WorkflowDefinition,
    default_component_name,
)
from chameleon_workflow.workflow.fanout_rules import check_fanout, join_of, parse_oversight

_GUARDIAN: TypeAdapter[GuardianSpec] = TypeAdapter(GuardianSpec)
_TOP_LEVEL = (
    "name", "version", "description", "roles", "interactions", "components", "oversight",
)  # fmt: skip
# When an item fails to parse, these keys alone are tried so the topology rules can
# still see it (a role with a typo in its description is still a role).
_SKELETON = {
    "role": ("name", "type"),
    "interaction": ("name",),
    "component": ("name", "role", "interaction", "direction"),
}
_SECTIONS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("roles", "role", RoleSpec),
    ("interactions", "interaction", InteractionSpec),
    ("components", "component", ComponentSpec),
)
_SINGLETONS = (RoleType.ALPHA, RoleType.OMEGA, RoleType.EPSILON, RoleType.TAU)
# Interactions these roles consume are fed by the engine itself (failures, zombies).
_SYSTEM_FED = (RoleType.EPSILON, RoleType.TAU)


def _label(kind: str, item: Any, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    if kind == "component" and name is None and isinstance(item, dict):
        name = default_component_name(item).get("name")
    return f"{kind} {name!r}" if isinstance(name, str) else f"{kind} #{index + 1}"


def _where(labels: list[str], fields: list[str]) -> str:
    field = "".join(f if f.startswith("[") else f".{f}" for f in fields).lstrip(".")
    return ", ".join(labels + ([f"field {field!r}"] if field else []))


def _describe(kind: str, item: Any, index: int, loc: Sequence[int | str]) -> str:
    """Turn a pydantic error location into names: ``component 'a->b', guardian 'g', field``."""
    labels, fields, node = [_label(kind, item, index)], [], item
    for pos, key in enumerate(loc):
        if isinstance(node, dict) and isinstance(key, str) and key not in node:
            if key.isupper():  # a discriminator tag pydantic inserts, not a field
                continue
            fields.append(key)
            node = None
        elif isinstance(key, int) and isinstance(node, list) and key < len(node):
            node = node[key]
            parent = loc[pos - 1] if pos else ""
            if parent == "guardians" and isinstance(node, dict):
                fields.pop()
                labels.append(_label("guardian", node, key))
                fields.clear()
            else:
                fields.append(f"[{key}]")
        else:
            fields.append(f"[{key}]" if isinstance(key, int) else str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return _where(labels, fields)


def _message(error: Mapping[str, Any]) -> str:
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


class _Collector:
    """Gather problems and the items that parsed."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.declared: dict[str, set[str]] = {"role": set(), "interaction": set()}
        #: Components whose guardians did not parse: their guardian rules are not checked.
        self.broken: set[str] = set()

    def add(self, where: str, what: str) -> None:
        self.problems.append(f"{self.source}: {where}: {what}")

    def section(
        self, data: Mapping[str, Any], key: str, kind: str, model: type[BaseModel]
    ) -> list[Any]:
        raw = data.get(key)
        if raw is None:
            self.add("workflow", f"missing section {key!r} (a list of {kind}s)")
            return []
        if not isinstance(raw, list):
            self.add("workflow", f"section {key!r} must be a list, got {type(raw).__name__}")
            return []
        parsed = []
        for index, item in enumerate(raw):
            if (
                kind in self.declared
                and isinstance(item, dict)
                and isinstance(item.get("name"), str)
            ):
                self.declared[kind].add(item["name"].strip())
            try:
                parsed.append(model.model_validate(item))
            except ValidationError as exc:
                for error in _innermost(exc.errors()):
                    self.add(_describe(kind, item, index, error["loc"]), _message(error))
                parsed.extend(self.skeleton(kind, model, item))
        return parsed

    def skeleton(self, kind: str, model: type[BaseModel], item: Any) -> list[Any]:
        if not isinstance(item, dict):
            return []
        item = default_component_name(item) if kind == "component" else item
        bones = {k: item[k] for k in _SKELETON[kind] if k in item}
        if kind == "component" and isinstance(item.get("guardians"), list):
            bones["guardians"] = [g for g in item["guardians"] if _is_valid_guardian(g)]
        try:
            spec = model.model_validate(bones)
        except ValidationError:
            return []
        if kind == "component":
            self.broken.add(spec.name)  # type: ignore[attr-defined]
        return [spec]


def _is_valid_guardian(raw: Any) -> bool:
    try:
        _GUARDIAN.validate_python(raw)
    except ValidationError:
        return False
    return True


def _innermost(errors: Sequence[Any]) -> list[Any]:
    """Drop errors that only echo a deeper one (a tuple "too short" once its bad item left)."""
    locs = [tuple(e["loc"]) for e in errors]
    return [
        e
        for e, loc in zip(errors, locs, strict=True)
        if not any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)
    ]


def collect_problems(data: Any, source: str) -> list[str]:
    """Return every problem of a workflow document (an empty list when it is valid)."""
    out = _Collector(source)
    if not isinstance(data, dict):
        out.add(
            "workflow", "the document must be a mapping with name, roles, interactions, components"
        )
        return out.problems
    _check_header(data, out)
    roles, interactions, components = (out.section(data, *s) for s in _SECTIONS)
    _check_duplicates(roles, interactions, components, out)
    _check_references(components, out)
    oversight = parse_oversight(data.get("oversight"), out.add)
    known = WorkflowDefinition.model_construct(
        name="",
        roles=tuple(roles),
        interactions=tuple(interactions),
        components=tuple(components),
        oversight=oversight,
    )
    _check_role_counts(roles, out)
    for role in roles:
        _check_role(known, role, out)
    _check_policies(known, out)
    _check_interactions(known, out)
    check_fanout(known, out.add, out.declared["interaction"])
    return out.problems


def _check_header(data: Mapping[str, Any], out: _Collector) -> None:
    for key in data:
        if key not in _TOP_LEVEL:
            out.add("workflow", f"unknown key {key!r} (expected one of {', '.join(_TOP_LEVEL)})")
    header = {k: data.get(k) for k in ("name", "version", "description") if k in data}
    try:
        WorkflowDefinition.model_validate(
            {**header, "roles": [], "interactions": [], "components": []}
        )
    except ValidationError as exc:
        for error in exc.errors():
            out.add(f"workflow, field {error['loc'][0]!r}", _message(error))


def _duplicates(names: Iterable[str]) -> list[str]:
    return [name for name, count in Counter(names).items() if count > 1]


def _check_duplicates(
    roles: list[RoleSpec],
    interactions: list[InteractionSpec],
    components: list[ComponentSpec],
    out: _Collector,
) -> None:
    for kind, items in (("role", roles), ("interaction", interactions), ("component", components)):
        for name in _duplicates(item.name for item in items):
            out.add(f"{kind} {name!r}", f"duplicate {kind} name")
    for name in _duplicates(g.name for c in components for g in c.guardians):
        out.add(
            f"guardian {name!r}",
            "duplicate guardian name (guardian names are unique in a workflow)",
        )
    triples = Counter((c.role, c.interaction, c.direction) for c in components)
    for (role, interaction, direction), count in triples.items():
        if count > 1:
            out.add(
                f"role {role!r}", f"{count} {direction} components for interaction {interaction!r}"
            )


def _check_references(components: list[ComponentSpec], out: _Collector) -> None:
    for component in components:
        for kind, name in (("role", component.role), ("interaction", component.interaction)):
            if name not in out.declared[kind]:
                out.add(f"component {component.name!r}, field {kind!r}", f"unknown {kind} {name!r}")


def _check_role_counts(roles: list[RoleSpec], out: _Collector) -> None:
    for role_type in _SINGLETONS:
        names = [r.name for r in roles if r.type == role_type]
        if len(names) != 1:
            found = f"found {len(names)}" + (f" ({', '.join(map(repr, names))})" if names else "")
            out.add("workflow", f"needs exactly one {role_type} role, {found}")


def _check_role(wf: WorkflowDefinition, role: RoleSpec, out: _Collector) -> None:
    inbound = wf.components_of(role.name, Direction.INBOUND)
    outbound = wf.components_of(role.name, Direction.OUTBOUND)
    where = f"role {role.name!r}"
    if role.type == RoleType.ALPHA:
        if inbound:
            out.add(where, "ALPHA takes no INBOUND components (the root UOW starts at its exit)")
        if len(outbound) != 1:
            out.add(
                where, f"ALPHA needs exactly one exit (OUTBOUND component), found {len(outbound)}"
            )
    elif role.type == RoleType.OMEGA:
        if outbound:
            out.add(where, f"OMEGA finishes UOWs and has no exits, found {len(outbound)}")
        if not inbound:
            out.add(where, "OMEGA needs at least one INBOUND component")
        for component in inbound:
            if not component.guardians and component.name not in out.broken:
                out.add(
                    f"component {component.name!r}", "OMEGA's inbound component needs a guardian"
                )
    elif role.type == RoleType.BETA:
        _check_beta(wf, role, inbound, outbound, out)
    elif role.type == RoleType.EPSILON and len(inbound) != 1:
        out.add(
            where,
            "EPSILON needs exactly one INBOUND component (its queue of failed UOWs), "
            f"found {len(inbound)}",
        )


def _check_beta(
    wf: WorkflowDefinition,
    role: RoleSpec,
    inbound: Sequence[ComponentSpec],
    outbound: Sequence[ComponentSpec],
    out: _Collector,
) -> None:
    where = f"role {role.name!r}"
    if not inbound:
        out.add(where, "BETA needs at least one INBOUND component")
    if not outbound:
        out.add(where, "BETA needs at least one exit (OUTBOUND component)")
    unknown = any(c.name in out.broken for c in outbound)
    joins = any(join_of(c) is not None for c in inbound)  # a join routes by outcome
    if len(outbound) > 1 and wf.routing_policy(role.name) is None and not (unknown or joins):
        out.add(
            where,
            f"BETA with {len(outbound)} exits needs a routing policy "
            "(a DIRECTIONAL_FILTER guardian on one of its OUTBOUND components)",
        )


def _check_policies(wf: WorkflowDefinition, out: _Collector) -> None:
    policies: Counter[str] = Counter()
    for component in wf.components:
        for guardian in component.guardians:
            if not isinstance(guardian, DirectionalFilterGuardian):
                continue
            where = f"component {component.name!r}, guardian {guardian.name!r}"
            if component.direction != Direction.OUTBOUND:
                out.add(
                    where, "DIRECTIONAL_FILTER (routing policy) belongs on an OUTBOUND component"
                )
                continue
            policies[component.role] += 1
            _check_targets(wf, component.role, guardian, where, out)
    for role, count in policies.items():
        if count > 1:
            out.add(f"role {role!r}", f"{count} routing policies; a role has at most one")


def _check_targets(
    wf: WorkflowDefinition,
    role: str,
    guardian: DirectionalFilterGuardian,
    where: str,
    out: _Collector,
) -> None:
    exits = [c.interaction for c in wf.components_of(role, Direction.OUTBOUND)]
    policy = guardian.config
    targets = [
        (f"config.branches[{i}].next_interaction", b.next_interaction)
        for i, b in enumerate(policy.branches)
    ]
    targets.append(("config.default", policy.default))
    if policy.on_error is not None:
        targets.append(("config.on_error", policy.on_error))
    for field, target in targets:
        if target not in exits:
            out.add(
                f"{where}, field {field!r}",
                f"{target!r} is not an exit of role {role!r} (exits: {', '.join(exits)})",
            )


def _check_interactions(wf: WorkflowDefinition, out: _Collector) -> None:
    types = {r.name: r.type for r in wf.roles}
    # Children of a decomposition start in interactions the engine feeds.
    starts = {
        start
        for r in wf.roles
        if r.decompose is not None
        for start in (r.decompose.start, *(k.start for k in r.decompose.kinds))
    }
    for interaction in wf.interactions:
        touching = [c for c in wf.components if c.interaction == interaction.name]
        consumers = [c for c in touching if c.direction == Direction.INBOUND]
        system_fed = interaction.name in starts or any(
            types.get(c.role) in _SYSTEM_FED for c in consumers
        )
        if not system_fed and not any(c.direction == Direction.OUTBOUND for c in touching):
            out.add(
                f"interaction {interaction.name!r}",
                "no producer (no role has an OUTBOUND component to it)",
            )
        if not consumers:
            out.add(
                f"interaction {interaction.name!r}",
                "no consumer (no role has an INBOUND component from it)",
            )
