"""The database schema below the models: Alembic migrations, and the append-only triggers.

UPDATE, DELETE (and on PostgreSQL TRUNCATE) of ledger, attribute, key-ledger and log rows
are refused by the database itself, and so is an UPDATE that would change a UOW row's
identity (``UOW_IDENTITY_COLUMNS``: the instance, workflow, parent and creation time).
On SQLite, ``INSERT OR REPLACE`` deletes the old row without firing DELETE triggers
unless ``recursive_triggers`` is on; Chameleon turns it on for its own connections, and
a BEFORE INSERT trigger refuses any insert that would collide with an existing row, so a
connection without the pragma (the sqlite3 shell, another program) cannot replace rows
either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect

from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import SchemaMismatchError

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (and Mako beneath it) is imported where a migration or a revision check runs,
# not with the package: every CLI command and every `import chameleon_workflow` would
# otherwise pay for it.

SCRIPT_LOCATION = "chameleon_workflow:migrations"


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic configuration that runs the packaged migrations on ``engine``."""
    from alembic.config import Config  # noqa: PLC0415 - lazy, see above

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent)."""
    from alembic import command  # noqa: PLC0415 - lazy, see above

    config = alembic_config(engine)
    with translated_errors(), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - lazy, see above

    with translated_errors(), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    """Raise SchemaMismatchError unless the database is Chameleon's, at the newest revision.

    Only reads: commands that must not write (verify, history, logs) call this instead of
    migrating, so a mistyped path or a foreign database is refused, never altered.
    """
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - lazy, see above
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - lazy, see above

    where = engine.url.render_as_string(hide_password=True)
    with translated_errors(), engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = None
        if "alembic_version" in tables:
            revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        if not tables:
            raise SchemaMismatchError(f"{where} is empty: create it with `chameleon init`")
        raise SchemaMismatchError(f"{where} is not a Chameleon database (no schema revision)")
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    head = scripts.get_current_head()
    if revision == head:
        return
    if revision not in {script.revision for script in scripts.walk_revisions()}:
        raise SchemaMismatchError(
            f"{where} is at schema revision {revision}, which this version of Chameleon does "
            f"not know (written by a newer version?); it needs {head}"
        )
    raise SchemaMismatchError(
        f"{where} is at schema revision {revision}, older than {head}: "
        "upgrade it with `chameleon db upgrade`"
    )


#: Table -> the column sets that identify a row (primary key, then unique keys).
PROTECTED_TABLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "uow_history": (("history_id",), ("uow_id", "sequence")),
    "uow_attributes": (("attribute_id",), ("uow_id", "key", "version")),
    "interaction_logs": (("log_id",),),
    "local_workflows": (("local_workflow_id",), ("instance_id", "name")),
    "local_roles": (("role_id",), ("local_workflow_id", "name")),
    "local_interactions": (("interaction_id",), ("local_workflow_id", "name")),
    "local_components": (("component_id",), ("role_id", "interaction_id", "direction")),
    "local_guardians": (("guardian_id",), ("component_id", "name")),
    "ledger_keys": (("sequence",),),
    "ledger_leaves": (("position",), ("kind", "row_id")),
    "ledger_nodes": (("level", "node_index"),),
    "checkpoints": (("tree_size",),),
    "admin_events": (("sequence",),),
    "archive_manifests": (("segment_id",),),
    "archived_rows": (("kind", "row_id", "segment_id"),),
    "archive_restores": (("segment_id",),),
    "redactions": (("redaction_id",),),
}
#: The tables revision 0009 added to the protected ones.
REDACTION_TABLES = ("redactions",)

PG_REJECT_FUNCTION = """
CREATE OR REPLACE FUNCTION chameleon_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def sqlite_triggers(table: str, keys: tuple[tuple[str, ...], ...]) -> list[str]:
    collide = " OR ".join("(" + " AND ".join(f"{c} = NEW.{c}" for c in cols) + ")" for cols in keys)
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END",
        f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
        f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {collide}) "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: INSERT would replace a row'); END",
    ]


def pg_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION chameleon_reject_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION chameleon_reject_change()",
    ]


def create_statements(dialect: str, tables: Iterable[str] | None = None) -> list[str]:
    """Return the DDL that makes ``tables`` (default: every protected table) append-only.

    A migration names the tables it protects, so that it keeps creating exactly what it
    created when it was released while later migrations add tables to the list.
    """
    names = list(PROTECTED_TABLES if tables is None else tables)
    if dialect == "sqlite":
        return [s for t in names for s in sqlite_triggers(t, PROTECTED_TABLES[t])]
    return [PG_REJECT_FUNCTION] + [s for t in names for s in pg_triggers(t)]


def drop_statements(dialect: str, tables: Iterable[str] | None = None) -> list[str]:
    """Return the DDL that removes the protection (downgrade and tamper tests only)."""
    names = list(PROTECTED_TABLES if tables is None else tables)
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {t}_{kind}"
            for t in names
            for kind in ("no_update", "no_delete", "no_replace")
        ]
    return [
        f"DROP TRIGGER IF EXISTS {t}_{kind} ON {t}"
        for t in names
        for kind in ("no_change", "no_update", "no_delete", "no_truncate")
    ]


#: The ledger tables an archive run deletes from (migration 0008), and each one's key column.
ARCHIVABLE_TABLES: dict[str, str] = {
    "uow_history": "history_id",
    "uow_attributes": "attribute_id",
    "interaction_logs": "log_id",
}
ARCHIVE_DELETE_FUNCTION = "chameleon_archived_delete"
_ARCHIVE_REFUSAL = "DELETE refused (no archive manifest covers the row)"
PG_ARCHIVE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {ARCHIVE_DELETE_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM archived_rows a
        WHERE a.kind = TG_TABLE_NAME::text COLLATE "default"
        AND a.row_id = (to_jsonb(OLD) ->> TG_ARGV[0])
        AND NOT EXISTS (SELECT 1 FROM archive_restores r WHERE r.segment_id = a.segment_id)
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: {_ARCHIVE_REFUSAL}', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def sqlite_archive_delete(table: str, key: str) -> str:
    return (
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        "WHEN NOT EXISTS (SELECT 1 FROM archived_rows a "
        f"WHERE a.kind = '{table}' AND a.row_id = CAST(OLD.{key} AS TEXT) "
        "AND a.segment_id NOT IN (SELECT segment_id FROM archive_restores)) "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {_ARCHIVE_REFUSAL}'); END"
    )


def archive_delete_statements(dialect: str) -> list[str]:
    """Return the DDL (migration 0008) that lets a DELETE through only under a manifest.

    SQLite's ``{t}_no_delete`` is replaced by one that admits a row ``archived_rows``
    names under a manifest not restored since. PostgreSQL's ``{t}_no_change`` becomes two
    triggers: ``{t}_no_update`` (BEFORE UPDATE, the rejecting function as before) and
    ``{t}_no_delete`` (BEFORE DELETE, the manifest-aware function), kept apart so either
    can be replaced alone.
    """
    if dialect == "sqlite":
        return [
            s
            for table, key in ARCHIVABLE_TABLES.items()
            for s in (
                f"DROP TRIGGER IF EXISTS {table}_no_delete",
                sqlite_archive_delete(table, key),
            )
        ]
    statements = [PG_REJECT_FUNCTION, PG_ARCHIVE_FUNCTION]
    for table, key in ARCHIVABLE_TABLES.items():
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION chameleon_reject_change()",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {ARCHIVE_DELETE_FUNCTION}('{key}')",
        ]
    return statements


def unarchive_delete_statements(dialect: str) -> list[str]:
    """Return the DDL that puts back the refusal of every DELETE (0008's downgrade)."""
    tables = list(ARCHIVABLE_TABLES)
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {t}_no_delete" for t in tables] + [
            s for t in tables for s in sqlite_triggers(t, PROTECTED_TABLES[t]) if "_no_delete " in s
        ]
    statements = [
        f"DROP TRIGGER IF EXISTS {t}_{kind} ON {t}"
        for t in tables
        for kind in ("no_update", "no_delete")
    ]
    statements += [
        f"CREATE TRIGGER {t}_no_change BEFORE UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION chameleon_reject_change()"
        for t in tables
    ]
    return [*statements, f"DROP FUNCTION IF EXISTS {ARCHIVE_DELETE_FUNCTION}()"]


#: Removes the PostgreSQL trigger function once no protected table uses it (first revision).
DROP_PG_FUNCTION = "DROP FUNCTION IF EXISTS chameleon_reject_change()"


#: Columns of a UOW row that never change once written: an UPDATE of them is refused.
UOW_IDENTITY_COLUMNS = ("instance_id", "local_workflow_id", "parent_id", "created_at")
IDENTITY_TRIGGER = "units_of_work_identity"
IDENTITY_FUNCTION = "chameleon_keep_identity"
_IDENTITY_MESSAGE = (
    "units_of_work.instance_id, local_workflow_id, parent_id and created_at never change "
    "(append-only): UPDATE refused"
)
_COLUMNS = ", ".join(UOW_IDENTITY_COLUMNS)
_SQLITE_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in UOW_IDENTITY_COLUMNS)
_PG_NEW, _PG_OLD = (", ".join(f"{row}.{c}" for c in UOW_IDENTITY_COLUMNS) for row in ("NEW", "OLD"))
_PG_IDENTITY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {IDENTITY_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF ROW({_PG_NEW}) IS DISTINCT FROM ROW({_PG_OLD}) THEN
        RAISE EXCEPTION '{_IDENTITY_MESSAGE}' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$
"""


def identity_statements(dialect: str) -> list[str]:
    """Return the DDL that refuses a change of a UOW row's identity columns.

    The trigger fires only for an UPDATE naming one of them, so the ledger's own saves
    (which never do) pay nothing for it.
    """
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {IDENTITY_TRIGGER} BEFORE UPDATE OF {_COLUMNS} ON units_of_work "
            f"WHEN {_SQLITE_CHANGED} BEGIN SELECT RAISE(ABORT, '{_IDENTITY_MESSAGE}'); END"
        ]
    return [
        _PG_IDENTITY_FUNCTION,
        f"CREATE TRIGGER {IDENTITY_TRIGGER} BEFORE UPDATE OF {_COLUMNS} ON units_of_work "
        f"FOR EACH ROW EXECUTE FUNCTION {IDENTITY_FUNCTION}()",
    ]


def drop_identity_statements(dialect: str) -> list[str]:
    """Return the DDL that removes the identity guard (downgrade and tamper tests only)."""
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {IDENTITY_TRIGGER}"]
    return [
        f"DROP TRIGGER IF EXISTS {IDENTITY_TRIGGER} ON units_of_work",
        f"DROP FUNCTION IF EXISTS {IDENTITY_FUNCTION}()",
    ]
