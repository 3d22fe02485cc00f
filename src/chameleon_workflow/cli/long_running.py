"""The long-running commands: the HTTP server and the benchmark.

Both import their heavy modules (FastAPI, uvicorn, the benchmarks) only when they run, so
``chameleon --help`` and the everyday commands start fast.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from chameleon_workflow.cli.common import EXIT_ERROR, UrlOption, errors, handled, size_option

if TYPE_CHECKING:
    from fastapi import FastAPI

    from chameleon_workflow.server.settings import ServerSettings


def serve(
    database_url: UrlOption = None,
    host: Annotated[
        str | None,
        typer.Option(
            envvar="CHAMELEON_HOST",
            help="Interface to listen on (default 127.0.0.1).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            envvar="CHAMELEON_PORT",
            help="TCP port (default 8000).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API until SIGTERM or Ctrl-C (migrates the database first).

    The admin token comes from CHAMELEON_ADMIN_TOKEN only, else one is generated and shown.
    """
    # Never an --admin-token option: the command line is visible to every local user.
    from chameleon_workflow.server.run import serve as run_server  # noqa: PLC0415 - pulls in FastAPI and uvicorn
    from chameleon_workflow.server.settings import load_server_settings  # noqa: PLC0415 - see above

    with handled(), _stopped_by_signals():
        settings = load_server_settings(database_url=database_url, host=host, port=port)
        try:
            run_server(settings=settings, extend=_with_mcp)
        except SystemExit as exc:  # uvicorn exits 1 when it cannot start (port in use)
            if exc.code in (0, None):
                return
            errors.print("[bold red]error:[/] the server could not start (see above)")
            raise typer.Exit(EXIT_ERROR) from None


def _with_mcp(app: FastAPI, base_url: str, settings: ServerSettings) -> None:
    """Serve the MCP tools for AI agents at /mcp of the API's own server (docs/workers.md)."""
    from chameleon_workflow.agents.mount import mount_mcp  # noqa: PLC0415 - pulls in the MCP SDK

    token = settings.auditor_token
    mount_mcp(app, base_url, token.get_secret_value() if token else None, settings.host)


class _StoppedError(Exception):
    """SIGTERM or SIGINT arrived; uvicorn re-raises the signal once it has shut down."""


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGINT into a clean exit 0 after uvicorn's graceful shutdown."""

    def stop(signum: int, _: FrameType | None) -> None:
        raise _StoppedError(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except _StoppedError as exc:
        errors.print(f"chameleon: stopped by {exc}", highlight=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def benchmark(
    postgres: Annotated[
        str | None, typer.Option(help="PostgreSQL server URL; a scratch database is used.")
    ] = None,
    rows: Annotated[int, size_option("Rows per flush benchmark.", minimum=100)] = 20_000,
    saves: Annotated[int, size_option("save_uow() calls per round.")] = 2_000,
    rounds: Annotated[int, size_option("Rounds per figure (the best is shown).")] = 3,
    workers: Annotated[int, size_option("Processes of the PostgreSQL multi-worker figure.")] = 4,
    verify_uows: Annotated[int, size_option("UOWs in the verification benchmark.")] = 2_000,
    verify_rows: Annotated[int, size_option("History rows per verified UOW.")] = 50,
    engine_steps: Annotated[int, size_option("Checkout + submit steps per engine figure.")] = 200,
    server_clients: Annotated[
        int, size_option("Concurrent HTTP clients of the server figures.")
    ] = 4,
    server_seconds: Annotated[
        int,
        size_option("Seconds of HTTP load per back end (0 skips the server figures).", minimum=0),
    ] = 10,
    checkpoint_rows: Annotated[
        int, size_option("New rows sealed by the checkpoint figure.")
    ] = 20_000,
    archive_uows: Annotated[
        int, size_option("Demo invoices driven, then archived, by the archive figures.")
    ] = 300,
    console_uows: Annotated[
        int, size_option("UOWs the console page figures are measured on.")
    ] = 100_000,
    peers: Annotated[
        bool,
        typer.Option(
            "--peers", help="Also measure the peer libraries side by side (the peers extra)."
        ),
    ] = False,
) -> None:
    """Measure the hot paths against the raw driver on SQLite (and PostgreSQL if given).

    Same options as python -m chameleon_workflow.benchmarks (docs/performance.md).
    """
    from chameleon_workflow.benchmarks import runner as bench  # noqa: PLC0415 - heavy, only needed here

    sizes = {
        "--rows": rows,
        "--saves": saves,
        "--rounds": rounds,
        "--workers": workers,
        "--verify-uows": verify_uows,
        "--verify-rows": verify_rows,
        "--engine-steps": engine_steps,
        "--server-clients": server_clients,
        "--server-seconds": server_seconds,
        "--checkpoint-rows": checkpoint_rows,
        "--archive-uows": archive_uows,
        "--console-uows": console_uows,
    }
    argv = [part for option, value in sizes.items() for part in (option, str(value))]
    argv += ["--postgres", postgres] if postgres else []
    with handled():
        raise typer.Exit(bench.main(argv + (["--peers"] if peers else [])))
