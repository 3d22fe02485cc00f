"""An imported workflow as frozen values: what the engine runs from.

``importer.load_local_workflow`` builds these from the stored rows, so no ORM object
leaves the importer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from chameleon_workflow.errors import NotFoundError
from chameleon_workflow.states import Direction, GuardianType, RoleType
from chameleon_workflow.workflow.definition import (
    DecomposeSpec,
    DirectionalFilterGuardian,
    GuardianSpec,
    HighRiskRule,
    JoinSpec,
    RoutingPolicy,
)


@dataclass(frozen=True, slots=True)
class CompiledGuardian:
    """A guardian on a component, with its parsed configuration."""

    guardian_id: uuid.UUID
    name: str
    guardian_type: GuardianType
    spec: GuardianSpec

    @property
    def policy(self) -> RoutingPolicy | None:
        """Return the routing policy when this guardian is a DIRECTIONAL_FILTER."""
        return self.spec.config if isinstance(self.spec, DirectionalFilterGuardian) else None


@dataclass(frozen=True, slots=True)
class CompiledComponent:
    """A role's connection to an interaction, with the guardians standing on it."""

    component_id: uuid.UUID
    name: str
    role_id: uuid.UUID
    interaction_id: uuid.UUID
    interaction_name: str
    direction: Direction
    guardians: tuple[CompiledGuardian, ...]

    @property
    def gates(self) -> tuple[CompiledGuardian, ...]:
        """Return the guardians that decide yes/no (everything but a routing policy)."""
        return tuple(g for g in self.guardians if g.policy is None)

    @property
    def join(self) -> tuple[CompiledGuardian, JoinSpec] | None:
        """Return the join guardian standing here and its settings, if there is one."""
        for guardian in self.guardians:
            join = getattr(guardian.spec.config, "join", None)
            if isinstance(join, JoinSpec):
                return guardian, join
        return None


@dataclass(frozen=True, slots=True)
class CompiledRole:
    """A role with its inbound and outbound components."""

    role_id: uuid.UUID
    name: str
    role_type: RoleType
    definition_hash: str
    inbound: tuple[CompiledComponent, ...]
    outbound: tuple[CompiledComponent, ...]
    decompose: DecomposeSpec | None = None

    @property
    def is_join(self) -> bool:
        """Tell whether the engine, not an actor, moves this role's UOWs (a join)."""
        return any(c.join is not None for c in self.inbound)

    @property
    def inbound_interaction_ids(self) -> tuple[uuid.UUID, ...]:
        """Return the interactions this role takes UOWs from."""
        return tuple(c.interaction_id for c in self.inbound)

    @property
    def outbound_by_name(self) -> Mapping[str, uuid.UUID]:
        """Return this role's exits: interaction name -> interaction id."""
        return MappingProxyType({c.interaction_name: c.interaction_id for c in self.outbound})

    @property
    def routing_policy(self) -> CompiledGuardian | None:
        """Return the role's DIRECTIONAL_FILTER guardian, if it has one."""
        return next((g for c in self.outbound for g in c.guardians if g.policy), None)

    def inbound_component(self, interaction_id: uuid.UUID) -> CompiledComponent | None:
        """Return the inbound component from ``interaction_id``, if any."""
        return next((c for c in self.inbound if c.interaction_id == interaction_id), None)

    def outbound_component(self, interaction_name: str) -> CompiledComponent | None:
        """Return the outbound component to the interaction named ``interaction_name``."""
        return next((c for c in self.outbound if c.interaction_name == interaction_name), None)


@dataclass(frozen=True, slots=True)
class CompiledWorkflow:
    """Everything the engine needs to know about an imported workflow."""

    local_workflow_id: uuid.UUID
    instance_id: uuid.UUID
    name: str
    version: str
    definition_hash: str
    roles: tuple[CompiledRole, ...]
    interaction_ids: Mapping[str, uuid.UUID]
    high_risk: tuple[HighRiskRule, ...] = ()

    def join_at(self, interaction_id: uuid.UUID) -> tuple[CompiledRole, CompiledComponent] | None:
        """Return the join role and its component when a join stands on an interaction."""
        for role in self.consumers(interaction_id):
            component = role.inbound_component(interaction_id)
            if component is not None and component.join is not None:
                return role, component
        return None

    def role(self, name: str) -> CompiledRole:
        """Return the role called ``name``."""
        for role in self.roles:
            if role.name == name:
                return role
        raise NotFoundError(f"workflow {self.name!r} has no role {name!r}")

    def role_by_id(self, role_id: uuid.UUID) -> CompiledRole:
        """Return the role with id ``role_id``."""
        for role in self.roles:
            if role.role_id == role_id:
                return role
        raise NotFoundError(f"workflow {self.name!r} has no role {role_id}")

    def role_of_type(self, role_type: RoleType) -> CompiledRole:
        """Return the first role of a type (ALPHA, OMEGA, EPSILON and TAU are unique)."""
        return next(r for r in self.roles if r.role_type == role_type)

    def consumers(self, interaction_id: uuid.UUID) -> tuple[CompiledRole, ...]:
        """Return the roles that take UOWs from ``interaction_id``."""
        return tuple(r for r in self.roles if interaction_id in r.inbound_interaction_ids)

    def interaction_name(self, interaction_id: uuid.UUID) -> str:
        """Return the name of an interaction of this workflow."""
        for name, iid in self.interaction_ids.items():
            if iid == interaction_id:
                return name
        raise NotFoundError(f"workflow {self.name!r} has no interaction {interaction_id}")

    @property
    def alpha_exit_interaction_id(self) -> uuid.UUID:
        """Return the interaction where a new root UOW starts (ALPHA's only exit)."""
        return self.role_of_type(RoleType.ALPHA).outbound[0].interaction_id

    @property
    def epsilon_inbound_interaction_id(self) -> uuid.UUID:
        """Return the interaction where failed UOWs wait for remediation."""
        return self.role_of_type(RoleType.EPSILON).inbound[0].interaction_id

    @property
    def omega_inbound_interaction_ids(self) -> tuple[uuid.UUID, ...]:
        """Return the interactions OMEGA finishes UOWs from."""
        return self.role_of_type(RoleType.OMEGA).inbound_interaction_ids
