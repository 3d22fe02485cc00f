"""The OpenAPI document tells the truth: every documented status of every route is returned.

A battery of requests reaches each documented status of each operation on a live server
(the client of ``http_world`` also fails on any status an operation does not document).
The few that a test cannot provoke on demand are derived from the error mapping and
listed in ``DERIVED`` with the reason; the test fails when the document and the
exercised-or-derived statuses differ in either direction.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from http_world import AUDITOR_TOKEN, Documented, bearer, served
from oversight_world import UOW_ACTIONS, oversight_statuses, setup_oversight

from chameleon_workflow.testing import INVOICE_YAML, setup_invoice

LIMIT = 20_000
METRICS_TOKEN = "metrics-" + "m2" * 16
ENV = {"CHAMELEON_MAX_REQUEST_BYTES": str(LIMIT), "CHAMELEON_METRICS_TOKEN": METRICS_TOKEN}
#: Every route that reads or writes the database answers 503 when it is unreachable
#: (tests/faults provokes it); a UOW change can lose its compare-and-set race (409,
#: tests/integration/test_races.py); a sealed checkpoint is read in test_server_checkpoints.
#: A pilot's action moves UOWs through the same compare-and-set write, which also refuses
#: a UOW whose attributes drifted from their hash (409 state-drift, test_tamper.py).
DATABASE_DOWN = 503
DERIVED: dict[tuple[str, str], set[int]] = {
    ("POST", "/roles/{role}/checkout"): {409},
    ("POST", "/uows/{uow_id}/submit"): {409},
    ("POST", "/uows/{uow_id}/fail"): {409},
    ("POST", "/uows/{uow_id}/heartbeat"): {409},
    **{("POST", f"/uows/{{uow_id}}/{action}"): {409} for action in UOW_ACTIONS},
    ("POST", "/instances/{instance_id}/pause"): {409},
    ("POST", "/instances/{instance_id}/resume"): {409},
    ("GET", "/checkpoints/latest"): {200},
    # A restore needs an archived segment: tests/integration/test_archive_server.py.
    ("POST", "/archive/{segment_id}/restore"): {200},
    # 201 needs a finished UOW, which this world keeps none of: test_server_redact.py.
    ("POST", "/uows/{uow_id}/redactions"): {201},
}
NO_DATABASE = {("GET", "/metrics")}
MALFORMED = {"content": b"{", "headers": {"content-type": "application/json"}}
TOO_BIG = {"content": b" " * (LIMIT + 1), "headers": {"content-type": "application/json"}}


class Battery:
    """Sends requests as one caller or another and notes each (operation, status) seen."""

    def __init__(self, http: httpx.Client, documented: Documented, tokens: dict[str, str]) -> None:
        """Keep the client, the document and the token of each caller by name."""
        self.http, self.documented, self.tokens = http, documented, tokens
        self.seen: dict[tuple[str, str], set[int]] = {}

    def expect(
        self, status: int, method: str, path: str, who: str | None, **kwargs: Any
    ) -> httpx.Response:
        """Send one request and insist on its status."""
        headers = {**kwargs.pop("headers", {}), **(bearer(self.tokens[who]) if who else {})}
        response = self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        operation = self.documented.operation_of(method, response.request.url.path)
        assert operation is not None, f"{method} {path} is not documented"
        self.seen.setdefault(operation, set()).add(status)
        return response


def test_documented_statuses_are_the_returned_ones(database_url: str, tmp_path: Path) -> None:
    """Each operation returns every status it documents, and documents every status returned."""
    with served(database_url, tmp_path, ENV) as (server, http):
        document = http.get("/openapi.json").json()
        documented = Documented(document)
        admin = server.admin_token
        world = setup_world(http, admin)
        run(
            Battery(http, documented, {**world.tokens, "admin": admin, "auditor": AUDITOR_TOKEN}),
            world,
        )
        battery_seen = world.battery.seen if world.battery else {}
        missing, extra = [], []
        for operation, codes in documented.operations.items():
            expected = set(codes)
            got = set(battery_seen.get(operation, set())) | DERIVED.get(operation, set())
            if operation not in NO_DATABASE and DATABASE_DOWN in codes:
                got.add(DATABASE_DOWN)
            missing += [(operation, c) for c in sorted(expected - got)]
            extra += [(operation, c) for c in sorted(got - expected)]
        assert (missing, extra) == ([], [])


class World:
    """The ids and tokens the battery works with."""

    def __init__(self) -> None:
        """Start empty; ``setup_world`` fills it in."""
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        #: The purchasing instance's ids (``oversight_world.setup_oversight``).
        self.oversight: dict[str, str] = {}
        self.battery: Battery | None = None


def setup_world(http: httpx.Client, admin: str) -> World:
    """Two invoice instances, a fixer and a spare actor, UOWs in every state needed, and
    a purchasing instance with an agent, a pilot and orders waiting for the pilot."""
    world = World()
    header = bearer(admin)
    home, away = setup_invoice(http, header, actors=1), setup_invoice(http, header, actors=1)
    world.tokens.update(worker=home.tokens[0], other=away.tokens[0])
    world.ids.update(home=home.instance_id, worker=home.actor_ids[0], away_actor=away.actor_ids[0])
    world.ids["home_name"] = http.get(f"/instances/{home.instance_id}", headers=header).json()[
        "name"
    ]
    for key in ("fixer", "spare"):
        body = {
            "instance_id": home.instance_id,
            "identity_key": key,
            "name": key,
            "actor_type": "HUMAN",
        }
        created = http.post("/actors", json=body, headers=header).json()
        world.ids[key], world.tokens[key] = created["actor_id"], created["token"]
    http.post(f"/actors/{world.ids['fixer']}/roles", json={"role": "remediation"}, headers=header)
    http.post(f"/actors/{world.ids['spare']}/roles", json={"role": "manual_review"}, headers=header)
    worker = bearer(world.tokens["worker"])
    invoice = {"workflow": "invoice_approval", "attributes": {"invoice_id": "I", "amount": 5}}
    for name in ("submit", "fail", "beat", "failed", "pending"):
        uow = http.post(f"/instances/{home.instance_id}/uows", json=invoice, headers=worker)
        world.ids[name] = uow.json()["id"]
    for _ in ("submit", "fail", "beat", "failed"):
        http.post("/roles/triage/checkout", headers=worker).raise_for_status()
    http.post(
        f"/uows/{world.ids['failed']}/fail", json={"reason": "x"}, headers=worker
    ).raise_for_status()
    workflows = http.get("/workflows", params={"instance": home.instance_id}, headers=header)
    world.ids["workflow"] = workflows.json()["items"][0]["workflow_id"]
    world.oversight, pilots = setup_oversight(http, admin)
    world.tokens.update(pilots)
    return world


def run(b: Battery, world: World) -> None:
    """Reach every status of every operation that a request can provoke on demand."""
    world.battery = b
    ids, ghost = world.ids, str(uuid.uuid4())
    home, name = ids["home"], ids["home_name"]
    yaml_text = INVOICE_YAML.read_text()

    b.expect(201, "POST", "/instances", "admin", json={"name": "fresh"})
    b.expect(400, "POST", "/instances", "admin", **MALFORMED)
    b.expect(401, "POST", "/instances", None, json={"name": "x"})
    b.expect(403, "POST", "/instances", "worker", json={"name": "x"})
    b.expect(409, "POST", "/instances", "admin", json={"name": name})
    b.expect(413, "POST", "/instances", "admin", **TOO_BIG)
    b.expect(422, "POST", "/instances", "admin", json={"nom": 1})

    b.expect(201, "POST", "/workflows", "admin", json={"instance": "fresh", "yaml": yaml_text})
    b.expect(400, "POST", "/workflows", "admin", **MALFORMED)
    b.expect(401, "POST", "/workflows", None, json={"instance": home, "yaml": yaml_text})
    b.expect(403, "POST", "/workflows", "auditor", json={"instance": home, "yaml": yaml_text})
    b.expect(404, "POST", "/workflows", "admin", json={"instance": "nowhere", "yaml": yaml_text})
    b.expect(409, "POST", "/workflows", "admin", json={"instance": home, "yaml": yaml_text})
    b.expect(413, "POST", "/workflows", "admin", **TOO_BIG)
    b.expect(
        415, "POST", "/workflows", "admin", content="x", headers={"content-type": "text/plain"}
    )
    b.expect(422, "POST", "/workflows", "admin", json={"instance": home, "yaml": "name: x"})

    actor = {"instance_id": name, "identity_key": "new", "name": "N", "actor_type": "HUMAN"}
    b.expect(201, "POST", "/actors", "admin", json=actor)
    b.expect(400, "POST", "/actors", "admin", **MALFORMED)
    b.expect(401, "POST", "/actors", None, json=actor)
    b.expect(403, "POST", "/actors", "worker", json=actor)
    b.expect(404, "POST", "/actors", "admin", json={**actor, "instance_id": "nowhere"})
    b.expect(409, "POST", "/actors", "admin", json=actor)
    b.expect(413, "POST", "/actors", "admin", **TOO_BIG)
    b.expect(422, "POST", "/actors", "admin", json={**actor, "actor_type": "ROBOT"})

    spare = ids["spare"]
    b.expect(201, "POST", f"/actors/{spare}/token", "admin")
    b.expect(401, "POST", f"/actors/{spare}/token", None)
    b.expect(403, "POST", f"/actors/{spare}/token", "worker")
    b.expect(404, "POST", f"/actors/{ghost}/token", "admin")
    b.expect(422, "POST", "/actors/not-an-id/token", "admin")

    b.expect(201, "POST", f"/actors/{spare}/roles", "admin", json={"role": "triage"})
    b.expect(400, "POST", f"/actors/{spare}/roles", "admin", **MALFORMED)
    b.expect(401, "POST", f"/actors/{spare}/roles", None, json={"role": "triage"})
    b.expect(403, "POST", f"/actors/{spare}/roles", "auditor", json={"role": "triage"})
    b.expect(404, "POST", f"/actors/{spare}/roles", "admin", json={"role": "nope"})
    b.expect(413, "POST", f"/actors/{spare}/roles", "admin", **TOO_BIG)
    b.expect(422, "POST", f"/actors/{spare}/roles", "admin", json={})

    b.expect(204, "DELETE", f"/actors/{spare}/roles/manual_review", "admin")
    b.expect(401, "DELETE", f"/actors/{spare}/roles/triage", None)
    b.expect(403, "DELETE", f"/actors/{spare}/roles/triage", "worker")
    b.expect(404, "DELETE", f"/actors/{spare}/roles/manual_review", "admin")
    b.expect(422, "DELETE", "/actors/not-an-id/roles/triage", "admin")

    b.expect(204, "DELETE", f"/actors/{spare}/token", "admin")
    b.expect(401, "DELETE", f"/actors/{spare}/token", None)
    b.expect(403, "DELETE", f"/actors/{spare}/token", "auditor")
    b.expect(404, "DELETE", f"/actors/{ghost}/token", "admin")
    b.expect(422, "DELETE", "/actors/not-an-id/token", "admin")

    start = {"workflow": "invoice_approval", "attributes": {"invoice_id": "J", "amount": 1}}
    b.expect(201, "POST", f"/instances/{name}/uows", "worker", json=start)
    b.expect(400, "POST", f"/instances/{home}/uows", "worker", **MALFORMED)
    b.expect(401, "POST", f"/instances/{home}/uows", None, json=start)
    b.expect(403, "POST", f"/instances/{home}/uows", "other", json=start)
    b.expect(404, "POST", "/instances/nowhere/uows", "admin", json=start)
    b.expect(413, "POST", f"/instances/{home}/uows", "worker", **TOO_BIG)
    b.expect(422, "POST", f"/instances/{home}/uows", "worker", json={"workflow": ""})

    b.expect(200, "POST", "/roles/triage/checkout", "worker")
    b.expect(204, "POST", "/roles/approval/checkout", "worker")
    b.expect(401, "POST", "/roles/triage/checkout", None)
    b.expect(403, "POST", "/roles/triage/checkout", "admin")
    b.expect(404, "POST", "/roles/nope/checkout", "worker")
    b.expect(422, "POST", "/roles/%00/checkout", "worker")

    for action, body in (("submit", {}), ("fail", {"reason": "broken"})):
        uow = ids[action]
        b.expect(200, "POST", f"/uows/{uow}/{action}", "worker", json=body)
        b.expect(400, "POST", f"/uows/{uow}/{action}", "worker", **MALFORMED)
        b.expect(401, "POST", f"/uows/{uow}/{action}", None, json=body)
        b.expect(403, "POST", f"/uows/{uow}/{action}", "other", json=body)
        b.expect(404, "POST", f"/uows/{ghost}/{action}", "worker", json=body)
        b.expect(413, "POST", f"/uows/{uow}/{action}", "worker", **TOO_BIG)
        b.expect(422, "POST", f"/uows/not-an-id/{action}", "worker", json=body)

    failed, held = ids["failed"], ids["beat"]
    b.expect(200, "POST", f"/uows/{failed}/remediate", "fixer", json={"reasoning": "fixed"})
    b.expect(400, "POST", f"/uows/{failed}/remediate", "fixer", **MALFORMED)
    b.expect(401, "POST", f"/uows/{failed}/remediate", None, json={})
    b.expect(403, "POST", f"/uows/{failed}/remediate", "worker", json={})
    b.expect(404, "POST", f"/uows/{ghost}/remediate", "fixer", json={})
    b.expect(409, "POST", f"/uows/{held}/remediate", "fixer", json={})
    b.expect(413, "POST", f"/uows/{failed}/remediate", "fixer", **TOO_BIG)
    b.expect(422, "POST", f"/uows/{failed}/remediate", "fixer", json={"to_interaction": ""})

    b.expect(200, "POST", f"/uows/{held}/heartbeat", "worker")
    b.expect(401, "POST", f"/uows/{held}/heartbeat", None)
    b.expect(403, "POST", f"/uows/{held}/heartbeat", "other")
    b.expect(404, "POST", f"/uows/{ghost}/heartbeat", "worker")
    b.expect(422, "POST", "/uows/not-an-id/heartbeat", "worker")

    oversight_statuses(b, world.oversight, ghost, LIMIT)
    reads(b, world, ghost)


def reads(b: Battery, world: World, ghost: str) -> None:
    """Reach every status of the read, audit and operations routes."""
    ids = world.ids
    held, home = ids["beat"], ids["home"]
    for suffix, reader in (("", "worker"), ("/history", "worker"), ("/verify", "auditor")):
        b.expect(200, "GET", f"/uows/{held}{suffix}", reader)
        b.expect(401, "GET", f"/uows/{held}{suffix}", None)
        b.expect(403, "GET", f"/uows/{held}{suffix}", "other")
        b.expect(404, "GET", f"/uows/{ghost}{suffix}", "admin")
        b.expect(422, "GET", f"/uows/not-an-id{suffix}", "admin")

    b.expect(200, "GET", "/verify", "auditor", params={"instance_id": ids["home_name"]})
    b.expect(401, "GET", "/verify", None)
    b.expect(403, "GET", "/verify", "worker")
    b.expect(404, "GET", "/verify", "admin", params={"instance_id": "nowhere"})
    b.expect(422, "GET", "/verify", "admin", params={"instance_id": "x" * 201})

    b.expect(200, "GET", "/logs", "auditor", params={"instance": home})
    b.expect(401, "GET", "/logs", None)
    b.expect(403, "GET", "/logs", "worker")
    b.expect(404, "GET", "/logs", "admin", params={"instance": "nowhere"})
    b.expect(422, "GET", "/logs", "admin", params={"type": "NOPE"})

    b.expect(200, "GET", "/export", "auditor", params={"what": "admin", "instance": home})
    b.expect(401, "GET", "/export", None)
    b.expect(403, "GET", "/export", "worker")
    b.expect(404, "GET", "/export", "admin", params={"instance": "nowhere"})
    b.expect(422, "GET", "/export", "admin", params={"format": "csv"})

    old = {"before": "2000-01-01T00:00:00Z", "dry_run": True}
    b.expect(200, "POST", "/archive", "admin", json=old)
    b.expect(401, "POST", "/archive", None, json=old)
    b.expect(403, "POST", "/archive", "auditor", json=old)
    b.expect(404, "POST", "/archive", "admin", json={**old, "instance": "nowhere"})
    b.expect(422, "POST", "/archive", "admin", json={"before": "2999-01-01T00:00:00Z"})
    b.expect(400, "POST", "/archive", "admin", **MALFORMED)
    b.expect(413, "POST", "/archive", "admin", **TOO_BIG)

    segment = "/archive/" + "0" * 32 + "/restore"
    b.expect(401, "POST", segment, None)
    b.expect(403, "POST", segment, "auditor")
    b.expect(422, "POST", segment, "admin")  # this server has no archive directory
    redaction = {"key": "invoice_id", "reason": "erasure request"}
    b.expect(400, "POST", f"/uows/{held}/redactions", "admin", **MALFORMED)
    b.expect(401, "POST", f"/uows/{held}/redactions", None, json=redaction)
    b.expect(403, "POST", f"/uows/{held}/redactions", "auditor", json=redaction)
    b.expect(404, "POST", f"/uows/{ghost}/redactions", "admin", json=redaction)
    b.expect(413, "POST", f"/uows/{held}/redactions", "admin", **TOO_BIG)
    b.expect(422, "POST", f"/uows/{held}/redactions", "admin", json=redaction)

    b.expect(401, "GET", "/checkpoints/latest", None)
    b.expect(403, "GET", "/checkpoints/latest", "worker")
    b.expect(404, "GET", "/checkpoints/latest", "auditor")

    b.expect(200, "GET", "/metrics", None, headers=bearer(METRICS_TOKEN))
    b.expect(401, "GET", "/metrics", None)
    b.expect(200, "GET", "/health", None)

    b.expect(200, "GET", "/instances", "worker")
    b.expect(401, "GET", "/instances", None)
    b.expect(422, "GET", "/instances", "admin", params={"limit": 0})

    b.expect(200, "GET", f"/instances/{ids['home_name']}", "worker")
    b.expect(401, "GET", f"/instances/{home}", None)
    b.expect(403, "GET", f"/instances/{home}", "other")
    b.expect(404, "GET", "/instances/nowhere", "admin")
    b.expect(422, "GET", "/instances/%00", "admin")

    workflow = ids["workflow"]
    b.expect(200, "GET", f"/workflows/{workflow}", "worker")
    b.expect(401, "GET", f"/workflows/{workflow}", None)
    b.expect(403, "GET", f"/workflows/{workflow}", "other")
    b.expect(404, "GET", f"/workflows/{ghost}", "admin")
    b.expect(422, "GET", "/workflows/invoice_approval", "admin")  # in several instances

    for listing in ("/workflows", "/actors", "/uows"):
        b.expect(200, "GET", listing, "auditor", params={"instance": home})
        b.expect(401, "GET", listing, None)
        b.expect(403, "GET", listing, "other", params={"instance": home})
        b.expect(404, "GET", listing, "admin", params={"instance": "nowhere"})
        b.expect(422, "GET", listing, "admin", params={"limit": 501})

    b.expect(200, "GET", f"/actors/{ids['worker']}", "worker")
    b.expect(401, "GET", f"/actors/{ids['worker']}", None)
    b.expect(403, "GET", f"/actors/{ids['away_actor']}", "worker")
    b.expect(404, "GET", f"/actors/{ghost}", "admin")
    b.expect(422, "GET", "/actors/not-an-id", "admin")
