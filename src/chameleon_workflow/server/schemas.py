"""Request and response bodies of the HTTP API (pydantic), and reading the bodies FastAPI cannot.

Responses are built from the services' frozen views, never from ORM rows. A workflow
import comes as JSON or as raw YAML text, so its body is parsed here by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from chameleon_workflow.audit.report import VerificationReport
from chameleon_workflow.background import ServiceHealth
from chameleon_workflow.engine.views import UOWView
from chameleon_workflow.errors import (
    InvalidValueError,
    MalformedRequestError,
    UnsupportedMediaError,
)

#: Upper bounds keep a single request from asking the database for unbounded work. The
#: configurable limits (attribute sizes and counts, reasoning, metadata) are the engine's.
NAME_MAX = 200
TEXT_MAX = 10_000
YAML_MAX = 1_000_000
#: Nesting deeper than the ledger stores (hashing.MAX_DEPTH) is refused before any work.
DEPTH_MAX = 64


def _no_nul(value: Any) -> Any:
    """Refuse NUL anywhere in text (PostgreSQL cannot store it) and nesting past DEPTH_MAX."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("text must not contain NUL (\\u0000)")
        elif isinstance(item, dict | list):
            if depth >= DEPTH_MAX:
                raise ValueError(f"nested deeper than {DEPTH_MAX} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Attributes = Annotated[dict[str, Any], AfterValidator(_no_nul)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ------------------------------------------------------------------------- requests


class InstanceCreate(_Frozen):
    """Create an isolation container for workflows, actors and UOWs."""

    name: Text = Field(min_length=1, max_length=NAME_MAX)
    description: Text | None = Field(default=None, max_length=TEXT_MAX)


class WorkflowImport(_Frozen):
    """Import a YAML workflow definition into an instance (JSON form of the request)."""

    instance: Text = Field(
        min_length=1, max_length=NAME_MAX, description="Name or id of the instance to import into."
    )
    yaml: Text = Field(min_length=1, max_length=YAML_MAX, description="The YAML definition.")


class UOWCreate(_Frozen):
    """Instantiate a workflow: a root UOW at ALPHA's exit with initial attributes."""

    workflow: Text = Field(min_length=1, max_length=NAME_MAX, description="Workflow name or id.")
    attributes: Attributes = Field(default_factory=dict)


class ActorCreate(_Frozen):
    """Register an actor in an instance; the response carries its bearer token once."""

    instance_id: Text = Field(min_length=1, max_length=NAME_MAX, description="Name or id.")
    identity_key: Text = Field(min_length=1, max_length=NAME_MAX)
    name: Text = Field(min_length=1, max_length=NAME_MAX)
    actor_type: Literal["HUMAN", "AI_AGENT", "SYSTEM", "PILOT"]
    capabilities: Annotated[list[str] | dict[str, Any] | None, AfterValidator(_no_nul)] = None


class RoleAssign(_Frozen):
    """Give an actor a role (name or id) of its instance."""

    role: Text = Field(min_length=1, max_length=NAME_MAX)


class Submit(_Frozen):
    """Finish the held UOW's step: attribute updates and the reason, then routing.

    Sizes are bounded by the engine's limits (413): CHAMELEON_MAX_ATTRIBUTE_VALUE_BYTES,
    CHAMELEON_MAX_ATTRIBUTES_PER_UOW and CHAMELEON_MAX_REASONING_CHARS.
    """

    attributes: Attributes | None = None
    reasoning: Text | None = None


class Remediate(_Frozen):
    """Send a FAILED (or ZOMBIED_DEAD) UOW back into the flow as PENDING (EPSILON's holders).

    ``to_interaction`` (name or id) picks where it goes; without it, EPSILON's single exit,
    or else the interaction it failed from.
    """

    attributes: Attributes | None = None
    to_interaction: Text | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    reasoning: Text | None = None


class Fail(_Frozen):
    """Report the held UOW as failed (the reason is bounded by CHAMELEON_MAX_REASONING_CHARS)."""

    reason: Text = Field(min_length=1)


# ------------------------------------------------------------------------ responses


class Created(_Frozen):
    """The id of something just created."""

    id: uuid.UUID


class ActorCreated(_Frozen):
    """A new actor and its bearer token (shown only in this response; stored as a hash)."""

    actor_id: uuid.UUID
    token: str


class RoleAssigned(_Frozen):
    """An actor now holds a role."""

    actor_id: uuid.UUID
    role_id: uuid.UUID


class UOW(_Frozen):
    """A unit of work: status, place, holder, version and current attributes."""

    uow_id: uuid.UUID
    instance_id: uuid.UUID
    workflow_id: uuid.UUID
    status: str
    interaction_id: uuid.UUID | None
    interaction: str | None
    held_by: uuid.UUID | None
    retry_count: int
    version: int
    last_heartbeat_at: datetime | None
    attributes: dict[str, Any]

    @classmethod
    def of(cls, view: UOWView) -> UOW:
        """Render an engine UOW view."""
        fields = {name: getattr(view, name) for name in cls.model_fields}
        fields["attributes"] = dict(fields["attributes"])
        return cls(**fields)


class TimelineEntry(_Frozen):
    """One history row: the transition, its attribute diff, and its hashes."""

    sequence: int
    timestamp: datetime
    event_type: str
    previous_status: str | None
    new_status: str
    previous_interaction: str | None
    new_interaction: str | None
    actor: str | None
    reasoning: str | None
    changes: Any
    metadata: Any
    new_state_hash: str
    chain_hash: str


class Finding(_Frozen):
    """One broken item verification found."""

    kind: str
    uow_id: str
    sequence: int | None
    detail: str


class Verification(_Frozen):
    """A verification report: what was checked and every finding."""

    ok: bool
    uows_checked: int
    history_rows_checked: int
    attribute_rows_checked: int
    findings: list[Finding]
    elapsed_s: float
    #: Not tampering but worth knowing: redacted values, telemetry lost, streams open.
    notices: list[str] = []

    @classmethod
    def of(cls, report: VerificationReport) -> Verification:
        """Render a verification report."""
        return cls(
            ok=report.ok,
            uows_checked=report.uows_checked,
            history_rows_checked=report.history_rows_checked,
            attribute_rows_checked=report.attribute_rows_checked,
            findings=[
                Finding(kind=str(f.kind), uow_id=f.uow_id, sequence=f.sequence, detail=f.detail)
                for f in report.findings
            ],
            elapsed_s=report.elapsed_s,
            notices=list(report.notices),
        )


class LogEntry(_Frozen):
    """One interaction-log row."""

    log_id: uuid.UUID
    timestamp: datetime
    log_type: str
    instance_id: uuid.UUID | None
    uow_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    interaction_id: uuid.UUID | None
    event_details: Any
    error_metadata: Any


class LogPage(_Frozen):
    """A page of log rows, newest first."""

    items: list[LogEntry]
    limit: int
    offset: int


class Sweep(_Frozen):
    """What one zombie sweep did."""

    requeued: int
    dead: int


class Checkpoint(_Frozen):
    """A signed checkpoint: the Merkle root of the ledger's first ``tree_size`` rows."""

    format: str
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str


class ServiceStatus(_Frozen):
    """One background service: running, failing (its last iteration failed) or stopped."""

    name: str
    state: Literal["running", "failing", "stopped"]
    failures_total: int
    consecutive_failures: int
    last_error: str | None

    @classmethod
    def of(cls, health: ServiceHealth) -> ServiceStatus:
        """Render a service's health report."""
        return cls(
            name=health.name,
            state=health.state,
            failures_total=health.failures_total,
            consecutive_failures=health.consecutive_failures,
            last_error=health.last_error,
        )


class Health(_Frozen):
    """Liveness of the parts the server depends on."""

    status: Literal["ok", "degraded"]
    database: bool
    flusher_alive: bool
    services: list[ServiceStatus]
    buffer_pending: int
    buffer_capacity: int
    buffer_fill: float


def rows_of(model: type[BaseModel], views: list[Any]) -> list[Any]:
    """Render frozen dataclass views field by field into a schema."""
    return [model(**{name: getattr(v, name) for name in model.model_fields}) for v in views]


# ---------------------------------------------------------------- request parsing

YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
WORKFLOW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/WorkflowImport"}},
            **{kind: {"schema": {"type": "string"}} for kind in YAML_MEDIA_TYPES},
        },
    }
}


def workflow_request(content_type: str, body: bytes, instance: str | None) -> WorkflowImport:
    """Read a workflow import from a JSON body, or from YAML text plus ``?instance=``."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        try:
            return WorkflowImport.model_validate_json(body)
        except ValidationError as exc:
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                raise MalformedRequestError(
                    f"the body is not valid JSON: {_first_error(exc)}"
                ) from None
            raise InvalidValueError(_first_error(exc)) from None
    if media not in YAML_MEDIA_TYPES:
        raise UnsupportedMediaError(
            f"send application/json or one of {', '.join(YAML_MEDIA_TYPES)}, not {media!r}"
        )
    if instance is None:
        raise InvalidValueError("a YAML body needs the ?instance= query parameter")
    try:
        return WorkflowImport(instance=instance, yaml=body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidValueError("the YAML body is not UTF-8") from None
    except ValidationError as exc:
        raise InvalidValueError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


def name_or_id(value: str) -> uuid.UUID | str:
    """Return a UUID when the text is one, else the text (a name)."""
    if "\x00" in value:
        raise InvalidValueError("a name must not contain NUL (\\u0000)")
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


def aware(moment: datetime | None, name: str) -> datetime | None:
    """Return a query time in UTC (a time without offset is taken as local to the server)."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidValueError(f"{name} {moment.isoformat()} is out of range") from None
