"""``GET /export``: the ledger's rows for an auditor, streamed (see ``exporting``).

The admin and the auditor may export; the rows are read in a transaction of their own
that lasts as long as the response streams, a page at a time, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from chameleon_workflow import exporting
from chameleon_workflow.engine.listing import instance_of
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.exporting import ExportScope
from chameleon_workflow.server import schemas as s
from chameleon_workflow.server.dependencies import Reader, Services, Svc
from chameleon_workflow.server.problems import error_responses

router = APIRouter(tags=["audit"])
_MEDIA = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "JSON Lines (each line a row's checkpoint leaf), or CSV or Parquet (one table)."
        ),
        "content": {"application/x-ndjson": {}, "text/csv": {}, _MEDIA["parquet"]: {}},
    }
}


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={**_STREAMED, **error_responses(401, 403, 404, 422, 503)},
)
def export(
    svc: Svc,
    _: Reader,
    what: Annotated[
        list[Literal["history", "attributes", "logs", "admin"]] | None,
        Query(description="Tables to export (repeatable; default: all four)."),
    ] = None,
    output_format: Annotated[Literal["jsonl", "csv", "parquet"], Query(alias="format")] = "jsonl",
    instance: Annotated[
        str | None, Query(max_length=s.NAME_MAX, description="Instance name or id.")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """Stream history, attribute versions, log rows and admin events with their hashes."""
    tables = exporting.tables_of(list(what or exporting.EXPORTABLE))
    if output_format in exporting.ONE_TABLE and len(tables) != 1:
        raise InvalidValueError(f"{output_format} holds one table: name it with what")
    if output_format == "parquet":
        exporting.parquet_available()
    narrowed = None if instance is None else svc.read(lambda x: instance_of(x, instance))
    scope = ExportScope(narrowed, s.aware(since, "since"), s.aware(until, "until"))
    return StreamingResponse(
        _rows(svc, tables, scope, output_format), media_type=_MEDIA[output_format]
    )


def _rows(
    svc: Services, tables: list[str], scope: ExportScope, output_format: str
) -> Iterator[bytes]:
    with svc.session_factory() as session:
        connection = session.connection()
        if output_format == "jsonl":
            yield from exporting.jsonl(connection, tables, scope)
        elif output_format == "parquet":
            yield from exporting.parquet_chunks(connection, tables[0], scope)
        else:
            for text in exporting.csv_lines(connection, tables[0], scope):
                yield text.encode()
