"""Fresh PostgreSQL databases for the tests, without a CREATE DATABASE for every test.

Cloning the migrated template and dropping the clone costs about half a second a test,
spent waiting on the server's disk (the clone writes every catalog page to the WAL). A
clone a test has used is reset instead, off the test's path, in a background thread:
other connections ended, every table emptied (triggers off) and vacuumed down to no pages,
sequences restarted, and the template's few rows copied back. It is handed out again only
if a fingerprint of its schema, privileges, settings, sequences, table sizes and rows then
equals the template's; a test that changed anything the reset does not restore leaves a
clone that is simply dropped, as every clone was before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
from psycopg import sql

from chameleon_workflow.config import scratch_database_name

#: Everything a test could change that a reset must bring back to the template's state:
#: relations (with owner, privileges and row security), columns and defaults, constraints,
#: indexes, triggers (and whether they are enabled), rules, policies, routines, types,
#: schemas, extensions, default privileges, the database's privileges and settings, where
#: each sequence stands, and each table's size (a reset table has its pages handed back).
FINGERPRINT = """
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%'
), rel AS (SELECT c.* FROM pg_class c JOIN ns ON ns.oid = c.relnamespace)
SELECT string_agg(line, E'\\n' ORDER BY line) FROM (
    SELECT concat_ws(' ', 'schema', nspname, nspowner::regrole, nspacl::text) AS line
    FROM pg_namespace WHERE oid IN (SELECT oid FROM ns)
    UNION ALL SELECT concat_ws(' ', 'relation', oid::regclass, relkind, relowner::regrole,
        relacl::text, relrowsecurity, relforcerowsecurity, reloptions::text) FROM rel
    UNION ALL SELECT concat_ws(' ', 'column', a.attrelid::regclass, a.attname,
        format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attacl::text,
        pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
    WHERE a.attrelid IN (SELECT oid FROM rel) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT concat_ws(' ', 'constraint', conrelid::regclass, conname,
        pg_get_constraintdef(oid)) FROM pg_constraint WHERE connamespace IN (SELECT oid FROM ns)
    UNION ALL SELECT concat_ws(' ', 'index', pg_get_indexdef(indexrelid))
    FROM pg_index WHERE indrelid IN (SELECT oid FROM rel)
    UNION ALL SELECT concat_ws(' ', 'trigger', pg_get_triggerdef(oid), tgenabled)
    FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT concat_ws(' ', 'rule', schemaname, tablename, definition) FROM pg_rules
    WHERE schemaname IN (SELECT nspname FROM ns)
    UNION ALL SELECT concat_ws(' ', 'policy', polrelid::regclass, polname, polcmd,
        polroles::text, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
    FROM pg_policy
    UNION ALL SELECT concat_ws(' ', 'routine', p.oid::regprocedure, proowner::regrole,
        proacl::text, md5(CASE WHEN prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END))
    FROM pg_proc p WHERE pronamespace IN (SELECT oid FROM ns)
    UNION ALL SELECT concat_ws(' ', 'type', oid::regtype, typowner::regrole, typacl::text)
    FROM pg_type WHERE typnamespace IN (SELECT oid FROM ns)
    UNION ALL SELECT concat_ws(' ', 'extension', extname, extversion) FROM pg_extension
    UNION ALL SELECT concat_ws(' ', 'default acl', defaclrole::regrole, defaclnamespace,
        defaclobjtype, defaclacl::text) FROM pg_default_acl
    UNION ALL SELECT concat_ws(' ', 'database', datdba::regrole, datacl::text,
        datallowconn, datconnlimit) FROM pg_database WHERE datname = current_database()
    UNION ALL SELECT concat_ws(' ', 'settings', setrole, setconfig::text)
    FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL SELECT concat_ws(' ', 'sequence', schemaname, sequencename, last_value)
    FROM pg_sequences WHERE schemaname IN (SELECT nspname FROM ns)
    UNION ALL SELECT concat_ws(' ', 'pages', oid::regclass, pg_relation_size(oid))
    FROM rel WHERE relkind = 'r'
) AS lines
"""
TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
SEQUENCES = "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"


def _tables(connection: psycopg.Connection) -> list[str]:
    return [name for (name,) in connection.execute(TABLES).fetchall()]


def _rows(connection: psycopg.Connection, table: str) -> bytes:
    """Return a table's rows in COPY's text form, in a fixed order."""
    query = sql.SQL("COPY (SELECT * FROM {} ORDER BY 1) TO STDOUT").format(sql.Identifier(table))
    with connection.cursor() as cursor, cursor.copy(query) as copy:
        return b"".join(bytes(block) for block in copy)


def _state(connection: psycopg.Connection) -> tuple[str, dict[str, bytes]]:
    """Return the fingerprint of a database and every table's rows."""
    (fingerprint,) = connection.execute(FINGERPRINT).fetchone() or ("",)
    return fingerprint, {table: _rows(connection, table) for table in _tables(connection)}


class PgClones:
    """Hand out databases in the template's state: reset ones, else new clones.

    ``conninfo(name)`` gives the libpq URL of a database of the server, ``url(name)`` its
    SQLAlchemy URL. New clones get scratch names (``CHAMELEON_TEST_DB_PREFIX``).
    """

    def __init__(
        self, template: str, conninfo: Callable[[str], str], url: Callable[[str], str]
    ) -> None:
        self._template, self._conninfo, self._url = template, conninfo, url
        with psycopg.connect(conninfo(template), autocommit=True) as connection:
            self._fingerprint, self._template_rows = _state(connection)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pg-clones")
        self._free: list[str] = []
        self._names: set[str] = set()
        self._pending: list[Future[None]] = []

    def take(self) -> str:
        """Return the SQLAlchemy URL of a database in the template's state."""
        if not self._free and self._pending:
            self._pending[-1].result()  # a reset is far quicker than a new clone
        name = self._free.pop() if self._free else self._clone()
        return self._url(name)

    def give_back(self, url: str) -> None:
        """Reset a database a test has used, in the background (dropped if it cannot be)."""
        self._pending.append(self._thread.submit(self._recycle, url.rsplit("/", 1)[1]))

    def close(self) -> None:
        """Wait for the resets, drop every database, raise the first failure seen."""
        self._thread.shutdown(wait=True)
        for name in sorted(self._names):
            self._drop(name)
        for pending in self._pending:
            pending.result()

    def _clone(self) -> str:
        name = scratch_database_name("t", uuid.uuid4().hex[:16])
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self._template)
                )
            )
        self._names.add(name)
        return name

    def _drop(self, name: str) -> None:
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        self._names.discard(name)

    def _recycle(self, name: str) -> None:
        if name in self._names and self._reset(name):
            self._free.append(name)
        else:
            self._drop(name)

    def _reset(self, name: str) -> bool:
        """Bring a used clone back to the template's state; tell whether that worked."""
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        try:
            with psycopg.connect(self._conninfo(name), autocommit=True) as connection:
                connection.execute("SET lock_timeout = '5s'")
                connection.execute("SET session_replication_role = replica")  # triggers, FKs off
                tables = [sql.Identifier(table) for table in _tables(connection)]
                with connection.transaction():
                    for table in tables:
                        connection.execute(sql.SQL("DELETE FROM {}").format(table))
                    for (sequence,) in connection.execute(SEQUENCES).fetchall():
                        restart = sql.SQL("ALTER SEQUENCE {} RESTART")
                        connection.execute(restart.format(sql.Identifier(sequence)))
                # Hand the emptied pages back, so rows land where they land in a new clone.
                connection.execute(sql.SQL("VACUUM {}").format(sql.SQL(", ").join(tables)))
                with connection.transaction():
                    for table, rows in self._template_rows.items():
                        if rows:
                            query = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))
                            with connection.cursor().copy(query) as copy:
                                copy.write(rows)
                connection.execute("RESET session_replication_role")
                return _state(connection) == (self._fingerprint, self._template_rows)
        except psycopg.Error:
            return False
