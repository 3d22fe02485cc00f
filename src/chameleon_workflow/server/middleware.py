"""ASGI middleware of the server: request ids, the body limit, and quiet server errors.

Every response carries ``X-Request-ID`` (the client's own, when it sent a sane one), and
a request that fails with a 5xx is one log line naming it; the full traceback is logged
only the first time a distinct error is seen (``FailureLog``), so an outage does not
flood the log. An error no handler knows becomes a 500 problem here, without closing the
client's connection. A body larger than ``CHAMELEON_MAX_REQUEST_BYTES`` is refused with
413 before it is read: at once when ``Content-Length`` says so, else as soon as the
streamed bytes pass the limit.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chameleon_workflow.background import FailureLog
from chameleon_workflow.errors import LimitExceededError
from chameleon_workflow.server.problems import PROBLEM_MEDIA_TYPE, problem_headers, problem_of

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
log = logging.getLogger("chameleon_workflow.server")


def log_failed_request(failures: FailureLog, scope: Scope, status: int, exc: BaseException) -> None:
    """Log one line for a request that failed with ``status`` (a traceback if the error is new)."""
    where = f"{scope.get('method', '?')} {scope.get('path', '?')}"
    failures.failure(f"request {request_id_of(scope)} {where} -> {status}", exc, logging.ERROR)


def request_id_of(scope: Scope) -> str:
    """Return the id of the request ``scope`` describes (set by ``RequestMiddleware``)."""
    state: dict[str, Any] = scope.get("state") or {}
    return str(state.get("request_id", "-"))


def body_too_large(limit: int) -> LimitExceededError:
    """Build the error of a request body over ``limit`` bytes."""
    return LimitExceededError(
        f"the request body is larger than {limit} bytes (CHAMELEON_MAX_REQUEST_BYTES)"
    )


class BodyTooLargeError(HTTPException):
    """A streamed body passed the limit while the app read it (answered as 413).

    An HTTP exception, because FastAPI turns any other error of its body parsing into 400.
    """

    def __init__(self, limit: int) -> None:
        """Remember the limit the body passed."""
        super().__init__(413, str(body_too_large(limit)))
        self.limit = limit


class RequestMiddleware:
    """Give each HTTP request an id and refuse bodies over ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, failures: FailureLog) -> None:
        """Wrap ``app``; log server errors through ``failures``."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the exchange with its id; refuse an oversized body before the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(body_too_large(self.max_body_bytes), tagged, close=True)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await tagged(message)

        try:
            await self.app(scope, self._counting(receive), tracked)
        except Exception as exc:
            if started:
                raise
            status = problem_of(exc).status
            if status >= 500:
                log_failed_request(self.failures, scope, status, exc)
            await _answer(exc, tagged, close=False)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised inside the app's body read, so its handlers answer 413.
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        return counted


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            given = bytes(value).decode("latin-1")
            if _SANE_ID.fullmatch(given):
                return given
    return uuid.uuid4().hex[:16]


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(error: Exception, send: Send, *, close: bool) -> None:
    found = problem_of(error)
    body = orjson.dumps(found.model_dump(exclude_none=True))
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in problem_headers(found.status).items()),
    ]
    if close:  # the body was not read, so the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": found.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
