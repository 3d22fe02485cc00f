"""The MCP server inside ``chameleon serve``: streamable HTTP at ``/mcp`` beside the API.

Each MCP request carries its agent's actor token as ``Authorization: Bearer``; the tools
call the API of the very server they run in over loopback HTTP, through the client, so
an agent's work goes through the same authentication, limits and ledger as any other
client's. The MCP SDK runs the (synchronous) tools in worker threads, so those calls
never wait on the event loop that answers them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from chameleon_workflow.agents.tools import build_server
from chameleon_workflow.client.api import ChameleonClient
from chameleon_workflow.errors import NotAuthenticatedError

#: Where the MCP endpoint is served.
MCP_PATH = "/mcp"


def per_request_clients(server_url: str, timeout_s: float) -> Callable[[Any], ChameleonClient]:
    """Return a client source that acts as the agent whose bearer token the request carries."""
    clients: dict[str, ChameleonClient] = {}

    def source(ctx: Any) -> ChameleonClient:
        headers = getattr(ctx, "headers", None) or {}
        scheme, _, token = str(headers.get("authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticatedError("send your actor token as Authorization: Bearer <token>")
        token = token.strip()
        if token not in clients:
            clients[token] = ChameleonClient(server_url, token, timeout_s=timeout_s)
        return clients[token]

    return source


def mount_mcp(
    app: FastAPI, server_url: str, auditor_token: str | None, host: str, timeout_s: float = 30.0
) -> None:
    """Serve the MCP tools at ``/mcp`` of ``app``, their API calls going to ``server_url``."""
    auditor = (
        ChameleonClient(server_url, auditor_token, timeout_s=timeout_s) if auditor_token else None
    )
    server = build_server(per_request_clients(server_url, timeout_s), auditor)
    mcp_app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    app.router.routes.extend(mcp_app.routes)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[Any]:
        async with outer(running) as state, server.session_manager.run():
            yield state

    app.router.lifespan_context = lifespan
