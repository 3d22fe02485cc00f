"""Workflow definitions: the YAML format, its typed (pydantic) models and loading.

A definition lists ``roles``, ``interactions`` and ``components`` (a role's connection to
an interaction, INBOUND or OUTBOUND), and each component may carry ``guardians``. A
role's routing policy is the DIRECTIONAL_FILTER guardian on one of its outbound
components. The format and every rule are documented in ``docs/workflows.md``.

``parse_workflow_text`` (YAML text, never a file) and ``load_workflow`` (a file chosen by
a trusted caller, or text) never stop at the first problem: each item is validated on its
own, then the topology rules (``workflow_rules``) run over the items that parsed, and
every problem found is reported at once, each with its file and location.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from chameleon_workflow.errors import ExpressionError
from chameleon_workflow.expressions import parse_condition
from chameleon_workflow.states import Direction, GuardianType, RoleType


def _check_condition(text: str) -> str:
    try:
        parse_condition(text)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    return text


def _version_text(value: Any) -> Any:
    # YAML reads `version: 2` as an int; a version is a label, so keep its text.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Condition = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_check_condition)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleSpec(_Spec):
    """A role: who acts at a step (ALPHA starts, BETA works, OMEGA finishes, ...)."""

    name: Name
    type: RoleType
    description: str | None = None


class InteractionSpec(_Spec):
    """A holding place where UOWs wait between two roles."""

    name: Name
    description: str | None = None


class Branch(_Spec):
    """One routing branch: when ``condition`` holds, go to ``next_interaction``."""

    condition: Condition
    next_interaction: Name


class RoutingPolicy(_Spec):
    """Ordered branches; the first that holds wins, else ``default``; errors go to ``on_error``."""

    branches: tuple[Branch, ...] = ()
    default: Name
    on_error: Name | None = None


class PassThruConfig(_Spec):
    """PASS_THRU takes no settings."""


class CriteriaGateConfig(_Spec):
    """Let a UOW through only when ``condition`` holds."""

    condition: Condition
    reason: str | None = None


class TtlCheckConfig(_Spec):
    """Let a UOW through only while it is at most ``max_age_seconds`` old."""

    max_age_seconds: float = Field(gt=0)


class CerberusConfig(_Spec):
    """Let a UOW through only when every head holds and yields exactly True."""

    heads: tuple[Condition, ...] = Field(min_length=1)


class _GuardianBase(_Spec):
    name: Name

    @property
    def guardian_type(self) -> GuardianType:
        """Return the guardian's type as the model enum."""
        return GuardianType(getattr(self, "type"))  # noqa: B009 - set by each subclass


class PassThruGuardian(_GuardianBase):
    """A guardian that lets everything through (an explicit, recorded choice)."""

    type: Literal["PASS_THRU"]
    config: PassThruConfig = PassThruConfig()


class CriteriaGateGuardian(_GuardianBase):
    """A guardian that checks one condition."""

    type: Literal["CRITERIA_GATE"]
    config: CriteriaGateConfig


class TtlCheckGuardian(_GuardianBase):
    """A guardian that refuses UOWs older than a maximum age."""

    type: Literal["TTL_CHECK"]
    config: TtlCheckConfig


class CerberusGuardian(_GuardianBase):
    """A strict gate with several heads (conditions), all of which must hold."""

    type: Literal["CERBERUS"]
    config: CerberusConfig


class CompositeConfig(_Spec):
    """Combine child gates: ``all`` must let the UOW through, or ``any`` one of them."""

    mode: Literal["all", "any"]
    guardians: tuple[GateSpec, ...] = Field(min_length=1)


class CompositeGuardian(_GuardianBase):
    """A guardian made of child gates."""

    type: Literal["COMPOSITE"]
    config: CompositeConfig


class DirectionalFilterGuardian(_GuardianBase):
    """A role's routing policy, placed on one of its outbound components."""

    type: Literal["DIRECTIONAL_FILTER"]
    config: RoutingPolicy


#: A guardian that decides yes/no (everything but a routing policy).
GateSpec = Annotated[
    PassThruGuardian
    | CriteriaGateGuardian
    | TtlCheckGuardian
    | CerberusGuardian
    | CompositeGuardian,
    Field(discriminator="type"),
]
#: Any guardian.
GuardianSpec = Annotated[
    PassThruGuardian
    | CriteriaGateGuardian
    | TtlCheckGuardian
    | CerberusGuardian
    | CompositeGuardian
    | DirectionalFilterGuardian,
    Field(discriminator="type"),
]
CompositeConfig.model_rebuild()


def default_component_name(data: Any) -> Any:
    """Give a raw component without a name ``role->interaction`` (``interaction->role`` inbound)."""
    if isinstance(data, dict) and "name" not in data:
        role, interaction = data.get("role"), data.get("interaction")
        if isinstance(role, str) and isinstance(interaction, str):
            inbound = data.get("direction") == Direction.INBOUND
            name = f"{interaction}->{role}" if inbound else f"{role}->{interaction}"
            return {"name": name, **data}
    return data


class ComponentSpec(_Spec):
    """A role's connection to an interaction; its name defaults to ``role->interaction``."""

    name: Name
    role: Name
    interaction: Name
    direction: Direction
    guardians: tuple[GuardianSpec, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        return default_component_name(data)


class WorkflowDefinition(_Spec):
    """A whole, validated workflow definition."""

    name: Name
    version: Annotated[str, BeforeValidator(_version_text)] = "1"
    description: str | None = None
    roles: tuple[RoleSpec, ...]
    interactions: tuple[InteractionSpec, ...]
    components: tuple[ComponentSpec, ...]

    def role(self, name: str) -> RoleSpec:
        """Return the role called ``name``."""
        return next(r for r in self.roles if r.name == name)

    def components_of(self, role: str, direction: Direction) -> tuple[ComponentSpec, ...]:
        """Return the role's components in one direction, in declared order."""
        return tuple(c for c in self.components if c.role == role and c.direction == direction)

    def routing_policy(self, role: str) -> DirectionalFilterGuardian | None:
        """Return the role's routing policy guardian, if it has one."""
        for component in self.components_of(role, Direction.OUTBOUND):
            for guardian in component.guardians:
                if isinstance(guardian, DirectionalFilterGuardian):
                    return guardian
        return None

    def to_document(self) -> dict[str, Any]:
        """Return the definition as plain JSON data (what is stored on the workflow row)."""
        return self.model_dump(mode="json")
