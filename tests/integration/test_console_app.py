"""The console app in process: the session cookie is Secure over TLS, and sessions expire."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.console import ConsoleBackend, Viewer, Vitals, create_console
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import NotAuthenticatedError
from chameleon_workflow.telemetry import TelemetryBuffer

GOOD = "a-token-that-names-the-auditor"


def authenticate(token: str) -> Viewer:
    """Know one token, the auditor's."""
    if token != GOOD:
        raise NotAuthenticatedError("invalid bearer token")
    return Viewer("auditor")


@pytest.fixture
def console_backend(session_factory: sessionmaker[Session]) -> ConsoleBackend:
    """A console backend on the test database, with no checkpoint key."""
    engine = WorkflowEngine(session_factory, telemetry=TelemetryBuffer())
    return ConsoleBackend(engine, authenticate, lambda: None, lambda: Vitals(0, 1, 0, ()))


@pytest.fixture
def tls(console_backend: ConsoleBackend) -> Iterator[TestClient]:
    """A client speaking HTTPS to the console."""
    with TestClient(create_console(console_backend), base_url="https://console.test") as client:
        yield client


def sign_in(client: TestClient, token: str) -> int:
    """Post the sign-in form with its CSRF token; return the status."""
    form = client.get("/signin").text
    found = re.search(r'name="csrf" value="([^"]+)"', form)
    assert found is not None
    answer = client.post(
        "/signin", data={"csrf": found.group(1), "token": token}, follow_redirects=False
    )
    return answer.status_code


def test_the_session_cookie_is_secure_over_tls(tls: TestClient) -> None:
    """Served over HTTPS, both cookies carry the Secure flag."""
    assert "Secure" in tls.get("/signin").headers["set-cookie"]
    form = tls.get("/signin").text
    found = re.search(r'name="csrf" value="([^"]+)"', form)
    assert found is not None
    answer = tls.post(
        "/signin", data={"csrf": found.group(1), "token": GOOD}, follow_redirects=False
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("chameleon_console=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


def test_an_expired_session_goes_back_to_sign_in(console_backend: ConsoleBackend) -> None:
    """Past its time to live, a session opens no page: the console asks to sign in again."""
    short = ConsoleBackend(
        console_backend.engine,
        authenticate,
        console_backend.checkpoint_key,
        console_backend.vitals,
        session_ttl_s=0.0,
    )
    with TestClient(create_console(short), base_url="https://console.test") as client:
        assert sign_in(client, GOOD) == 303
        answer = client.get("/uows", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin"


def test_a_wrong_token_opens_no_session(tls: TestClient) -> None:
    """A token naming no one is 401 and sets no session cookie."""
    assert sign_in(tls, "nobody") == 401
    assert tls.get("/uows", follow_redirects=False).status_code == 303


def test_a_verification_run_ends_with_its_result(tls: TestClient) -> None:
    """A run started by the form reloads itself until done, then shows its result."""
    assert sign_in(tls, GOOD) == 303
    page = tls.get("/verify").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    started = tls.post(
        "/verify", data={"csrf": found.group(1), "scope": "all"}, follow_redirects=False
    )
    assert started.status_code == 303
    deadline = time.monotonic() + 30
    shown = tls.get(started.headers["location"]).text
    while 'http-equiv="refresh"' in shown and time.monotonic() < deadline:
        time.sleep(0.1)
        shown = tls.get(started.headers["location"]).text
    assert 'data-testid="result"' in shown
    assert "No finding: 0 UOWs, 0 ledger rows" in " ".join(shown.split())
