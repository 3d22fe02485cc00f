"""Sending one request: the bearer token, a timeout on every call, retries with backoff.

What is retried depends on what a repeat could do. A request that never reached the
server (connection refused, DNS, connect timeout) and a 503 (the server's transaction
did not commit: the database was unavailable) are retried for every call. A request whose
answer was lost after it was sent (read timeout, connection dropped) is retried only when
repeating it is harmless (reads, heartbeats, revocations); for anything else the caller
gets ``AnswerLost`` and decides (the client's submit checks the UOW's version).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from chameleon_workflow.client.problems import error_of
from chameleon_workflow.errors import ChameleonError, ConfigurationError, ServerUnreachableError

#: Errors raised before the request left this process: nothing reached the server.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Errors raised after the request was sent: the server may have acted on it.
LOST = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError)


class AnswerLost(ServerUnreachableError):  # noqa: N818 - named after what happened, like the others
    """A request was sent but its answer never came: the server may or may not have acted."""


class TransientAnswer(ChameleonError):  # noqa: N818
    """A 503 answer, kept to be retried (it is raised as the mapped error once retries end)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} from {response.request.url.path}")
        self.response = response


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry: ``attempts`` in all, waits doubling to a cap."""

    attempts: int = 5
    first_wait_s: float = 0.2
    max_wait_s: float = 5.0

    def wait(self, state: RetryCallState) -> float:
        """Return the wait before the next attempt: the server's Retry-After or the backoff."""
        backoff = min(self.max_wait_s, self.first_wait_s * 2.0 ** (state.attempt_number - 1))
        jittered = backoff * (0.5 + random.random() / 2)  # noqa: S311 - spreads retries, not a secret
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientAnswer):
            hinted = _seconds(error.response.headers.get("retry-after"))
            return float(max(jittered, min(hinted, self.max_wait_s)))
        return float(jittered)


NO_RETRY = RetryPolicy(attempts=1)


def checked_url(base_url: str) -> str:
    """Return the server's base URL without a trailing slash; refuse one that is not http(s)."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"server URL {base_url!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"server URL {base_url!r} must be http:// or https:// with a host, "
            "e.g. http://127.0.0.1:8000"
        )
    return base_url.rstrip("/")


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


class Transport:
    """An httpx client bound to one server and one bearer token, with the retry policy."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """Talk to ``base_url`` as ``token``; every call times out after ``timeout_s``."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = checked_url(base_url)
        self.retry = retry or RetryPolicy()
        self.http = http or httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(timeout_s), headers=headers
        )
        if http is not None:
            self.http.headers.update(headers)

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        repeatable: bool = False,
    ) -> httpx.Response:
        """Send a request and return its successful answer; raise the mapped error otherwise.

        ``repeatable`` says that sending it twice does no harm, so a lost answer is retried.
        """
        transient: tuple[type[BaseException], ...] = (*UNSENT, TransientAnswer)
        if repeatable:
            transient = (*transient, *LOST)
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, transient)),
            stop=stop_after_attempt(self.retry.attempts),
            wait=self.retry.wait,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._send(method, path, json, params, content, headers)
        except TransientAnswer as exc:
            raise error_of(exc.response) from None
        except LOST as exc:
            raise AnswerLost(
                f"{method} {path}: the answer was lost ({type(exc).__name__}); "
                "the server may have acted on the request"
            ) from exc
        except httpx.HTTPError as exc:
            raise ServerUnreachableError(
                f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc or 'no answer'}"
            ) from exc
        return response

    def _send(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        response = self.http.request(
            method, path, json=json, params=params, content=content, headers=headers
        )
        if response.status_code == 503:
            raise TransientAnswer(response)
        if response.status_code >= 400:
            raise error_of(response)
        return response
