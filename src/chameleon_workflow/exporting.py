"""Export of the ledger for auditors: history, attribute versions, log rows, admin events.

Rows are streamed a page at a time (constant memory) in each table's sealing order, with
every column: ids, hashes, links, keys. In JSON Lines each line is exactly the bytes the
row contributes to the checkpoint tree (``checkpoints.leaves.leaf_data``:
``{"row": {...}, "table": "..."}`` in RFC 8785 form), so a third party can recompute the
chain links with the ledger key, the leaf hashes without it, and check them against a
signed checkpoint and its inclusion proofs. CSV gives one table per file, JSON columns as
their canonical JSON text. Parquet (the optional ``parquet`` extra, pyarrow) gives one
table per file too, with typed columns: integers, booleans, times as UTC microsecond
timestamps, ids and enumerations as text, JSON columns as their canonical JSON text; one
row group per page, so memory stays flat.
"""

from __future__ import annotations

import csv
import importlib
import io
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Connection, Integer, RowMapping, select

from chameleon_workflow.checkpoints.leaves import BY_KIND, leaf_data, plain, selection
from chameleon_workflow.columns import UTCDateTime
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.hashing import canonical_json, parse_timestamp

#: What can be exported, by the name the CLI and the API take, and the table it reads.
EXPORTABLE: dict[str, str] = {
    "history": "uow_history",
    "attributes": "uow_attributes",
    "logs": "interaction_logs",
    "admin": "admin_events",
}
#: The column each table is filtered by time on.
_TIME_COLUMN = {
    "uow_history": "transition_timestamp",
    "uow_attributes": "created_at",
    "interaction_logs": "timestamp",
    "admin_events": "recorded_at",
}
FORMATS = ("jsonl", "csv", "parquet")
#: The formats that hold exactly one table per file.
ONE_TABLE = ("csv", "parquet")
PAGE = 2000


@dataclass(frozen=True, slots=True)
class ExportScope:
    """Which rows to export: of one instance (or all), changed in ``[since, until)``."""

    instance_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        """Refuse an empty or inverted time range."""
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidValueError(
                f"the time range is empty: since {self.since.isoformat()} is not before "
                f"until {self.until.isoformat()}"
            )


def tables_of(names: Sequence[str]) -> list[str]:
    """Return the tables named (``history``, ``attributes``, ``logs``, ``admin``), in order."""
    unknown = [name for name in names if name not in EXPORTABLE]
    if unknown:
        raise InvalidValueError(
            f"cannot export {', '.join(map(repr, unknown))}: choose from {', '.join(EXPORTABLE)}"
        )
    return [EXPORTABLE[name] for name in EXPORTABLE if name in names]


def rows(connection: Connection, table: str, scope: ExportScope) -> Iterator[RowMapping]:
    """Yield the rows of ``table`` in scope, in sealing order, a page at a time."""
    ledger = BY_KIND[table]
    columns = ledger.table.c
    query = select(*selection(ledger, connection.dialect.name))
    if scope.instance_id is not None:
        query = query.where(columns.instance_id == scope.instance_id)
    stamp = columns[_TIME_COLUMN[table]]
    if scope.since is not None:
        query = query.where(stamp >= scope.since)
    if scope.until is not None:
        query = query.where(stamp < scope.until)
    query = query.order_by(*(columns[name] for name in ledger.order))
    result = connection.execute(query, execution_options={"yield_per": PAGE})
    for row in result:
        yield row._mapping


def jsonl(connection: Connection, tables: Sequence[str], scope: ExportScope) -> Iterator[bytes]:
    """Yield JSON Lines: each row's leaf data (its canonical form), one per line."""
    for table in tables:
        for row in rows(connection, table, scope):
            yield leaf_data(table, row) + b"\n"


def csv_lines(connection: Connection, table: str, scope: ExportScope) -> Iterator[str]:
    """Yield CSV text for one table: a header of its columns, then one line per row."""
    names = [column.name for column in BY_KIND[table].table.columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(values: Sequence[Any]) -> str:
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(names)
    for row in rows(connection, table, scope):
        yield line([_cell(plain(row[name], f"{table}.{name}")) for name in names])


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return canonical_json(value, "cell").decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def parquet_chunks(connection: Connection, table: str, scope: ExportScope) -> Iterator[bytes]:
    """Yield a Parquet file of one table, a row group per page, as the bytes are written."""
    pa, pq = _pyarrow()
    columns = list(BY_KIND[table].table.columns)
    schema = pa.schema([pa.field(c.name, _arrow_type(pa, c.type)) for c in columns])
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema)
    page: list[RowMapping] = []
    for row in rows(connection, table, scope):
        page.append(row)
        if len(page) == PAGE:
            writer.write_table(_arrow_page(pa, schema, table, columns, page))
            page.clear()
            yield sink.take()
    if page:
        writer.write_table(_arrow_page(pa, schema, table, columns, page))
    writer.close()
    yield sink.take()


class _Drain:
    """A write-only file that hands over what was written so far (pyarrow's sink)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        """Nothing is held back: ``take`` hands every written byte over."""

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def parquet_available() -> None:
    """Refuse a Parquet export up front when pyarrow is not installed."""
    _pyarrow()


def _pyarrow() -> tuple[Any, Any]:
    """Return pyarrow and pyarrow.parquet, or say how to install them."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise InvalidValueError(
            "parquet export needs pyarrow: install chameleon-workflow[parquet]"
        ) from None


def _arrow_type(pa: Any, kind: Any) -> Any:
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, Integer):
        return pa.int64()
    if isinstance(kind, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def _converter(kind: Any) -> Callable[[Any, str], Any]:
    if isinstance(kind, Boolean | Integer):
        return _as_is
    if isinstance(kind, UTCDateTime):
        return _moment
    if isinstance(kind, JSON):
        return _json_text
    return _text


def _arrow_page(
    pa: Any, schema: Any, table: str, columns: list[Column[Any]], page: list[RowMapping]
) -> Any:
    data = {}
    for column in columns:
        name, convert = column.name, _converter(column.type)
        where = f"{table}.{name}"
        data[name] = [None if r[name] is None else convert(r[name], where) for r in page]
    return pa.Table.from_pydict(data, schema=schema)


def _as_is(value: Any, _where: str) -> Any:
    return value


def _moment(value: Any, _where: str) -> datetime:
    # SQLite hands times over as their canonical text (see leaves.selection).
    return parse_timestamp(value) if isinstance(value, str) else value


def _json_text(value: Any, where: str) -> str:
    return canonical_json(value, where).decode()


def _text(value: Any, where: str) -> Any:
    return plain(value, where)
