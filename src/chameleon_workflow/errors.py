"""The project's exception tree: callers never see a driver's exception types."""

from __future__ import annotations


class ChameleonError(Exception):
    """Base of every error Chameleon raises on purpose."""


class ConfigurationError(ChameleonError):
    """A setting is missing or malformed."""


class NotFoundError(ChameleonError):
    """An id names nothing that exists."""


class NotAuthenticatedError(ChameleonError):
    """No credentials, or credentials that name nobody (HTTP 401)."""


class NotAuthorizedError(ChameleonError):
    """The caller may not perform this operation."""


class InvalidTransitionError(ChameleonError):
    """The state machine does not allow moving from one status to another."""

    def __init__(self, previous: str, new: str) -> None:
        super().__init__(f"illegal transition {previous} -> {new}")
        self.previous = previous
        self.new = new


class InstancePausedError(ChameleonError):
    """The instance is paused by a pilot: no UOW is checked out until it is resumed."""


class StateDriftError(ChameleonError):
    """A UOW's stored content hash does not match its attributes."""

    def __init__(self, uow_id: object, stored: str | None, actual: str, *, recorded: bool) -> None:
        where = "recorded as FAILED_SECURITY_BREACH" if recorded else "breach NOT recorded"
        super().__init__(
            f"state drift on UOW {uow_id}: stored content_hash {stored} but attributes hash "
            f"to {actual} ({where})"
        )
        self.uow_id = uow_id
        self.stored = stored
        self.actual = actual
        self.recorded = recorded


class ConcurrencyError(ChameleonError):
    """Another writer changed the same UOW first; reload and retry."""


class InvalidValueError(ChameleonError, ValueError):
    """A value cannot be stored (not JSON, out of range, too large)."""


class MalformedRequestError(InvalidValueError):
    """A request body cannot be parsed at all, such as JSON that is not JSON (HTTP 400)."""


class LimitExceededError(InvalidValueError):
    """Input is larger than a configured limit (HTTP 413); the message names the setting."""


class InvalidWorkflowError(ChameleonError):
    """A workflow definition is malformed; carries every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid workflow:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class DuplicateWorkflowError(InvalidWorkflowError):
    """The instance already holds a workflow of that name."""


class CorruptWorkflowError(InvalidWorkflowError):
    """A workflow stored in the database no longer reads back (edited behind the engine)."""


class ExpressionError(ChameleonError):
    """A guard condition cannot be parsed or evaluated."""


class AppendOnlyViolationError(ChameleonError):
    """The database refused to change or delete a ledger or log row."""


class IntegrityViolationError(ChameleonError):
    """A write broke a database constraint (unique, foreign key, check)."""


class SchemaMismatchError(ChameleonError):
    """The database is missing, not Chameleon's, or at a schema revision this code cannot use."""


class DefinitionAlteredError(ChameleonError):
    """A stored workflow definition no longer hashes to the hash recorded at its import."""


class DatabaseError(ChameleonError):
    """The database could not be reached or failed for another reason."""


class DatabaseUnavailableError(DatabaseError):
    """The database is unreachable or the connection to it was lost; try again later."""


class ConditionSyntaxError(ExpressionError):
    """A condition is malformed or uses something the sandbox refuses."""


class ConditionEvaluationError(ExpressionError):
    """A well-formed condition failed while being evaluated (undefined name, type error, ...)."""


class UnsupportedMediaError(ChameleonError):
    """A request body is in a format the route does not take (HTTP 415)."""


class CheckpointError(ChameleonError):
    """A checkpoint, key or proof is malformed, or the ledger cannot be sealed as it stands."""


class ServerError(ChameleonError):
    """The HTTP server failed in a way the client cannot name (an unexpected status, a 500)."""


class ServerUnreachableError(ServerError):
    """The HTTP server could not be reached, or its answer was lost, after every retry."""
