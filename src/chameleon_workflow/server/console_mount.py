"""The console under ``/ui``: the server's token check, checkpoint key and health, handed over.

The console sits below the server in the import layers; this module builds its
``ConsoleBackend`` from the app's ``Services`` so the console never imports the server.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI

from chameleon_workflow.checkpoints.keys import load_signing_key
from chameleon_workflow.checkpoints.paths import signing_key_path
from chameleon_workflow.console import ConsoleBackend, ServiceState, Viewer, Vitals, create_console
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.server import auth
from chameleon_workflow.server.dependencies import Services

CONSOLE_PATH = "/ui"


def mount_console(app: FastAPI, services: Services) -> None:
    """Mount the audit console at ``/ui``."""
    app.mount(CONSOLE_PATH, create_console(console_backend(services)), name="console")


def console_backend(services: Services) -> ConsoleBackend:
    """Build what the console needs from the app's services."""
    settings = services.settings

    def authenticate(token: str) -> Viewer:
        admin, auditor = settings.admin_token, settings.auditor_token
        principal = auth.authenticate(
            services.session_factory,
            token,
            admin.get_secret_value() if admin else None,
            auditor.get_secret_value() if auditor else None,
        )
        if principal.is_admin:
            return Viewer("admin")
        if principal.is_auditor:
            return Viewer("auditor")
        return Viewer("actor", principal.actor_id, principal.instance_id)

    def checkpoint_key() -> Ed25519PublicKey | None:
        try:
            path = signing_key_path(settings.database_url, settings)
        except ConfigurationError:  # PostgreSQL without CHAMELEON_SIGNING_KEY_FILE
            return None
        return load_signing_key(path).public_key if path.is_file() else None

    def vitals() -> Vitals:
        buffer = services.buffer
        return Vitals(
            buffer_pending=buffer.get_pending_count(),
            buffer_capacity=buffer.max_queue_size,
            buffer_dropped=buffer.dropped_total,
            services=[
                ServiceState(s.name, s.ok, f"{s.state}, {s.failures_total} failures")
                for s in services.background.health()
            ],
        )

    return ConsoleBackend(services.engine, authenticate, checkpoint_key, vitals)
