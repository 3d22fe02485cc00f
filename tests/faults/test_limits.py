"""Every resource a client can grow is bounded by a setting, and refused with a 413 naming it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faultkit import Desk, make_desk
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import Settings
from chameleon_workflow.errors import LimitExceededError
from chameleon_workflow.testing import ServerProcess, setup_invoice

LIMITS = {
    "CHAMELEON_MAX_REQUEST_BYTES": "65536",
    "CHAMELEON_MAX_ATTRIBUTE_VALUE_BYTES": "1024",
    "CHAMELEON_MAX_ATTRIBUTES_PER_UOW": "10",
    "CHAMELEON_MAX_REASONING_CHARS": "100",
    "CHAMELEON_MAX_METADATA_BYTES": "512",
}
SMALL = Settings(
    max_attribute_value_bytes=1024,
    max_attributes_per_uow=10,
    max_reasoning_chars=100,
    max_metadata_bytes=512,
)


@pytest.fixture
def small_desk(session_factory: sessionmaker[Session]) -> Desk:
    """An invoice desk whose engine has small limits."""
    return make_desk(session_factory, SMALL)


def test_engine_refuses_oversized_input_before_writing(small_desk: Desk) -> None:
    """Values, counts, reasoning and capabilities over their limits name their setting."""
    engine, instance = small_desk.engine, small_desk.instance_id
    cases: list[tuple[Any, str]] = [
        (
            lambda: engine.instantiate(instance, "invoice_approval", {"blob": "x" * 2000}),
            "attribute 'blob' is 2002 bytes as JSON; the limit is 1024 "
            "(CHAMELEON_MAX_ATTRIBUTE_VALUE_BYTES)",
        ),
        (
            lambda: engine.instantiate(
                instance, "invoice_approval", {f"k{i}": i for i in range(11)}
            ),
            "11 attributes; the limit is 10 per unit of work (CHAMELEON_MAX_ATTRIBUTES_PER_UOW)",
        ),
        (
            lambda: engine.register_actor(instance, "big", "Big", "HUMAN", {"c": "x" * 600}),
            "capabilities is 608 bytes as JSON; the limit is 512 (CHAMELEON_MAX_METADATA_BYTES)",
        ),
    ]
    for call, message in cases:
        with pytest.raises(LimitExceededError) as caught:
            call()
        assert str(caught.value) == message
    uow_id = small_desk.start()
    view = engine.checkout(small_desk.worker, "triage")
    assert view is not None
    with pytest.raises(LimitExceededError) as reasoning:
        engine.submit(small_desk.worker, uow_id, None, "r" * 101)
    assert str(reasoning.value) == (
        "reasoning is 101 characters; the limit is 100 (CHAMELEON_MAX_REASONING_CHARS)"
    )
    with pytest.raises(LimitExceededError) as total:
        engine.submit(small_desk.worker, uow_id, {f"k{i}": i for i in range(9)}, "ok")
    assert str(total.value) == (
        "11 attributes; the limit is 10 per unit of work (CHAMELEON_MAX_ATTRIBUTES_PER_UOW)"
    )
    assert small_desk.statuses(uow_id) == [(1, "PENDING"), (2, "ACTIVE")]
    assert engine.get_uow(uow_id).attributes == {"invoice_id": "INV", "amount": 50}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def limited(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with small limits on the test's database."""
    server = ServerProcess(database_url, tmp_path / "server.log", LIMITS).start()
    yield server
    assert server.stop_cleanly(), server.log()
    assert "Traceback" not in server.log()


def test_server_refuses_oversized_and_nested_bodies(limited: ServerProcess) -> None:
    """413 for each limit (body declared or streamed, value, count, reasoning); 422 for depth."""
    with httpx.Client(base_url=limited.url, timeout=30.0) as client:
        cast = setup_invoice(client, limited.admin(), actors=1)
        actor = {"Authorization": f"Bearer {cast.tokens[0]}"}
        create = f"/instances/{cast.instance_id}/uows"

        def instantiate(attributes: str) -> httpx.Response:
            body = f'{{"workflow": "invoice_approval", "attributes": {attributes}}}'
            headers = {**actor, "content-type": "application/json"}
            return client.post(create, content=body, headers=headers)

        huge = instantiate(json.dumps({"blob": "x" * 70_000}))
        value = instantiate(json.dumps({"blob": "x" * 2000}))
        count = instantiate(json.dumps({f"k{i}": i for i in range(11)}))
        deep = instantiate(f'{{"a": {_nested(100)}}}')
        deeper = instantiate(f'{{"a": {_nested(30_000)}}}')
        ok = instantiate(json.dumps({"invoice_id": "L", "amount": 5}))
        uow = client.post("/roles/triage/checkout", headers=actor).json()["uow_id"]
        reasoning = client.post(f"/uows/{uow}/submit", json={"reasoning": "r" * 101}, headers=actor)

    def streamed() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    with httpx.Client(base_url=limited.url, timeout=30.0) as client:
        chunked = client.post(
            create, content=streamed(), headers={**actor, "content-type": "application/json"}
        )

    def detail(response: httpx.Response, status: int) -> str:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        return str(response.json()["detail"])

    body_limit = "the request body is larger than 65536 bytes (CHAMELEON_MAX_REQUEST_BYTES)"
    assert detail(huge, 413) == body_limit
    assert detail(chunked, 413) == body_limit
    assert detail(value, 413) == (
        "attribute 'blob' is 2002 bytes as JSON; the limit is 1024 "
        "(CHAMELEON_MAX_ATTRIBUTE_VALUE_BYTES)"
    )
    assert detail(count, 413) == (
        "11 attributes; the limit is 10 per unit of work (CHAMELEON_MAX_ATTRIBUTES_PER_UOW)"
    )
    assert detail(deep, 422) == "body.attributes: Value error, nested deeper than 64 levels"
    assert deeper.status_code in (400, 422), deeper.text
    assert ok.status_code == 201
    assert detail(reasoning, 413) == (
        "reasoning is 101 characters; the limit is 100 (CHAMELEON_MAX_REASONING_CHARS)"
    )
    assert uuid.UUID(uow)
