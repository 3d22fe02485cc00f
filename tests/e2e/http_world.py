"""Helpers of the HTTP tests: a served database, bearer headers, requests insisting on a status."""

from __future__ import annotations

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


@contextmanager
def served(
    database_url: str, folder: Path, env: Mapping[str, str] | None = None
) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    """Run a server on the database and give a client; stop it cleanly afterwards."""
    server = ServerProcess(database_url, folder / "server.log", {**FAST, **(env or {})}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as http:
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
