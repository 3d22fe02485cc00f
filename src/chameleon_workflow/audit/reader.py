"""What verification reads, in each back end's own SQL, straight from the driver.

History rows come in ``chain.STORED_KEYED_FIELDS`` order (``UOW_COLUMNS`` and
``ATTRIBUTE_COLUMNS`` below for the others) with every id and timestamp as the text the
links and digests cover and JSON columns as their stored text, so nothing is parsed
into UUID or datetime objects. SQLite cursors stream by nature; on PostgreSQL history is
read with psycopg's chunked ``stream`` so the server produces rows while Python hashes
the previous chunk (memory stays at one chunk, and no result set is buffered whole).
History's ids and JSON reach Python as their text output without a cast in the SQL: its
cursor loads ``uuid``, ``json`` and ``jsonb`` with psycopg's text loader, which keeps the
very text ``::text`` gives (the types' output functions), and the server skips a cast per
column per row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from psycopg.types.string import TextLoader

from chameleon_workflow.chain import STORED_KEYED_FIELDS
from chameleon_workflow.keys import KEY_EVENT_FIELDS

#: UOW rows per page: one history query (and one attribute query) per page.
PAGE_SIZE = 500
_STREAM_CHUNK = 2000
_PG_TEXT = frozenset(
    {"history_id", "instance_id", "uow_id", "previous_interaction_id", "new_interaction_id"}
    | {"actor_id", "transition_metadata", "changes", "holder_id", "local_workflow_id"}
    | {"parent_id", "current_interaction_id", "held_by_actor_id", "value"}
)
_PG_STAMPS = frozenset({"transition_timestamp", "created_at", "recorded_at"})
#: Types history's cursor loads as their text output (the text ``::text`` would give).
_PG_AS_TEXT = ("uuid", "json", "jsonb")

#: The UOW row's columns verification reads, in this order.
UOW_COLUMNS = (
    "uow_id",
    "status",
    "current_interaction_id",
    "content_hash",
    "chain_head",
    "history_sequence",
    "held_by_actor_id",
    "retry_count",
    "version",
    "instance_id",
    "local_workflow_id",
    "parent_id",
    "created_at",
)
#: The attribute row's columns verification reads, in this order.
ATTRIBUTE_COLUMNS = (
    "uow_id",
    "key",
    "version",
    "value",
    "is_deleted",
    "salt",
    "value_digest",
    "history_sequence",
    "actor_id",
    "reasoning",
    "created_at",
    "instance_id",
)
#: The key ledger's columns, in this order.
KEY_LEDGER_COLUMNS = (*KEY_EVENT_FIELDS, "chain_hash")


def _pg(name: str) -> str:
    if name in _PG_STAMPS:
        return f"to_char({name} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    return f"{name}::text" if name in _PG_TEXT else name


def _pg_history(name: str) -> str:
    return _pg(name) if name in _PG_STAMPS else name


def _queries(column: Any, p: str, uuid: str, history: Any) -> dict[str, str]:
    """Return every query, columns rendered by ``column`` (``history`` for history rows)."""
    uows = ", ".join(map(column, UOW_COLUMNS))
    return {
        "uows": (
            f"SELECT {uows} FROM units_of_work WHERE uow_id > {p}{uuid} {{scope}} "
            f"ORDER BY uow_id LIMIT {p}"
        ),
        "one": f"SELECT {uows} FROM units_of_work WHERE uow_id = {p}{uuid}",
        # A page's rows: ``{where}`` is ``between`` or (SQLite, one instance) ``listed``.
        "history": (
            f"SELECT {', '.join(map(history, STORED_KEYED_FIELDS))} FROM uow_history "
            "WHERE {where} ORDER BY uow_id, sequence"
        ),
        "attributes": (
            f"SELECT {', '.join(map(column, ATTRIBUTE_COLUMNS))} FROM uow_attributes "
            "WHERE {where} ORDER BY uow_id, key, version"
        ),
        "between": f"uow_id >= {p}{uuid} AND uow_id <= {p}{uuid} {{scope}}",
        # ``+instance_id`` keeps SQLite off the instance index (see ``VerifyReader._of``).
        "listed": "uow_id IN ({marks}) AND +instance_id = ?",
        # Rows whose UOW row is gone, or (instance runs) sits in another instance.
        "orphans": (
            f"SELECT {column('uow_id')}, count(*) FROM {{table}} r WHERE NOT EXISTS ("
            "SELECT 1 FROM units_of_work u WHERE u.uow_id = r.uow_id {moved}) {scope} "
            "GROUP BY uow_id ORDER BY uow_id"
        ),
        "keys": (
            f"SELECT {', '.join(map(column, KEY_LEDGER_COLUMNS))} FROM ledger_keys "
            "ORDER BY sequence"
        ),
        "scope": f"AND instance_id = {p}{uuid}",
        "moved": "AND u.instance_id = r.instance_id",
    }


_SQLITE = {**_queries(str, "?", "", str), "start": ""}
_POSTGRES = {
    **_queries(_pg, "%s", "::uuid", _pg_history),
    "start": "00000000-0000-0000-0000-000000000000",
}

Row = tuple[Any, ...]


class VerifyReader:
    """Pages of UOW rows, and the history and attribute rows of a page, from a raw connection.

    ``raw`` is a ``sqlite3.Connection`` or a ``psycopg.Connection``; ``instance_id``
    scopes every query to one instance.
    """

    def __init__(self, raw: Any, dialect: str, instance_id: str | None) -> None:
        sql = _SQLITE if dialect == "sqlite" else _POSTGRES
        scope = sql["scope"] if instance_id is not None else ""
        self.raw = raw
        self.postgres = dialect != "sqlite"
        self.start = sql["start"]
        self.one_sql = sql["one"]
        self.uows_sql = sql["uows"].format(scope=scope)
        between = sql["between"].format(scope=scope)
        self.history_sql = sql["history"].format(where=between)
        self.attributes_sql = sql["attributes"].format(where=between)
        # SQLite, one instance: the same queries over a page's listed ids ({marks}).
        self.by_ids = instance_id is not None and dialect == "sqlite"
        self.history_ids_sql = sql["history"].replace("{where}", sql["listed"])
        self.attributes_ids_sql = sql["attributes"].replace("{where}", sql["listed"])
        moved = sql["moved"] if instance_id is not None else ""
        self.orphans_sql = sql["orphans"].replace("{scope}", scope).replace("{moved}", moved)
        self.keys_sql = sql["keys"]
        self.scope: tuple[str, ...] = () if instance_id is None else (instance_id,)

    def _all(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return list(self.raw.execute(sql, params).fetchall())

    def pages(self, only: uuid.UUID | None = None, size: int = PAGE_SIZE) -> Iterator[list[Row]]:
        """Yield UOW rows a page at a time, in uow_id order (or just the one asked for)."""
        if only is not None:
            uows = self._all(self.one_sql, (str(only),))
            if uows and (not self.scope or self._in_scope(uows[0][0])):
                yield uows
            return
        after = self.start
        while True:
            uows = self._all(self.uows_sql, (after, *self.scope, size))
            if uows:
                yield uows
            if len(uows) < size:
                return
            after = uows[-1][0]

    def _in_scope(self, uow_id: str) -> bool:
        p = "%s::uuid" if self.postgres else "?"
        sql = f"SELECT 1 FROM units_of_work WHERE uow_id = {p} AND instance_id = {p}"
        return bool(self._all(sql, (uow_id, *self.scope)))

    def _of(self, between: str, listed: str, page: list[Row]) -> tuple[str, tuple[Any, ...]]:
        """Return the query and its parameters for the rows of the UOWs of ``page``.

        Between the page's first and last id; on SQLite with an instance scope, the page's
        ids themselves (``listed``), looked up through the (uow_id, ...) unique index:
        the instance index SQLite would otherwise pick scans every row of the instance for
        each page and sorts them. Either way the same rows of the page's UOWs come back,
        in the same order; rows of other UOWs in the range are not needed.
        """
        if not self.by_ids:
            return between, (page[0][0], page[-1][0], *self.scope)
        ids = tuple(uow[0] for uow in page)
        return listed.format(marks=", ".join("?" * len(ids))), (*ids, *self.scope)

    def history(self, page: list[Row]) -> Iterator[Row]:
        """Stream the history rows of the UOWs of ``page``, by uow_id then sequence."""
        sql, params = self._of(self.history_sql, self.history_ids_sql, page)
        if self.postgres:
            cursor = self.raw.cursor()
            for name in _PG_AS_TEXT:
                cursor.adapters.register_loader(name, TextLoader)
            return iter(cursor.stream(sql, params, size=_STREAM_CHUNK))
        return iter(self.raw.execute(sql, params))

    def orphans(self, table: str) -> list[Row]:
        """Return (uow_id, rows) for rows of ``table`` whose UOW row does not exist."""
        return self._all(self.orphans_sql.replace("{table}", table), self.scope)

    def key_ledger(self) -> list[Row]:
        """Return the key ledger's rows in sequence order."""
        return self._all(self.keys_sql, ())

    def attributes(self, page: list[Row]) -> list[Row]:
        """Return the attribute rows of the UOWs of ``page``, by uow_id, key, version."""
        return self._all(*self._of(self.attributes_sql, self.attributes_ids_sql, page))
