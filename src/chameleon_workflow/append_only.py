"""The append-only triggers as the newest revisions have them: redaction and archive aware.

From revision 0009 the ledger's UPDATE and DELETE are refused by separate triggers
(``{t}_no_update``, ``{t}_no_delete``; PostgreSQL's ``{t}_no_change`` is gone). The
UPDATE trigger of the tables holding attribute values lets exactly one change through, a
redaction; the DELETE trigger of the archivable tables (0008) admits a row an archive
manifest covers. ``schema`` holds the older forms the earlier migrations create.
"""

from __future__ import annotations

from collections.abc import Iterable

from chameleon_workflow.schema import (
    ARCHIVABLE_TABLES,
    ARCHIVE_DELETE_FUNCTION,
    PG_ARCHIVE_FUNCTION,
    PG_REJECT_FUNCTION,
    PROTECTED_TABLES,
    REDACTION_TABLES,
    archive_delete_statements,
    create_statements,
    drop_statements,
    pg_triggers,
    sqlite_archive_delete,
    sqlite_triggers,
)

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
    if table in ARCHIVABLE_TABLES:
        delete = f"EXECUTE FUNCTION {ARCHIVE_DELETE_FUNCTION}('{ARCHIVABLE_TABLES[table]}')"
    else:
        delete = "EXECUTE FUNCTION chameleon_reject_change()"
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} FOR EACH ROW {update}",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} FOR EACH ROW {delete}",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION chameleon_reject_change()",
    ]


def guard_statements(dialect: str, tables: Iterable[str] | None = None) -> list[str]:
    """Return the DDL of the append-only triggers as revision 0009 made them.

    Every table has its own UPDATE and DELETE triggers: the UPDATE one of the tables that
    hold attribute values admits a redaction (``REDACTABLE``), the DELETE one of the
    archivable tables admits a row under an archive manifest (``ARCHIVABLE_TABLES``, 0008).
    PostgreSQL's first three statements create the trigger functions.
    """
    names = list(PROTECTED_TABLES if tables is None else tables)
    if dialect == "sqlite":
        statements = []
        for table in names:
            created = sqlite_triggers(table, PROTECTED_TABLES[table])
            if table in REDACTABLE:
                created[0] = _sqlite_redactable_update(table)
            if table in ARCHIVABLE_TABLES:
                created[1] = sqlite_archive_delete(table, ARCHIVABLE_TABLES[table])
            statements += created
        return statements
    functions = [PG_REJECT_FUNCTION, _PG_REDACT_FUNCTION, PG_ARCHIVE_FUNCTION]
    return functions + [s for t in names for s in _pg_guard(t)]


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


def archive_form_statements(dialect: str) -> list[str]:
    """Return the append-only DDL of the tables protected up to 0008, as 0008 left it.

    Revision 0009 rebuilds these triggers; its downgrade puts this form back.
    """
    tables = [t for t in PROTECTED_TABLES if t not in REDACTION_TABLES]
    if dialect == "sqlite":
        replaced = {
            f"{table}_no_delete": sqlite_archive_delete(table, key)
            for table, key in ARCHIVABLE_TABLES.items()
        }
        return [replaced.get(s.split()[2], s) for s in create_statements(dialect, tables)]
    others = [t for t in tables if t not in ARCHIVABLE_TABLES]
    truncates = [pg_triggers(t)[1] for t in ARCHIVABLE_TABLES]
    return [*create_statements(dialect, others), *truncates, *archive_delete_statements(dialect)]


def head_statements(dialect: str) -> list[str]:
    """Return the append-only DDL of every protected table as the newest revision has it."""
    return guard_statements(dialect)
