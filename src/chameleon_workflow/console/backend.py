"""What the console needs from the server that mounts it: the engine, sign-in, a key, health.

The console sits below the server in the import layers, so the server hands it plain
callables (``ConsoleBackend``) instead of the console reaching up for the server's
token check or its background services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chameleon_workflow.engine.service import WorkflowEngine

Kind = Literal["admin", "auditor", "actor"]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in: the admin, the auditor, or one actor of one instance."""

    kind: Kind
    actor_id: uuid.UUID | None = None
    instance_id: uuid.UUID | None = None

    @property
    def reads_everything(self) -> bool:
        """Tell whether the viewer may read every instance (the admin or the auditor)."""
        return self.kind != "actor"

    @property
    def scope(self) -> uuid.UUID | None:
        """Return the one instance the viewer may read, or None for all of them."""
        return None if self.reads_everything else self.instance_id

    def may_read(self, instance_id: uuid.UUID) -> bool:
        """Tell whether the viewer may read things of ``instance_id``."""
        return self.reads_everything or self.instance_id == instance_id


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One background service as the overview shows it."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Vitals:
    """The server's live numbers: telemetry buffer fill and drops, background services."""

    buffer_pending: int
    buffer_capacity: int
    buffer_dropped: int
    services: Sequence[ServiceState]


@dataclass(frozen=True, slots=True)
class ConsoleBackend:
    """The server's side of the console, passed in by whoever mounts it."""

    engine: WorkflowEngine
    #: Turn a bearer token into a viewer; raise NotAuthenticatedError when it names no one.
    authenticate: Callable[[str], Viewer]
    #: The public half of the checkpoint signing key, or None when the server has none.
    checkpoint_key: Callable[[], Ed25519PublicKey | None]
    vitals: Callable[[], Vitals]
    session_ttl_s: float = 8 * 3600.0
