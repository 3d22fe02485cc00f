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

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import SchemaMismatchError

SCRIPT_LOCATION = "chameleon_workflow:migrations"


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic configuration that runs the packaged migrations on ``engine``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent)."""
    config = alembic_config(engine)
    with translated_errors(), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None when it was never migrated."""
    with translated_errors(), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    """Raise SchemaMismatchError unless the database is Chameleon's, at the newest revision.

    Only reads: commands that must not write (verify, history, logs) call this instead of
    migrating, so a mistyped path or a foreign database is refused, never altered.
    """
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
    "redactions": (("redaction_id",),),
}

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION chameleon_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _sqlite_create(table: str, keys: tuple[tuple[str, ...], ...]) -> list[str]:
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


def _pg_create(table: str) -> list[str]:
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
        return [s for t in names for s in _sqlite_create(t, PROTECTED_TABLES[t])]
    return [_PG_FUNCTION] + [s for t in names for s in _pg_create(t)]


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
        for kind in ("no_change", "no_truncate")
    ]


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


# ---------------------------------------------------------------- redaction: the one UPDATE
# From revision 0009 the ledger's UPDATE and DELETE are refused by separate triggers
# (``{t}_no_update``, ``{t}_no_delete``; PostgreSQL's ``{t}_no_change`` is gone), so that
# the UPDATE trigger of the tables holding attribute values can let exactly one change
# through: a redaction. It must leave every column but the value columns as they were,
# must write the marker into an attribute row (history ``changes`` and log details are
# rewritten around the marker), and the row must be named in ``redactions`` - on
# PostgreSQL by a record written in the same transaction (``txid_current()``).

#: The marker that replaces an erased value (a JSON string).
REDACTED_MARKER = "[redacted]"
_MARKER_JSON = "'\"[redacted]\"'"


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split(", "))


#: Table -> (its primary key, the value columns a redaction may rewrite, all other columns).
#: SQLite's trigger compares the other columns by name: a column added to one of these
#: tables must join its list (and the trigger be recreated), or a redaction could change it.
REDACTABLE: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "uow_attributes": (
        "attribute_id",
        ("value",),
        _names(
            "attribute_id, uow_id, instance_id, key, version, is_deleted, actor_id, reasoning, "
            "created_at, salt, value_digest, history_sequence"
        ),
    ),
    "uow_history": (
        "history_id",
        ("changes",),
        _names(
            "history_id, instance_id, uow_id, sequence, event_type, previous_status, new_status, "
            "previous_state_hash, new_state_hash, previous_interaction_id, new_interaction_id, "
            "actor_id, transition_timestamp, reasoning, transition_metadata, chain_hash, "
            "link_version, key_id, holder_id, retry_count, attributes_digest, "
            "local_workflow_id, parent_id"
        ),
    ),
    "interaction_logs": (
        "log_id",
        ("event_details", "error_metadata"),
        _names(
            "log_id, instance_id, uow_id, actor_id, role_id, interaction_id, timestamp, "
            "log_type, stream_id, stream_seq, key_id, chain_hash"
        ),
    ),
}
REDACT_FUNCTION = "chameleon_redact_or_reject"
_PG_REDACT_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {REDACT_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    values_ text[] := TG_ARGV[1:];
BEGIN
    IF (to_jsonb(NEW) - values_) = (to_jsonb(OLD) - values_)
       AND (TG_TABLE_NAME <> 'uow_attributes' OR to_jsonb(NEW) -> 'value' = {_MARKER_JSON}::jsonb)
       AND EXISTS (
           SELECT 1 FROM redactions r
           WHERE r.table_name = TG_TABLE_NAME
             AND r.row_id = to_jsonb(OLD) ->> TG_ARGV[0]
             AND r.txid = txid_current())
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _sqlite_redactable_update(table: str) -> str:
    key, _values, kept = REDACTABLE[table]
    same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in kept)
    marker = f" AND NEW.value = {_MARKER_JSON}" if table == "uow_attributes" else ""
    named = (
        f"EXISTS (SELECT 1 FROM redactions r WHERE r.table_name = '{table}' "
        f"AND r.row_id = CAST(OLD.{key} AS TEXT))"
    )
    return (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"WHEN NOT ({same}{marker} AND {named}) "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END"
    )


def _pg_guard(table: str) -> list[str]:
    if table in REDACTABLE:
        key, values, _ = REDACTABLE[table]
        arguments = ", ".join(f"'{name}'" for name in (key, *values))
        update = f"EXECUTE FUNCTION {REDACT_FUNCTION}({arguments})"
    else:
        update = "EXECUTE FUNCTION chameleon_reject_change()"
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} FOR EACH ROW {update}",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION chameleon_reject_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION chameleon_reject_change()",
    ]


def guard_statements(dialect: str, tables: Iterable[str] | None = None) -> list[str]:
    """Return the DDL of the append-only triggers as revision 0009 made them (redaction-aware).

    PostgreSQL's first two statements create the trigger functions.
    """
    names = list(PROTECTED_TABLES if tables is None else tables)
    if dialect == "sqlite":
        statements = []
        for table in names:
            created = _sqlite_create(table, PROTECTED_TABLES[table])
            if table in REDACTABLE:
                created[0] = _sqlite_redactable_update(table)
            statements += created
        return statements
    return [_PG_FUNCTION, _PG_REDACT_FUNCTION] + [s for t in names for s in _pg_guard(t)]


def drop_guard_statements(dialect: str, tables: Iterable[str] | None = None) -> list[str]:
    """Return the DDL that removes the triggers of either form (tamper tests, downgrades)."""
    names = list(PROTECTED_TABLES if tables is None else tables)
    if dialect == "sqlite":
        return drop_statements(dialect, names)
    return [
        f"DROP TRIGGER IF EXISTS {t}_{kind} ON {t}"
        for t in names
        for kind in ("no_change", "no_update", "no_delete", "no_truncate")
    ]


#: Removes the redaction trigger function (downgrade of 0009).
DROP_REDACT_FUNCTION = f"DROP FUNCTION IF EXISTS {REDACT_FUNCTION}()"
