"""`chameleon serve` answers AI agents over MCP (streamable HTTP at /mcp) beside the API."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult
from test_cli_serve import ADMIN_TOKEN, LOOPBACK, Served, _serve_args

from chameleon_workflow.testing import free_port, setup_invoice


def test_serve_answers_mcp_agents_with_their_own_tokens(database_url: str, tmp_path: Path) -> None:
    """An agent checks out work through /mcp under its identity; no token is a 401 problem."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    env = {"CHAMELEON_ADMIN_TOKEN": ADMIN_TOKEN}
    if not database_url.startswith("sqlite"):
        env["CHAMELEON_LEDGER_KEY"] = os.environ["CHAMELEON_LEDGER_KEY"]
    served = Served(tmp_path, _serve_args(database_url, port), env)
    try:
        served.wait_healthy(url)
        with httpx.Client(base_url=url, timeout=30.0) as client:
            cast = setup_invoice(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, actors=1)
            body = {"workflow": "invoice_approval", "attributes": {"invoice_id": "M", "amount": 3}}
            created = client.post(
                f"/instances/{cast.instance_id}/uows",
                json=body,
                headers={"Authorization": f"Bearer {cast.tokens[0]}"},
            )
        assert created.status_code == 201, created.text

        async def checkout(token: str | None) -> CallToolResult:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            http = httpx2.AsyncClient(headers=headers, timeout=60)
            async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp:
                return await mcp.call_tool("checkout", {"role": "triage"})

        anonymous = asyncio.run(checkout(None))
        claimed = asyncio.run(checkout(cast.tokens[0]))
    finally:
        status = served.stop(signal.SIGTERM)
    log = served.stderr()
    assert status == 0, log
    assert anonymous.is_error
    assert anonymous.structured_content is not None
    assert anonymous.structured_content["status"] == 401
    assert not claimed.is_error, claimed.content
    assert claimed.structured_content is not None
    uow = claimed.structured_content["uow"]
    assert (uow["uow_id"], uow["held_by"]) == (created.json()["id"], str(cast.actor_ids[0]))
    assert "Traceback" not in log
