"""The pilot-oversight part of the status battery: a purchasing instance and its requests.

``setup_oversight`` makes an instance with the purchase-order workflow, an agent holding
every working role and a pilot, and leaves UOWs in the states the routes need: two
orders held for the pilot, a credit-note line a guardian refused (its order still waiting
at the join) and an order the agent holds. ``oversight_statuses`` then reaches every
status the eight oversight routes declare that a request can provoke on demand.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Protocol

import httpx
from http_world import bearer

from chameleon_workflow.testing import checked_json

PURCHASE_ORDER = (files("chameleon_workflow") / "examples" / "purchase_order.yaml").read_text()
AGENT_ROLES = ("split", "check_line", "approval", "buyer")
#: The oversight actions: a UOW action's path and the body field it requires.
UOW_ACTIONS = {
    "approve": "reasoning",
    "reject": "reason",
    "waive": "justification",
    "clarification": "question",
    "answer": "answer",
}


class Expecting(Protocol):
    """What the battery offers: one request, its status insisted on and noted."""

    def expect(
        self, status: int, method: str, path: str, who: str | None, **kwargs: Any
    ) -> httpx.Response:
        """Send one request and insist on its status."""
        ...


class Purchasing:
    """An agent and a pilot of one purchasing instance, moving orders over HTTP."""

    def __init__(self, http: httpx.Client, admin: str) -> None:
        """Create the instance, import the workflow, register the agent and the pilot."""
        self.http = http
        header = bearer(admin)
        created = http.post("/instances", json={"name": "purchasing"}, headers=header)
        self.instance = checked_json(created)["id"]
        body = {"instance": self.instance, "yaml": PURCHASE_ORDER}
        checked_json(http.post("/workflows", json=body, headers=header))
        self.tokens: dict[str, str] = {}
        for kind, key in (("AI_AGENT", "agent"), ("PILOT", "pilot")):
            actor = {"instance_id": self.instance, "identity_key": key, "name": key}
            answer = http.post("/actors", json={**actor, "actor_type": kind}, headers=header)
            made = checked_json(answer)
            self.tokens[key] = made["token"]
            roles = AGENT_ROLES if kind == "AI_AGENT" else ()
            for role in roles:
                url = f"/actors/{made['actor_id']}/roles"
                checked_json(http.post(url, json={"role": role}, headers=header))

    def order(self, po_number: str, line_totals: list[int]) -> str:
        """Instantiate an order with one line per total; return its id."""
        lines = [
            {"sku": f"S{n}", "quantity": 1, "unit_price": t} for n, t in enumerate(line_totals)
        ]
        attributes = {"po_number": po_number, "currency": "EUR", "line_items": lines}
        body = {"workflow": "purchase_order", "attributes": attributes}
        url = f"/instances/{self.instance}/uows"
        uow: str = checked_json(self.http.post(url, json=body, headers=self.agent))["id"]
        return uow

    @property
    def agent(self) -> dict[str, str]:
        """The agent's authorization header."""
        return bearer(self.tokens["agent"])

    def checkout(self, role: str) -> str | None:
        """Check out at a role as the agent; return the UOW's id, or None when none waits."""
        answer = self.http.post(f"/roles/{role}/checkout", headers=self.agent)
        if answer.status_code == 204:
            return None
        return str(checked_json(answer)["uow_id"])

    def submit(self, uow: str | None, attributes: dict[str, Any] | None = None) -> str:
        """Submit a UOW the agent holds; return its new status."""
        assert uow is not None
        body = {"attributes": attributes or {}}
        answer = self.http.post(f"/uows/{uow}/submit", json=body, headers=self.agent)
        status: str = checked_json(answer)["status"]
        return status

    def held(self, po_number: str, total: int) -> str:
        """Take a one-line order through split, line check and join to the pilot's hold."""
        order = self.order(po_number, [total])
        self.submit(self.checkout("split"))
        self.submit(self.checkout("check_line"), {"line_total": total})
        self.submit(self.checkout("approval"))  # closes the line; the join releases the order
        assert self.checkout("approval") == order
        assert self.submit(order, {"total": total}) == "PENDING_PILOT_APPROVAL"
        return order

    def refused_line(self) -> str:
        """Split a two-line credit note; the guardian refuses the first line checked."""
        self.order("CN-1", [-50, -50])
        self.submit(self.checkout("split"))
        line = self.checkout("check_line")
        self.submit(line, {"line_total": -50})
        assert self.checkout("approval") is None  # refused by line_check: FAILED
        assert line is not None
        return line


def setup_oversight(http: httpx.Client, admin: str) -> tuple[dict[str, str], dict[str, str]]:
    """Return the ids (instance, held orders, refused line, asked order) and the tokens."""
    world = Purchasing(http, admin)
    ids = {"po": world.instance, "approve": world.held("PO-1", 12000)}
    ids["reject"] = world.held("PO-2", 15000)
    ids["waive"] = world.refused_line()
    ids["clarification"] = world.order("PO-3", [500])
    assert world.checkout("split") == ids["clarification"]
    ids["answer"] = ids["clarification"]
    return ids, world.tokens


def oversight_statuses(b: Expecting, ids: dict[str, str], ghost: str, limit: int) -> None:
    """Reach every status the oversight routes declare, except the derived ones."""
    malformed = {"content": b"{", "headers": {"content-type": "application/json"}}
    too_big = {"content": b" " * (limit + 1), "headers": {"content-type": "application/json"}}
    queue = f"/instances/{ids['po']}/pilot-queue"
    b.expect(200, "GET", queue, "pilot")
    b.expect(401, "GET", queue, None)
    b.expect(403, "GET", queue, "agent")
    b.expect(422, "GET", "/instances/not-an-id/pilot-queue", "pilot")

    for action, field in UOW_ACTIONS.items():
        uow, body = ids[action], {field: f"the {field}"}
        actor = "agent" if action == "clarification" else "pilot"
        outsider = "pilot" if action == "clarification" else "agent"
        b.expect(400, "POST", f"/uows/{uow}/{action}", actor, **malformed)
        b.expect(401, "POST", f"/uows/{uow}/{action}", None, json=body)
        b.expect(413, "POST", f"/uows/{uow}/{action}", actor, **too_big)
        b.expect(403, "POST", f"/uows/{uow}/{action}", outsider, json=body)
        b.expect(404, "POST", f"/uows/{ghost}/{action}", actor, json=body)
        b.expect(422, "POST", f"/uows/{uow}/{action}", actor, json={field: ""})
        b.expect(422, "POST", "/uows/not-an-id/" + action, actor, json=body)
        b.expect(200, "POST", f"/uows/{uow}/{action}", actor, json=body)
    # Engine refusals: nothing waits for the pilot any more, nothing was refused.
    b.expect(422, "POST", f"/uows/{ids['approve']}/approve", "pilot", json={"reasoning": "x"})
    b.expect(422, "POST", f"/uows/{ids['answer']}/answer", "pilot", json={"answer": "x"})
    b.expect(422, "POST", f"/uows/{ids['reject']}/waive", "pilot", json={"justification": "x"})

    for switch in ("pause", "resume"):
        path, body = f"/instances/{ids['po']}/{switch}", {"reasoning": "audit"}
        b.expect(400, "POST", path, "pilot", **malformed)
        b.expect(401, "POST", path, None, json=body)
        b.expect(413, "POST", path, "pilot", **too_big)
        b.expect(403, "POST", path, "agent", json=body)
        b.expect(422, "POST", path, "pilot", json={"reasoning": ""})
        b.expect(422, "POST", f"/instances/not-an-id/{switch}", "pilot", json=body)
        b.expect(200, "POST", path, "pilot", json=body)
        b.expect(422, "POST", path, "pilot", json=body)  # already paused, already running
