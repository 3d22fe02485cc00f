"""The commands that drive the HTTP API from outside: ``chameleon worker`` and ``chameleon mcp``.

Both speak to a running server (``CHAMELEON_SERVER_URL``) as one actor, whose token comes
from ``CHAMELEON_ACTOR_TOKEN`` only: a command-line option would show it to every local
user. They import the client, the worker and the MCP SDK only when they run.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chameleon_workflow.cli.common import errors, handled, shown
from chameleon_workflow.errors import ConfigurationError

if TYPE_CHECKING:
    from chameleon_workflow.client.api import ChameleonClient

ServerUrl = Annotated[
    str,
    typer.Option(
        "--server-url",
        envvar="CHAMELEON_SERVER_URL",
        help="Base URL of the Chameleon HTTP server, e.g. http://127.0.0.1:8000.",
        show_default=False,
    ),
]
Timeout = Annotated[float, typer.Option(min=0.1, help="Seconds before any one call gives up.")]


def worker(
    role: Annotated[str, typer.Option(help="Role (name or id) whose UOWs to work on.")],
    handler: Annotated[
        str, typer.Option(help="module:function, or module:Class with a handle(uow) method.")
    ],
    server_url: ServerUrl,
    concurrency: Annotated[int, typer.Option(min=1, help="UOWs worked on at once.")] = 1,
    heartbeat_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between heartbeats while a handler runs.")
    ] = 10.0,
    max_idle: Annotated[
        float, typer.Option(min=0.05, help="Longest wait between checkouts when idle (seconds).")
    ] = 5.0,
    max_uows: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many UOWs (default: never).")
    ] = None,
    timeout: Timeout = 30.0,
) -> None:
    """Work on the UOWs of a role with a Python handler until SIGTERM or Ctrl-C.

    Each UOW is checked out, heartbeated while the handler runs, then submitted with what
    the handler returned, or failed with the message of the exception it raised. On
    SIGTERM the worker finishes the UOWs it holds, submits them and exits 0.
    """
    from chameleon_workflow.worker import Worker, WorkerOptions, load_handler  # noqa: PLC0415 - only when it runs

    with handled():
        function = load_handler(handler)
        options = WorkerOptions(
            role=role,
            concurrency=concurrency,
            heartbeat_s=heartbeat_interval,
            idle_max_s=max_idle,
            idle_min_s=min(0.2, max_idle),
            max_uows=max_uows,
        )
        token = _actor_token()
        running = Worker(lambda: _client(server_url, token, timeout), function, options)
        _log_to_stderr()
        previous = _on_signals(running.stop)
        try:
            stats = running.run()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        errors.print(
            shown(
                f"chameleon worker: {stats.submitted} submitted, {stats.failed} failed, "
                f"{stats.refused} refused" + (" (stopped by a signal)" if running.stopping else "")
            ),
            highlight=False,
        )


def mcp(
    server_url: ServerUrl,
    transport: Annotated[
        str, typer.Option(help="stdio (one agent, its token from the environment) or http.")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="Interface for --transport http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for --transport http.")] = 8765,
    timeout: Timeout = 30.0,
) -> None:
    """Serve the engine to AI agents over the Model Context Protocol.

    With stdio (the default) the agent's token is CHAMELEON_ACTOR_TOKEN; over http each
    request carries its agent's token as ``Authorization: Bearer`` (path /mcp).
    """
    from chameleon_workflow.agents import build_server  # noqa: PLC0415 - pulls in the MCP SDK
    from chameleon_workflow.agents.mount import per_request_clients  # noqa: PLC0415 - same

    with handled():
        if transport not in ("stdio", "http"):
            raise ConfigurationError(f"--transport {transport!r}: choose stdio or http")
        auditor_token = os.environ.get("CHAMELEON_AUDITOR_TOKEN") or None
        auditor = _client(server_url, auditor_token, timeout) if auditor_token else None
        if transport == "stdio":
            agent = _client(server_url, _actor_token(), timeout)
            build_server(lambda _ctx: agent, auditor).run("stdio")
            return
        server = build_server(per_request_clients(server_url, timeout), auditor)
        with _signals_end_quietly():
            server.run("streamable-http", host=host, port=port)


class _SignalledError(Exception):
    """SIGTERM or SIGINT arrived; uvicorn re-raises the signal once it has shut down."""


@contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """Turn the signal uvicorn re-raises after its graceful shutdown into a clean exit 0."""

    def raised(signum: int, _: FrameType | None) -> None:
        raise _SignalledError(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, raised) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except _SignalledError as exc:
        errors.print(f"chameleon mcp: stopped by {exc}", highlight=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _actor_token() -> str:
    token = os.environ.get("CHAMELEON_ACTOR_TOKEN", "").strip()
    if not token:
        raise ConfigurationError("CHAMELEON_ACTOR_TOKEN is not set (the actor's bearer token)")
    return token


def _client(server_url: str, token: str | None, timeout: float) -> ChameleonClient:
    from chameleon_workflow.client.api import ChameleonClient  # noqa: PLC0415 - see above

    return ChameleonClient(server_url, token, timeout_s=timeout)


def _log_to_stderr() -> None:
    class Shown(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.print(shown(f"worker: {record.getMessage()}"), highlight=False)

    logger = logging.getLogger("chameleon_workflow.worker")
    logger.addHandler(Shown())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _on_signals(stop: Callable[[], None]) -> dict[int, Any]:
    def stopping(signum: int, _: FrameType | None) -> None:
        errors.print(
            f"chameleon worker: {signal.Signals(signum).name}: finishing the UOWs held",
            highlight=False,
        )
        stop()

    return {sig: signal.signal(sig, stopping) for sig in (signal.SIGTERM, signal.SIGINT)}
