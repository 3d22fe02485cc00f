"""Errors as RFC 9457 problem documents: the status of each error, the body, the OpenAPI parts.

Every error of the project's tree maps to one status in ``ERROR_STATUS``; anything else
is a bare 500 whose body says nothing about the failure (the server logs it instead).
Errors raised by the HTTP layer itself (unknown route, invalid request) get a problem of
their status too, so every error response is ``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chameleon_workflow.errors import (
    ConcurrencyError,
    CorruptWorkflowError,
    DatabaseError,
    DefinitionAlteredError,
    DuplicateWorkflowError,
    ExpressionError,
    IntegrityViolationError,
    InvalidTransitionError,
    InvalidValueError,
    InvalidWorkflowError,
    LimitExceededError,
    MalformedRequestError,
    NotAuthenticatedError,
    NotAuthorizedError,
    NotFoundError,
    StateDriftError,
    UnsupportedMediaError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Seconds a client should wait before retrying after a 503 (``Retry-After``).
RETRY_AFTER_S = 1
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

#: Error classes and their HTTP statuses; the first match wins, so subclasses come first.
ERROR_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (NotAuthenticatedError, 401, "not-authenticated"),
    (NotAuthorizedError, 403, "forbidden"),
    (NotFoundError, 404, "not-found"),
    (UnsupportedMediaError, 415, "unsupported-media-type"),
    (MalformedRequestError, 400, "malformed-request"),
    (LimitExceededError, 413, "limit-exceeded"),
    (CorruptWorkflowError, 500, "corrupt-workflow"),
    (DuplicateWorkflowError, 409, "duplicate-workflow"),
    (ConcurrencyError, 409, "conflict"),
    (InvalidTransitionError, 409, "invalid-transition"),
    (StateDriftError, 409, "state-drift"),
    (DefinitionAlteredError, 409, "definition-altered"),
    (IntegrityViolationError, 409, "integrity-violation"),
    (InvalidWorkflowError, 422, "invalid-workflow"),
    (InvalidValueError, 422, "invalid-value"),
    (ExpressionError, 422, "invalid-expression"),
    (DatabaseError, 503, "database-unavailable"),
)


class Problem(BaseModel):
    """An RFC 9457 problem document: the body of every error response."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(description="URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    problems: list[str] | None = Field(
        default=None, description="Every problem found (invalid workflows, invalid input)."
    )


def problem_headers(status: int) -> dict[str, str]:
    """Return the headers an error response of ``status`` carries besides its body."""
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status == 503:
        return {"Retry-After": str(RETRY_AFTER_S)}
    return {}


def problem_of(exc: Exception) -> Problem:
    """Render an exception as a problem; anything unexpected is a bare 500 without details."""
    for kind, status, slug in ERROR_STATUS:
        if isinstance(exc, kind):
            return _problem(status, slug, _detail(exc, status), _problem_list(exc))
    return _problem(500, "internal-error", "the server failed; the error has been logged")


#: Problem types of the errors the HTTP layer raises itself (no route, wrong method, a body
#: too large or unreadable): the same type as the project's error of that kind.
HTTP_TYPES: dict[int, str] = {
    400: "malformed-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "limit-exceeded",
    422: "invalid-value",
}


def problem(status: int, detail: str, problems: list[str] | None = None) -> Problem:
    """Build a problem for a status raised by the HTTP layer itself (404 route, 405, 422)."""
    slug = HTTP_TYPES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "-")
    return _problem(status, slug, detail, problems)


def invalid_request(errors: Iterable[Any]) -> Problem:
    """Build the problem of a request FastAPI refused, listing every error it found.

    A body that is not JSON at all is 400 (malformed-request); any other invalid input
    is 422 (invalid-value), the type an invalid value found by the engine has too.
    """
    errors = list(errors)
    found = [_describe(error) for error in errors]
    status = 400 if any(error.get("type") == "json_invalid" for error in errors) else 422
    return problem(status, found[0] if found else "invalid request", found)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Declare problem responses for OpenAPI (the route's extra ``responses``)."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
        }
        for status in statuses
    }


def _problem(status: int, slug: str, detail: str, problems: list[str] | None = None) -> Problem:
    title = HTTPStatus(status).phrase
    return Problem(
        type=f"urn:chameleon:problem:{slug}",
        title=title,
        status=status,
        detail=detail,
        problems=problems,
    )


def _detail(exc: Exception, status: int) -> str:
    if status == 503:
        return "the database is unavailable or failed; try again"  # never leak driver text
    if isinstance(exc, CorruptWorkflowError):
        return f"a workflow stored in the database cannot be read: {len(exc.problems)} problem(s)"
    if isinstance(exc, InvalidWorkflowError):
        return f"invalid workflow: {len(exc.problems)} problem(s)"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _problem_list(exc: Exception) -> list[str] | None:
    return list(exc.problems) if isinstance(exc, InvalidWorkflowError) else None


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "request"
    return f"{where}: {error.get('msg', 'invalid')}"
