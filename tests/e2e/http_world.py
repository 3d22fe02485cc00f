"""Helpers of the HTTP tests: a served database, bearer headers, requests insisting on a status."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from chameleon_workflow.testing import ServerProcess

PROBLEM = "application/problem+json"
#: A read-only token the served tests configure (at least 32 characters, like the admin's).
AUDITOR_TOKEN = "auditor-" + "a1" * 16
FAST = {
    "CHAMELEON_TELEMETRY_FLUSH_INTERVAL_S": "0.1",
    "CHAMELEON_AUDITOR_TOKEN": AUDITOR_TOKEN,
}


class Documented:
    """The status codes the OpenAPI document declares for each operation."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        """Index the document's operations by method and path pattern."""
        self.operations: dict[tuple[str, str], set[int]] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                codes = {int(code) for code in operation["responses"]}
                self.operations[method.upper(), path] = codes
            pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path))
            self._patterns.append((re.compile(pattern + "$"), path))

    def operation_of(self, method: str, path: str) -> tuple[str, str] | None:
        """Return the documented operation a request reaches, or None (docs, unknown paths)."""
        for pattern, template in self._patterns:
            if pattern.match(path) and (method, template) in self.operations:
                return method, template
        return None

    def check(self, response: httpx.Response) -> None:
        """Fail when a response's status is not documented for its operation."""
        operation = self.operation_of(response.request.method, response.request.url.path)
        if operation is not None:
            documented = self.operations[operation]
            assert response.status_code in documented, (
                f"{operation} answered {response.status_code}, documented {sorted(documented)}"
            )


@contextmanager
def served(
    database_url: str, folder: Path, env: Mapping[str, str] | None = None
) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    """Run a server on the database and give a client that fails on any undocumented status."""
    server = ServerProcess(database_url, folder / "server.log", {**FAST, **(env or {})}).start()
    try:
        documented = Documented(httpx.get(f"{server.url}/openapi.json").json())
        hooks = {"response": [documented.check]}
        with httpx.Client(base_url=server.url, timeout=30.0, event_hooks=hooks) as http:
            yield server, http
    finally:
        clean = server.stop_cleanly()
        assert clean, server.log()
        assert "Traceback" not in server.log()


def bearer(token: str) -> dict[str, str]:
    """Return an authorization header."""
    return {"Authorization": f"Bearer {token}"}


def call(http: httpx.Client, method: str, path: str, token: str, status: int, **kwargs: Any) -> Any:
    """Send one request with a bearer token, insist on the status, return the JSON body."""
    response = http.request(method, path, headers=bearer(token), **kwargs)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"] == PROBLEM
    return response.json() if response.content else None


def walk_pages(http: httpx.Client, path: str, token: str, **params: Any) -> list[list[Any]]:
    """Follow next_cursor from the first page to the last; return every page's items."""
    pages: list[list[Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = call(http, "GET", path, token, 200, params=query)
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
