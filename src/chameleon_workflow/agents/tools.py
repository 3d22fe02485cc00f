"""The MCP server for AI agents: the work routes of the HTTP API as MCP tools.

Each tool makes one or two calls through ``chameleon_workflow.client`` with the agent's
own actor token, so everything an agent does lands in the ledger under its identity. An
error comes back as an ``isError`` result whose structured content is the server's
problem (type, title, status, detail), never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from chameleon_workflow.client.api import ChameleonClient
from chameleon_workflow.client.models import Problem
from chameleon_workflow.client.problems import PREFIX
from chameleon_workflow.errors import ChameleonError, NotAuthenticatedError, ServerUnreachableError

#: How a tool finds the client to act through: one per agent (stdio), or per request (HTTP).
ClientSource = Callable[[Context], ChameleonClient]

INSTRUCTIONS = (
    "Chameleon workflow engine. Check out a unit of work (UOW) for a role you hold, read it "
    "and its history, then submit it with attribute changes and your reasoning, or fail it "
    "with a reason. Heartbeat while you work on it for long. Every action is recorded in a "
    "tamper-evident ledger under your identity."
)


def ok(value: Any) -> CallToolResult:
    """Return a successful result: the value as JSON text and as structured content."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    structured = data if isinstance(data, dict) else {"result": data}
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(structured, ensure_ascii=False))],
        structured_content=structured,
    )


#: Errors raised before any answer from the HTTP API, as the problem an agent is shown.
LOCAL_PROBLEMS: tuple[tuple[type[ChameleonError], int, str, str], ...] = (
    (NotAuthenticatedError, 401, "not-authenticated", "Unauthorized"),
    (ServerUnreachableError, 502, "server-unreachable", "Bad Gateway"),
    (ChameleonError, 500, "internal-error", "Internal Server Error"),
)


def problem_of(error: ChameleonError) -> Problem:
    """Return the problem the HTTP API answered, or one for an error raised on this side."""
    answered = getattr(error, "problem", None)
    if isinstance(answered, Problem):
        return answered
    status, slug, title = next(
        (s, k, t) for kind, s, k, t in LOCAL_PROBLEMS if isinstance(error, kind)
    )
    return Problem(type=f"{PREFIX}{slug}", title=title, status=status, detail=str(error))


def refused(error: ChameleonError) -> CallToolResult:
    """Return an error result carrying the problem (type, title, status, detail)."""
    problem = problem_of(error)
    body = problem.model_dump(mode="json", exclude_none=True)
    text = f"{problem.title}: {problem.detail}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=body, is_error=True
    )


def build_server(source: ClientSource, auditor: ChameleonClient | None = None) -> MCPServer:
    """Build the MCP server; ``auditor`` (an auditor-token client) answers verification."""
    server = MCPServer("chameleon", instructions=INSTRUCTIONS, log_level="WARNING")

    def act(ctx: Context, call: Callable[[ChameleonClient], Any]) -> CallToolResult:
        try:
            return ok(call(source(ctx)))
        except ChameleonError as exc:
            return refused(exc)

    @server.tool()
    def checkout(role: str, ctx: Context) -> CallToolResult:
        """Claim the oldest UOW waiting for a role you hold (name or id); null when none waits."""
        return act(ctx, lambda client: {"uow": _dumped(client.checkout(role))})

    @server.tool()
    def get_uow(uow_id: str, ctx: Context) -> CallToolResult:
        """Read a UOW: status, interaction, holder, version and current attributes."""
        return act(ctx, lambda client: client.get_uow(uow_id))

    @server.tool()
    def history(uow_id: str, ctx: Context) -> CallToolResult:
        """Read a UOW's ledger in the order of record: transitions, reasoning, changes, hashes."""
        return act(ctx, lambda client: {"entries": [_dumped(e) for e in client.history(uow_id)]})

    @server.tool()
    def submit(
        uow_id: str,
        ctx: Context,
        attributes: dict[str, Any] | None = None,
        reasoning: str | None = None,
    ) -> CallToolResult:
        """Finish your step on a UOW you hold: attribute changes (null removes one) and why."""

        def call(client: ChameleonClient) -> Any:
            held = client.get_uow(uow_id)  # the version settles a submit whose answer is lost
            return client.submit(held, attributes, reasoning)

        return act(ctx, call)

    @server.tool()
    def fail(uow_id: str, reason: str, ctx: Context) -> CallToolResult:
        """Report a UOW you hold as failed, with the reason; it goes to remediation."""
        return act(ctx, lambda client: client.fail(uow_id, reason))

    @server.tool()
    def heartbeat(uow_id: str, ctx: Context) -> CallToolResult:
        """Tell the engine you are still working on a UOW you hold (it is not reclaimed)."""
        return act(ctx, lambda client: client.heartbeat(uow_id))

    @server.tool()
    def remediate(
        uow_id: str,
        ctx: Context,
        attributes: dict[str, Any] | None = None,
        to_interaction: str | None = None,
        reasoning: str | None = None,
    ) -> CallToolResult:
        """Send a FAILED UOW back into the flow (you must hold the workflow's remediation role)."""
        return act(
            ctx, lambda client: client.remediate(uow_id, attributes, to_interaction, reasoning)
        )

    @server.tool()
    def verify_uow(uow_id: str, ctx: Context) -> CallToolResult:
        """Verify a UOW's ledger: attributes against its hash, its chain, sequences and head."""
        return act(ctx, lambda client: (auditor or client).verify_uow(uow_id))

    return server


def _dumped(value: BaseModel | None) -> dict[str, Any] | None:
    return None if value is None else value.model_dump(mode="json")
