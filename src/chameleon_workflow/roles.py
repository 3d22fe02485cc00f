"""PostgreSQL roles that keep the ledger out of reach of the application's own credentials.

The **owner** role owns every table and runs the migrations. The **application** role,
which the engine and the server log in as, can read every table, insert everywhere, and
update only the tables that change by design (UOW rows, instances, actors, tokens…),
delete only role assignments (revoking a role): never UPDATE, DELETE or TRUNCATE on a
ledger table, and, not being the owner, it cannot
``ALTER TABLE … DISABLE TRIGGER`` or drop the append-only triggers. (A superuser can do
all of that; only a signed checkpoint taken before catches what one does.)

Applying the roles is idempotent and meant to be run again after every schema upgrade,
so that new tables get their grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine, inspect

from chameleon_workflow.append_only import REDACTABLE
from chameleon_workflow.archive import records as _archive_records  # noqa: F401 - its tables
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.models import Base
from chameleon_workflow.redactions import Redaction  # noqa: F401 - registers its table
from chameleon_workflow.schema import ARCHIVABLE_TABLES, PROTECTED_TABLES

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_OWNED_SEQUENCES = """
SELECT s.relname FROM pg_class s
JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = d.refobjid
WHERE s.relkind = 'S' AND t.relname = ANY(%s) ORDER BY s.relname
"""
#: The migrations' bookkeeping table: the application only ever reads it.
_READ_ONLY = frozenset({"alembic_version"})
#: The one table the application deletes from: revoking a role removes its assignment.
_REVOCABLE = frozenset({"actor_role_assignments"})


@dataclass(frozen=True, slots=True)
class RolePlan:
    """Who owns the schema, who the application logs in as, and their optional passwords."""

    owner: str
    app: str
    owner_password: str | None = None
    app_password: str | None = None

    def __post_init__(self) -> None:
        """Refuse names that are not plain lowercase identifiers, or one role for both."""
        for name in (self.owner, self.app):
            if not _ROLE_NAME.fullmatch(name):
                raise ConfigurationError(
                    f"role name {name!r} must be a lowercase identifier (a-z, 0-9, _)"
                )
        if self.owner == self.app:
            raise ConfigurationError("the owner and the application must be different roles")


def role_statements(
    plan: RolePlan, tables: list[str], sequences: list[str] | None = None
) -> list[str]:
    """Return the SQL that creates both roles and gives each exactly what it needs."""
    owner, app = f'"{plan.owner}"', f'"{plan.app}"'
    statements = [
        *_create_role(plan.owner, plan.owner_password),
        *_create_role(plan.app, plan.app_password),
        f"ALTER ROLE {app} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {owner}",
        f"GRANT USAGE ON SCHEMA public TO {app}",
        f"ALTER FUNCTION chameleon_reject_change() OWNER TO {owner}",
    ]
    for table in tables:
        statements += [
            f"ALTER TABLE {table} OWNER TO {owner}",
            f"REVOKE ALL ON {table} FROM PUBLIC, {app}",
            f"GRANT {_privileges(table)} ON {table} TO {app}",
        ]
    # Sequences behind serial columns follow their table's owner; inserting needs USAGE.
    statements += [f"GRANT USAGE ON SEQUENCE {s} TO {app}" for s in sequences or ()]
    return statements


def _create_role(name: str, password: str | None) -> list[str]:
    # CREATE ROLE has no IF NOT EXISTS; a DO block keeps the whole plan idempotent. The
    # password is set outside it, so no password text ever sits inside dollar quotes.
    login = "LOGIN" if password is None else f"LOGIN PASSWORD {_literal(password)}"
    return [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') "
        f'THEN CREATE ROLE "{name}" LOGIN; END IF; END $$',
        f'ALTER ROLE "{name}" {login}',
    ]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _privileges(table: str) -> str:
    if table in _READ_ONLY:
        return "SELECT"
    if table in REDACTABLE:
        # UPDATE of the value columns only: the trigger admits only a redaction. DELETE:
        # the trigger admits only a row an archive manifest covers (ARCHIVABLE_TABLES).
        delete = ", DELETE" if table in ARCHIVABLE_TABLES else ""
        return f"SELECT, INSERT, UPDATE ({', '.join(REDACTABLE[table][1])}){delete}"
    if table in PROTECTED_TABLES:
        return "SELECT, INSERT"
    if table in _REVOCABLE:
        return "SELECT, INSERT, UPDATE, DELETE"
    return "SELECT, INSERT, UPDATE"


def apply_roles(engine: Engine, plan: RolePlan) -> list[str]:
    """Create or update both roles on a migrated PostgreSQL database; return the tables."""
    if engine.dialect.name != "postgresql":
        raise ConfigurationError("database roles exist on PostgreSQL only; SQLite has none")
    with translated_errors(), engine.begin() as conn:
        ours = set(Base.metadata.tables) | _READ_ONLY
        tables = sorted(ours & set(inspect(conn).get_table_names()))
        sequences = [row[0] for row in conn.exec_driver_sql(_OWNED_SEQUENCES, (tables,))]
        for statement in role_statements(plan, tables, sequences):
            conn.exec_driver_sql(statement)
    return tables
