"""Error answers turned back into the project's exceptions.

The problem's ``type`` names the kind of error (``urn:chameleon:problem:<kind>``, listed
in docs/server.md); the status decides when the kind is one this client does not know.
Every raised exception carries the problem document as its ``problem`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from pydantic import ValidationError

from chameleon_workflow.client.models import Problem
from chameleon_workflow.errors import (
    ChameleonError,
    ConcurrencyError,
    CorruptWorkflowError,
    DatabaseUnavailableError,
    DefinitionAlteredError,
    DuplicateWorkflowError,
    ExpressionError,
    IntegrityViolationError,
    InvalidTransitionError,
    InvalidValueError,
    InvalidWorkflowError,
    LimitExceededError,
    NotAuthenticatedError,
    NotAuthorizedError,
    NotFoundError,
    ServerError,
    StateDriftError,
    UnsupportedMediaError,
)

PREFIX = "urn:chameleon:problem:"

Factory = Callable[[Problem], ChameleonError]


def _plain(kind: type[ChameleonError]) -> Factory:
    return lambda problem: kind(problem.detail)


def _listing(kind: type[InvalidWorkflowError]) -> Factory:
    return lambda problem: kind(problem.problems or [problem.detail])


def _bare(kind: type[ChameleonError]) -> Factory:
    """Build an error whose constructor wants parts the problem only has as text."""

    def make(problem: Problem) -> ChameleonError:
        error = kind.__new__(kind)
        ChameleonError.__init__(error, problem.detail)
        return error

    return make


#: The server's problem kinds and the exception each one is raised as here.
BY_KIND: dict[str, Factory] = {
    "not-authenticated": _plain(NotAuthenticatedError),
    "forbidden": _plain(NotAuthorizedError),
    "not-found": _plain(NotFoundError),
    "unsupported-media-type": _plain(UnsupportedMediaError),
    "limit-exceeded": _plain(LimitExceededError),
    "corrupt-workflow": _listing(CorruptWorkflowError),
    "duplicate-workflow": _listing(DuplicateWorkflowError),
    "conflict": _plain(ConcurrencyError),
    "invalid-transition": _bare(InvalidTransitionError),
    "state-drift": _bare(StateDriftError),
    "definition-altered": _plain(DefinitionAlteredError),
    "integrity-violation": _plain(IntegrityViolationError),
    "invalid-workflow": _listing(InvalidWorkflowError),
    "invalid-value": _plain(InvalidValueError),
    "malformed-request": _plain(InvalidValueError),
    "invalid-expression": _plain(ExpressionError),
    "database-unavailable": _plain(DatabaseUnavailableError),
}

#: When the kind is unknown (a newer server), the status still says what went wrong.
BY_STATUS: dict[int, Factory] = {
    400: _plain(InvalidValueError),
    401: _plain(NotAuthenticatedError),
    403: _plain(NotAuthorizedError),
    404: _plain(NotFoundError),
    409: _plain(ConcurrencyError),
    413: _plain(LimitExceededError),
    415: _plain(UnsupportedMediaError),
    422: _plain(InvalidValueError),
    503: _plain(DatabaseUnavailableError),
}


def problem_of(response: httpx.Response) -> Problem:
    """Read the problem document of an error answer (a plain one if the body is not one)."""
    try:
        return Problem.model_validate_json(response.content)
    except ValidationError:
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        return Problem(
            status=response.status_code,
            title=response.reason_phrase,
            detail=text or response.reason_phrase,
        )


def error_of(response: httpx.Response) -> ChameleonError:
    """Return the project's exception for an error answer, with its problem attached."""
    problem = problem_of(response)
    kind = problem.type.removeprefix(PREFIX) if problem.type.startswith(PREFIX) else ""
    factory = BY_KIND.get(kind) or BY_STATUS.get(response.status_code)
    if factory is None:
        error: ChameleonError = ServerError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code} {problem.title}: {problem.detail}"
        )
    else:
        error = factory(problem)
    error.problem = problem  # type: ignore[attr-defined]
    return error
