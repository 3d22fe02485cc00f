"""The client without a server: problems mapped to errors, retries, lost answers, timeouts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from chameleon_workflow.client import UOW, AnswerLost, ChameleonClient, RetryPolicy
from chameleon_workflow.client.transport import Transport
from chameleon_workflow.errors import (
    ConcurrencyError,
    DatabaseUnavailableError,
    DuplicateWorkflowError,
    InvalidTransitionError,
    InvalidValueError,
    LimitExceededError,
    NotAuthenticatedError,
    NotAuthorizedError,
    NotFoundError,
    ServerError,
    ServerUnreachableError,
    StateDriftError,
)

BASE = "http://chameleon.test"
NO_WAIT = RetryPolicy(attempts=3, first_wait_s=0.0, max_wait_s=0.0)
UOW_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
ACTOR = uuid.UUID("00000000-0000-4000-8000-00000000000a")

Handler = Callable[[httpx.Request], httpx.Response]


def client_of(
    handler: Handler, retry: RetryPolicy = NO_WAIT, timeout_s: float = 7.0
) -> ChameleonClient:
    """Return a client whose requests go to ``handler`` instead of the network."""
    http = httpx.Client(
        base_url=BASE, transport=httpx.MockTransport(handler), timeout=httpx.Timeout(timeout_s)
    )
    return ChameleonClient(BASE, transport=Transport(BASE, "chm_token", retry=retry, http=http))


def problem(status: int, kind: str, detail: str, **extra: Any) -> httpx.Response:
    """Return a problem answer as the server sends it."""
    body = {
        "type": f"urn:chameleon:problem:{kind}",
        "title": "t",
        "status": status,
        "detail": detail,
    }
    return httpx.Response(
        status, json={**body, **extra}, headers={"content-type": "application/problem+json"}
    )


def uow_body(
    version: int, status: str = "ACTIVE", held_by: uuid.UUID | None = ACTOR
) -> dict[str, Any]:
    """Return a UOW answer at a version."""
    return {
        "uow_id": str(UOW_ID),
        "instance_id": str(uuid.uuid4()),
        "workflow_id": str(uuid.uuid4()),
        "status": status,
        "interaction_id": None,
        "interaction": "submitted",
        "held_by": None if held_by is None else str(held_by),
        "retry_count": 0,
        "version": version,
        "last_heartbeat_at": None,
        "attributes": {"amount": 5},
    }


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (401, "not-authenticated", NotAuthenticatedError),
        (403, "forbidden", NotAuthorizedError),
        (404, "not-found", NotFoundError),
        (409, "conflict", ConcurrencyError),
        (409, "invalid-transition", InvalidTransitionError),
        (409, "state-drift", StateDriftError),
        (413, "limit-exceeded", LimitExceededError),
        (422, "invalid-value", InvalidValueError),
        (400, "malformed-request", InvalidValueError),
        (400, "some-newer-400", InvalidValueError),
        (409, "some-newer-kind", ConcurrencyError),
        (500, "internal-error", ServerError),
    ],
)
def test_problems_become_the_projects_errors(
    status: int, kind: str, error: type[Exception]
) -> None:
    """Each problem kind (or, for an unknown kind, its status) raises the matching exception."""
    client = client_of(lambda _: problem(status, kind, "what went wrong"))
    with pytest.raises(error) as raised:
        client.get_uow(UOW_ID)
    assert type(raised.value) is error
    assert raised.value.problem.status == status  # type: ignore[attr-defined]
    assert raised.value.problem.type == f"urn:chameleon:problem:{kind}"  # type: ignore[attr-defined]
    if error is not ServerError:
        assert str(raised.value) == "what went wrong"


def test_invalid_workflow_problems_keep_their_list() -> None:
    """A duplicate or invalid workflow keeps every problem the server listed."""
    answer = problem(409, "duplicate-workflow", "dup", problems=["name taken", "second"])
    with pytest.raises(DuplicateWorkflowError) as raised:
        client_of(lambda _: answer).import_workflow("inst", "name: x")
    assert raised.value.problems == ["name taken", "second"]


def test_an_answer_that_is_not_a_problem_is_still_a_clear_error() -> None:
    """A proxy's HTML 502 becomes a ServerError naming the route and status."""
    client = client_of(lambda _: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(ServerError, match=r"GET /uows/.* -> 502 Bad Gateway: <html>bad gateway"):
        client.get_uow(UOW_ID)


def test_503_is_retried_then_succeeds() -> None:
    """Two 503 answers are retried; the third attempt's answer is returned."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 3:
            return problem(503, "database-unavailable", "try again")
        return httpx.Response(201, json={"id": str(UOW_ID)})

    assert client_of(handler).create_instance("x") == UOW_ID
    assert calls == ["/instances"] * 3


def test_503_that_persists_is_raised_after_the_last_attempt() -> None:
    """A server that keeps answering 503 is a DatabaseUnavailableError after every attempt."""
    calls: list[int] = []

    def handler(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        return problem(503, "database-unavailable", "the database is unavailable; try again")

    with pytest.raises(DatabaseUnavailableError, match="try again"):
        client_of(handler).checkout("triage")
    assert len(calls) == 3


def test_connection_errors_are_retried_then_reported() -> None:
    """A refused connection is retried, then raised as ServerUnreachableError (never httpx's)."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServerUnreachableError, match="ConnectError: connection refused"):
        client_of(handler).checkout("triage")
    assert len(calls) == 3


def test_a_lost_answer_is_retried_for_a_read_but_not_for_a_checkout() -> None:
    """A read timeout repeats a GET; a checkout (it may have claimed a UOW) raises AnswerLost."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) == 1 or request.method == "POST":
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json=uow_body(2))

    client = client_of(handler)
    assert client.get_uow(UOW_ID).version == 2
    with pytest.raises(AnswerLost, match="may have acted"):
        client.checkout("triage")
    assert seen == ["GET", "GET", "POST"]


def lost_submit(after: dict[str, Any]) -> tuple[ChameleonClient, list[str]]:
    """Return a client whose first submit loses its answer and whose UOW reads back as ``after``."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path.rsplit('/', 1)[-1]}")
        if request.method == "GET":
            return httpx.Response(200, json=after)
        if seen.count("POST submit") == 1:
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(200, json=uow_body(6, status="PENDING", held_by=None))

    return client_of(handler), seen


def test_a_submit_whose_answer_was_lost_is_sent_again_when_nothing_changed() -> None:
    """Still held by the caller at the same version: the submit never happened, so it is resent."""
    client, seen = lost_submit(after=uow_body(3))
    held = UOW.model_validate(uow_body(3))
    assert client.submit(held, {"ok": True}, "fine").version == 6
    assert seen == ["POST submit", f"GET {UOW_ID}", "POST submit"]


def test_a_submit_whose_answer_was_lost_is_not_repeated_once_the_uow_moved() -> None:
    """The UOW moved past the held version: the submit landed, and it is not sent twice."""
    moved = uow_body(5, status="PENDING", held_by=None)
    client, seen = lost_submit(after=moved)
    held = UOW.model_validate(uow_body(3))
    assert client.submit(held, {"ok": True}, "fine").model_dump(mode="json") == moved
    assert seen == ["POST submit", f"GET {UOW_ID}"]


def test_every_call_has_a_timeout_and_the_token() -> None:
    """Requests carry the bearer token and the configured timeout on connect, read and write."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=uow_body(1))

    client_of(handler, timeout_s=7.0).get_uow(UOW_ID)
    assert seen[0].headers["authorization"] == "Bearer chm_token"
    assert seen[0].extensions["timeout"] == {"connect": 7.0, "read": 7.0, "write": 7.0, "pool": 7.0}
    default = ChameleonClient(BASE, "t", timeout_s=12.5)
    assert default.transport.http.timeout == httpx.Timeout(12.5)


def test_listings_follow_the_cursor_to_the_last_page() -> None:
    """A listing yields every page's items, passing next_cursor until it is null."""
    pages = {
        None: {"items": [uow_body(1)], "next_cursor": "c2"},
        "c2": {"items": [uow_body(2), uow_body(3)], "next_cursor": None},
    }
    queries: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params.multi_items())
        queries.append(query)
        return httpx.Response(200, content=json.dumps(pages[query.get("cursor")]))

    found = list(client_of(handler).uows(status=["PENDING"], attributes={"amount": 5}))
    assert [u.version for u in found] == [1, 2, 3]
    assert queries[0] == {"status": "PENDING", "attribute": "amount=5", "limit": "100"}
    assert queries[1]["cursor"] == "c2"


def test_from_env_needs_the_server_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CHAMELEON_SERVER_URL the client says which variable is missing."""
    monkeypatch.delenv("CHAMELEON_SERVER_URL", raising=False)
    with pytest.raises(Exception, match="CHAMELEON_SERVER_URL is not set"):
        ChameleonClient.from_env()
