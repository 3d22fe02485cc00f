"""Console sessions: a random id in an HttpOnly cookie, the viewer and its CSRF token in memory.

A token is exchanged once, at sign-in, for a session id of 256 random bits; the bearer
token itself is never kept. Sessions live in this process only: signing out forgets one,
expiry ends it, and a restart ends them all. Each session carries its own CSRF token,
which every form posts back.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chameleon_workflow.console.backend import Viewer

COOKIE = "chameleon_console"
#: The cookie of the sign-in form's CSRF token, before any session exists.
SIGNIN_COOKIE = "chameleon_signin"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in viewer, its CSRF token and when the session ends."""

    session_id: str
    viewer: Viewer
    csrf: str
    expires_at: float

    def csrf_ok(self, given: str | None) -> bool:
        """Tell, in constant time, whether a posted CSRF token is this session's."""
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionStore:
    """The signed-in sessions of one console, each ending after ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Keep sessions for ``ttl_s`` seconds by ``clock``."""
        self.ttl_s = ttl_s
        self._clock = clock
        self._sessions: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    def open(self, viewer: Viewer) -> ConsoleSession:
        """Start a session for ``viewer`` and return it."""
        now = self._clock()
        opened = ConsoleSession(
            secrets.token_urlsafe(32), viewer, secrets.token_urlsafe(32), now + self.ttl_s
        )
        with self._lock:
            expired = [key for key, kept in self._sessions.items() if kept.expires_at <= now]
            for key in expired:
                del self._sessions[key]
            self._sessions[opened.session_id] = opened
        return opened

    def find(self, session_id: str | None) -> ConsoleSession | None:
        """Return the live session of an id, or None (unknown, signed out or expired)."""
        if not session_id:
            return None
        with self._lock:
            found = self._sessions.get(session_id)
            if found is not None and found.expires_at <= self._clock():
                del self._sessions[session_id]
                return None
        return found

    def close(self, session_id: str) -> None:
        """Forget a session (signing out)."""
        with self._lock:
            self._sessions.pop(session_id, None)
