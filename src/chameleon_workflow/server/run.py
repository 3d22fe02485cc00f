"""Run the HTTP API under uvicorn: ``serve`` (what ``chameleon serve`` calls) and ``main``.

``serve`` migrates the database, finds or makes its ledger key, makes sure there is an
admin token, and blocks until SIGTERM/SIGINT; uvicorn's graceful shutdown leaves the
background services the telemetry drain deadline to stop. ``main`` is
``python -m chameleon_workflow.server``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from chameleon_workflow.config import Settings
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.errors import ChameleonError
from chameleon_workflow.ledger.rotation import provision_keys
from chameleon_workflow.schema import upgrade_database
from chameleon_workflow.server.app import create_app
from chameleon_workflow.server.settings import ServerSettings, load_server_settings

#: Adds to the app before it serves: given the app, its own base URL and the settings.
Extension = Callable[[FastAPI, str, ServerSettings], None]


def serve(
    host: str | None = None,
    port: int | None = None,
    settings: Settings | None = None,
    extend: Extension | None = None,
) -> None:
    """Migrate the database, then serve the API until SIGTERM/SIGINT (blocks).

    ``extend`` adds to the app (``chameleon serve`` mounts the MCP server with it); it is
    given the URL the server answers on over loopback.
    """
    config = ServerSettings.of(settings)
    db = make_engine(config.database_url, config)
    upgrade_database(db)
    provision_keys(db)  # find or make the ledger key, as `chameleon init` does
    if config.admin_token is None:
        generated = secrets.token_urlsafe(32)
        config = config.model_copy(update={"admin_token": SecretStr(generated)})
        # Shown once on stderr, like an actor token; set CHAMELEON_ADMIN_TOKEN to fix it.
        print(f"chameleon: generated admin token {generated}", file=sys.stderr, flush=True)
    app = create_app(config, make_session_factory(db))
    bind_host, bind_port = host or config.host, config.port if port is None else port
    if extend is not None:
        local = "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host  # noqa: S104
        extend(app, f"http://{local}:{bind_port}", config)
    uvicorn.run(
        app,
        host=bind_host,
        port=bind_port,
        log_level="info",
        timeout_graceful_shutdown=int(config.telemetry_drain_deadline_s) + 1,
    )


def main(argv: list[str] | None = None) -> None:
    """Serve from the command line: ``python -m chameleon_workflow.server --port 8000``."""
    parser = argparse.ArgumentParser(
        prog="python -m chameleon_workflow.server", description="Serve the Chameleon HTTP API."
    )
    parser.add_argument("--host", default=None, help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8000)")
    args = parser.parse_args(argv)
    try:
        serve(settings=load_server_settings(host=args.host, port=args.port))
    except ChameleonError as exc:
        parser.exit(2, f"error: {exc}\n")
