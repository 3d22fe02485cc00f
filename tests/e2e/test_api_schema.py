"""Schemathesis against the served OpenAPI document: no server error, no schema violation."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from chameleon_workflow.config import scratch_database_name
from chameleon_workflow.testing import ServerProcess, setup_invoice


def _pg_database(template: str) -> tuple[str, str]:
    """Clone the migrated template; return (server admin conninfo, new database URL)."""
    base = os.environ["CHAMELEON_TEST_POSTGRES_URL"].replace(
        "postgresql+psycopg://", "postgresql://"
    )
    head = base.rpartition("/")[0]
    name = scratch_database_name("s", uuid.uuid4().hex[:16])
    with psycopg.connect(f"{head}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{head}/postgres", f"{head}/{name}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Serve one migrated database per back end for the whole module, with some data in it."""
    folder = tmp_path_factory.mktemp(f"schema-{request.param}")
    admin_conninfo = ""
    if request.param == "sqlite":
        target = folder / "chameleon.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite:///{target}"
    else:
        admin_conninfo, url = _pg_database(request.getfixturevalue("pg_template"))
    server = ServerProcess(url, folder / "server.log").start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        setup_invoice(client, server.admin(), actors=1)
    yield server
    assert server.stop_cleanly(), server.log()
    if admin_conninfo:
        with psycopg.connect(admin_conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# Hypothesis examples per operation and generation mode, a fixed budget: enough to probe
# each parameter and body shape of every operation on every run (hypothesis' database
# is off, so each run draws anew), small enough that a mode on a back end takes seconds.
EXAMPLES = 8
#: A schema-valid request may still be refused on meaning (a YAML text that is no workflow,
#: an id that names nothing): JSON Schema cannot say that, so this check cannot hold.
#: The negative check wants every off-schema request refused, but the API is lenient by
#: design: it ignores unknown query parameters and takes Unix times for date-times (and
#: the "missing Authorization" negatives are moot, as the test always sends the header).
NO_INPUT = ("/health", "/metrics")
EXCLUDED = [checks.positive_data_acceptance, checks.negative_data_rejection]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(served: ServerProcess, mode: GenerationMode) -> None:
    """Every operation answers generated requests without a 5xx and as it documents."""
    api = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    # schemathesis' pytest plugin reads a private pytest attribute that pytest 9 removed,
    # so the operations are driven with plain hypothesis instead.
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 40
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=served.admin(), excluded_checks=EXCLUDED)

        try:
            conforms()
        except Unsatisfiable:
            # /health and /metrics take no input, so no invalid request exists for them.
            assert (mode, operation.path) in {(GenerationMode.NEGATIVE, p) for p in NO_INPUT}


def test_schema_documents_problem_responses(served: ServerProcess, tmp_path: Path) -> None:
    """Error responses are declared as application/problem+json documents."""
    document = httpx.get(f"{served.url}/openapi.json").json()
    submit = document["paths"]["/uows/{uow_id}/submit"]["post"]["responses"]
    assert set(submit) == {"200", "400", "401", "403", "404", "409", "413", "422", "503"}
    assert submit["403"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert "Problem" in document["components"]["schemas"]
