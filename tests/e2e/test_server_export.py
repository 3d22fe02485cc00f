"""`GET /export`: the auditor streams the ledger's rows; actors cannot; bad input is a problem."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from http_world import AUDITOR_TOKEN, bearer, call, served
from test_server_tokens import start


def test_the_auditor_exports_every_table_and_filters(database_url: str, tmp_path: Path) -> None:
    """JSON Lines of all four tables; --what and --instance narrow it; CSV gives one table."""
    with served(database_url, tmp_path) as (server, http):
        cast, uow = start(http, server.admin_token)
        response = http.get("/export", headers=bearer(AUDITOR_TOKEN))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-ndjson"
        docs = [json.loads(line) for line in response.text.splitlines()]
        assert {d["table"] for d in docs} >= {"uow_history", "uow_attributes", "admin_events"}
        params = {"what": "history", "instance": str(cast.instance_id)}
        narrowed = http.get("/export", params=params, headers=bearer(server.admin_token))
        rows = [json.loads(line)["row"] for line in narrowed.text.splitlines()]
        assert [r["uow_id"] for r in rows] == [uow]
        assert rows[0]["chain_hash"]
        as_csv = http.get(
            "/export", params={"what": "admin", "format": "csv"}, headers=bearer(AUDITOR_TOKEN)
        )
        assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
        table = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert table[0]["action"] == "INSTANCE_CREATED"


def test_export_refuses_actors_and_bad_input(database_url: str, tmp_path: Path) -> None:
    """An actor gets 403; CSV of several tables 422; an unknown instance 404."""
    with served(database_url, tmp_path) as (server, http):
        cast, _ = start(http, server.admin_token)
        call(http, "GET", "/export", cast.tokens[0], 403)
        problem = call(http, "GET", "/export", AUDITOR_TOKEN, 422, params={"format": "csv"})
        assert problem["detail"] == "csv holds one table: name it with what"
        call(http, "GET", "/export", AUDITOR_TOKEN, 404, params={"instance": "nobody"})
        call(http, "GET", "/export", AUDITOR_TOKEN, 422, params={"what": "secrets"})


def test_the_auditor_exports_parquet(database_url: str, tmp_path: Path) -> None:
    """format=parquet streams one table as a Parquet file pyarrow reads back; two tables 422."""
    import pyarrow.parquet as pq  # noqa: PLC0415 - the dev extra installs it

    with served(database_url, tmp_path) as (server, http):
        start(http, server.admin_token)
        params = {"what": "admin", "format": "parquet"}
        response = http.get("/export", params=params, headers=bearer(AUDITOR_TOKEN))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/vnd.apache.parquet"
        table = pq.read_table(io.BytesIO(response.content)).to_pylist()
        as_jsonl = http.get("/export", params={"what": "admin"}, headers=bearer(AUDITOR_TOKEN))
        rows = [json.loads(line)["row"] for line in as_jsonl.text.splitlines()]
        assert [(r["sequence"], r["chain_hash"]) for r in table] == [
            (r["sequence"], r["chain_hash"]) for r in rows
        ]
        assert table[0]["action"] == "INSTANCE_CREATED"
        problem = call(http, "GET", "/export", AUDITOR_TOKEN, 422, params={"format": "parquet"})
        assert problem["detail"] == "parquet holds one table: name it with what"
