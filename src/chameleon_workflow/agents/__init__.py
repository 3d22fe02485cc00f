"""The MCP server through which AI agents drive UOWs (``chameleon mcp``); docs/workers.md."""

from __future__ import annotations

from chameleon_workflow.agents.tools import ClientSource, build_server

__all__ = ["ClientSource", "build_server"]
