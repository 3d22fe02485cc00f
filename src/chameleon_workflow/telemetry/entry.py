"""One interaction-log row waiting in memory: ``TelemetryEntry`` and the id type it takes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.states import LogType

IdLike = uuid.UUID | str | None

_LOG_TYPES: dict[str, str] = {member.value: member.value for member in LogType}
_now = datetime.now


# Not frozen: a frozen dataclass pays object.__setattr__ per field and builds 3x slower,
# which misses SPEC §9's build+record target. Treat entries as immutable all the same.
@dataclass(slots=True)
class TelemetryEntry:
    """One interaction-log row waiting in memory; validated so it can never block a flush."""

    instance_id: IdLike
    uow_id: IdLike
    actor_id: IdLike
    role_id: IdLike
    interaction_id: IdLike
    log_type: str = "TELEMETRY"
    event_details: Any = None
    error_metadata: Any = None
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        """Stamp the time and refuse a log type the table would reject."""
        try:
            kind = _LOG_TYPES[self.log_type]
        except (KeyError, TypeError):
            raise InvalidValueError(f"unknown log_type {self.log_type!r}") from None
        if kind is not self.log_type:  # store the plain str, never the enum member
            self.log_type = kind
        if self.timestamp is None:
            self.timestamp = _now(UTC)
        elif self.timestamp.tzinfo is None:
            raise InvalidValueError(f"timestamp {self.timestamp!r} has no time zone")
