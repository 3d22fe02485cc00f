"""``chameleon mcp`` driven by the MCP SDK's own client, against a live server, both back ends."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult
from surface_world import Live, World, live_server, new_world, wait_until

from chameleon_workflow.testing import free_port

TOOLS = {"checkout", "get_uow", "history", "submit", "fail", "heartbeat", "remediate", "verify_uow"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """Run one server per back end for this module's tests."""
    with live_server(request, tmp_path_factory) as running:
        yield running


@pytest.fixture
def world(live: Live) -> World:
    """Give the test its own instance with the invoice workflow and one agent."""
    return new_world(live)


def agent_session(world: World, body: Callable[[Client], Awaitable[Any]], **env: str) -> Any:
    """Spawn ``chameleon mcp`` over stdio as the agent and run ``body`` with a connected client."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "chameleon_workflow", "mcp"],
        env={
            "CHAMELEON_SERVER_URL": world.server.url,
            "CHAMELEON_ACTOR_TOKEN": world.tokens["agent"],
            "PATH": os.environ.get("PATH", ""),
            **env,
        },
    )

    async def run() -> Any:
        async with Client(params, read_timeout_seconds=60) as client:
            return await body(client)

    return asyncio.run(run())


def data(result: CallToolResult) -> dict[str, Any]:
    """Return a successful tool result's structured content."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def test_an_agent_drives_an_invoice_to_completed_over_mcp(world: World) -> None:
    """Check out, read, heartbeat and submit at each step: COMPLETED, under the agent's name."""
    uow_id = world.invoice("agent", invoice_id="M-1", amount=300, vendor="ACME")

    async def walk(client: Client) -> dict[str, Any]:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert listed == TOOLS
        claimed = data(await client.call_tool("checkout", {"role": "triage"}))["uow"]
        assert (claimed["uow_id"], claimed["status"]) == (uow_id, "ACTIVE")
        read = data(await client.call_tool("get_uow", {"uow_id": uow_id}))
        assert read["attributes"] == {"invoice_id": "M-1", "amount": 300, "vendor": "ACME"}
        beat = data(await client.call_tool("heartbeat", {"uow_id": uow_id}))
        assert beat["held_by"] == world.actor_ids["agent"]
        args = {"uow_id": uow_id, "attributes": {"risk": "low"}, "reasoning": "small, known vendor"}
        routed = data(await client.call_tool("submit", args))
        assert (routed["status"], routed["interaction"]) == ("PENDING", "ready_for_approval")
        data(await client.call_tool("checkout", {"role": "approval"}))
        args = {"uow_id": uow_id, "reasoning": "approved by the agent"}
        done = data(await client.call_tool("submit", args))
        assert (done["status"], done["attributes"]["risk"]) == ("COMPLETED", "low")
        assert data(await client.call_tool("checkout", {"role": "approval"})) == {"uow": None}
        history = data(await client.call_tool("history", {"uow_id": uow_id}))["entries"]
        return {
            "history": history,
            "verify": data(await client.call_tool("verify_uow", {"uow_id": uow_id})),
        }

    seen = agent_session(world, walk, CHAMELEON_AUDITOR_TOKEN=world.auditor_token)
    assert [e["new_status"] for e in seen["history"]][-1] == "COMPLETED"
    assert {e["actor"] for e in seen["history"][1:]} == {"Agent"}
    assert seen["history"][-1]["reasoning"] == "approved by the agent"
    assert (seen["verify"]["ok"], seen["verify"]["findings"]) == (True, [])
    assert world.admin.get_uow(uow_id).status == "COMPLETED"


def test_tool_errors_are_structured_problems(world: World) -> None:
    """Refusals come back as isError results carrying the problem, never a traceback."""
    uow_id = world.invoice("agent", invoice_id="M-2", amount=5, vendor="V")

    async def refused(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("checkout", {"role": "auditing"}),
            await client.call_tool("submit", {"uow_id": uow_id, "reasoning": "not held"}),
            await client.call_tool("get_uow", {"uow_id": "not-a-uuid"}),
            await client.call_tool("verify_uow", {"uow_id": uow_id}),
        ]

    results = agent_session(world, refused)
    assert all(result.is_error for result in results)
    problems = [result.structured_content for result in results]
    assert [(p["status"], p["type"]) for p in problems] == [
        (404, "urn:chameleon:problem:not-found"),
        (403, "urn:chameleon:problem:forbidden"),
        (422, problems[2]["type"]),
        (403, "urn:chameleon:problem:forbidden"),
    ]
    assert problems[0]["detail"] == f"no role named 'auditing' in instance {world.instance_id}"
    assert results[1].content[0].text.startswith("Forbidden: actor 'agent'")  # type: ignore[union-attr]
    assert all("Traceback" not in str(result.content) for result in results)


def test_an_agent_remediates_a_failed_invoice_over_mcp(world: World) -> None:
    """Failed by the agent, remediated with a fix by the agent, then completed: all over MCP."""
    uow_id = world.invoice("agent", invoice_id="M-3", amount=80)

    async def walk(client: Client) -> str:
        data(await client.call_tool("checkout", {"role": "triage"}))
        failed = data(await client.call_tool("fail", {"uow_id": uow_id, "reason": "no vendor"}))
        assert failed["status"] == "FAILED"
        fix = {"uow_id": uow_id, "attributes": {"vendor": "ACME"}, "reasoning": "vendor found"}
        assert data(await client.call_tool("remediate", fix))["status"] == "PENDING"
        for role in ("triage", "approval"):
            data(await client.call_tool("checkout", {"role": role}))
            after = data(await client.call_tool("submit", {"uow_id": uow_id}))
        return str(after["status"])

    assert agent_session(world, walk) == "COMPLETED"
    assert world.admin.verify_uow(uow_id).ok


def test_agents_share_the_http_transport_each_with_its_token(world: World, tmp_path: Path) -> None:
    """Over streamable HTTP each request's bearer token is its agent; none is a 401 problem."""
    port = free_port()
    log = tmp_path / "mcp.log"
    env = {**os.environ, "CHAMELEON_SERVER_URL": world.server.url}
    command = [sys.executable, "-m", "chameleon_workflow", "mcp", "--transport", "http"]
    with log.open("wb") as out:
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=out, stderr=out)
    endpoint = f"http://127.0.0.1:{port}/mcp"
    uow_id = world.invoice("agent", invoice_id="M-4", amount=10, vendor="V")

    async def as_agent(token: str | None) -> CallToolResult:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = httpx2.AsyncClient(headers=headers)
        async with http, Client(streamable_http_client(endpoint, http_client=http)) as client:
            return await client.call_tool("checkout", {"role": "triage"})

    try:
        wait_until(lambda: _listening(port), what="the MCP HTTP server")
        anonymous = asyncio.run(as_agent(None))
        claimed = asyncio.run(as_agent(world.tokens["agent"]))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    assert anonymous.is_error
    assert anonymous.structured_content == {
        "type": "urn:chameleon:problem:not-authenticated",
        "title": "Unauthorized",
        "status": 401,
        "detail": "send your actor token as Authorization: Bearer <token>",
    }
    assert data(claimed)["uow"]["uow_id"] == uow_id
    assert str(world.admin.get_uow(uow_id).held_by) == world.actor_ids["agent"]
    assert "Traceback" not in log.read_text()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
