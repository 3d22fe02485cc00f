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

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
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


class _Optional(_Spec):
    """A spec whose optional sections (``OPTIONAL``) are left out of its JSON when unset.

    Definitions that do not use fan-out, joins or oversight keep the stored form (and so
    the definition hash) they always had.
    """

    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in self.OPTIONAL:
                if data.get(key) is None:
                    data.pop(key, None)
        return data


class ChildKind(_Spec):
    """One kind of child of a heterogeneous decomposition and where it starts."""

    kind: Name
    start: Name


class DecomposeSpec(_Spec):
    """How a BETA role splits a UOW into child UOWs when it submits it.

    Homogeneous: one child per item of the list attribute ``for_each`` (the item in the
    child's attribute ``item_attribute``, its position in ``index``), all starting in
    ``start``. Heterogeneous: one child per entry of ``kinds`` (the kind in the child's
    attribute ``kind``), each starting where its entry says. Children inherit only the
    attributes listed in ``inherit``.
    """

    for_each: Name | None = None
    item_attribute: Name = "item"
    start: Name | None = None
    kinds: tuple[ChildKind, ...] = ()
    inherit: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _one_shape(self) -> DecomposeSpec:
        if (self.for_each is None) == (not self.kinds):
            raise ValueError("give either for_each (with start) or kinds, not both")
        if self.for_each is not None and self.start is None:
            raise ValueError("for_each needs start (the interaction children start in)")
        if self.kinds and self.start is not None:
            raise ValueError("with kinds, each kind names its own start")
        return self


class RoleSpec(_Optional):
    """A role: who acts at a step (ALPHA starts, BETA works, OMEGA finishes, ...)."""

    OPTIONAL = ("decompose",)

    name: Name
    type: RoleType
    description: str | None = None
    decompose: DecomposeSpec | None = None


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


class JoinSpec(_Spec):
    """A join: hold a decomposed parent until every child is final, then route it.

    ``on_completed`` when every child COMPLETED, ``on_failed`` when any FAILED (or was
    declared dead); both are exits of the join's role. ``merge`` keys are copied from the
    children into the parent (two different values for one key is a conflict: the parent
    fails); ``collect`` maps a parent key to a child key whose values are gathered into a
    list in child order.
    """

    on_completed: Name
    on_failed: Name
    merge: tuple[Name, ...] = ()
    collect: dict[Name, Name] = Field(default_factory=dict)


class CerberusConfig(_Optional):
    """Let a UOW through only when every head holds and yields exactly True.

    With ``join``, the guardian is a join: the engine holds the parent until all its
    children are final and the heads (optional then) are checked on the merged parent.
    """

    OPTIONAL = ("join",)

    heads: tuple[Condition, ...] = ()
    join: JoinSpec | None = None

    @model_validator(mode="after")
    def _heads_or_join(self) -> CerberusConfig:
        if not self.heads and self.join is None:
            raise ValueError("a CERBERUS needs at least one head (or a join)")
        return self


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


class HighRiskRule(_Spec):
    """A move a pilot must approve: at ``role``, to ``status`` and/or when ``condition`` holds.

    A matching submit (or failure report) parks the UOW in PENDING_PILOT_APPROVAL; a
    rejection sends it to ``reject_to`` (an interaction) or, without one, to FAILED.
    ``applies_to`` limits the rule to root UOWs (no parent) or to children.
    """

    name: Name
    role: Name
    status: Literal["PENDING", "COMPLETED", "FAILED"] | None = None
    condition: Condition | None = None
    reject_to: Name | None = None
    applies_to: Literal["any", "root", "child"] = "any"

    @model_validator(mode="after")
    def _says_something(self) -> HighRiskRule:
        if self.status is None and self.condition is None:
            raise ValueError("a high-risk rule needs a status, a condition or both")
        return self


class OversightSpec(_Spec):
    """What pilots oversee: the high-risk moves they must approve."""

    high_risk: tuple[HighRiskRule, ...] = ()


class WorkflowDefinition(_Optional):
    """A whole, validated workflow definition."""

    OPTIONAL = ("oversight",)

    name: Name
    version: Annotated[str, BeforeValidator(_version_text)] = "1"
    description: str | None = None
    roles: tuple[RoleSpec, ...]
    interactions: tuple[InteractionSpec, ...]
    components: tuple[ComponentSpec, ...]
    oversight: OversightSpec | None = None

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
