"""Whether the database still guards the ledger: every append-only trigger present and armed.

That is the append-only triggers of the ledger tables and the trigger refusing a change of
a UOW row's identity columns (``schema.identity_statements``). Someone who owns the
tables can drop a trigger, disable it (``ALTER TABLE … DISABLE
TRIGGER``), set it to fire only for replicas, give it a ``WHEN`` that never holds, or
replace the function it calls; afterwards rows can be changed or deleted. Each of these
leaves the catalog different from what the migrations created, and that is what is
checked here. (A superuser who restores the catalog afterwards is caught only by a signed
checkpoint taken before; see docs/ledger.md.)
"""

from __future__ import annotations

import re
from typing import Any

from chameleon_workflow.append_only import REDACT_FUNCTION, REDACTABLE, guard_statements
from chameleon_workflow.audit.report import FindingKind, Tally
from chameleon_workflow.schema import (
    ARCHIVABLE_TABLES,
    ARCHIVE_DELETE_FUNCTION,
    IDENTITY_FUNCTION,
    IDENTITY_TRIGGER,
    PROTECTED_TABLES,
    UOW_IDENTITY_COLUMNS,
    identity_statements,
)

# pg_trigger.tgtype bits: ROW 1, BEFORE 2, DELETE 8, UPDATE 16, TRUNCATE 32.
_PG_TYPES = {"no_update": 1 | 2 | 16, "no_delete": 1 | 2 | 8, "no_truncate": 2 | 32}
_PG_ARMED = frozenset({"O", "A"})  # fires in ordinary sessions ("D" off, "R" replicas only)
_PG_IDENTITY_TYPE = 1 | 2 | 16  # ROW, BEFORE, UPDATE
_PG_TRIGGERS = """
SELECT c.relname, t.tgname, t.tgenabled, t.tgtype, t.tgqual IS NULL, p.proname,
    array(SELECT a.attname::text FROM unnest(t.tgattr::int2[]) n
          JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = n ORDER BY a.attname)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal
"""
_PG_FUNCTION = "SELECT prosrc FROM pg_proc WHERE proname = %s"
_SQLITE_TRIGGERS = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"


def check_protection(raw: Any, dialect: str, tally: Tally) -> None:
    """Report each append-only trigger (and PostgreSQL's trigger function) not as created."""
    problems = _sqlite_problems(raw) if dialect == "sqlite" else _postgres_problems(raw)
    for problem in problems:
        tally.add(FindingKind.PROTECTION_MISSING, "", None, problem)


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _sqlite_problems(raw: Any) -> list[str]:
    stored = {name: _squeezed(sql or "") for name, sql in raw.execute(_SQLITE_TRIGGERS)}
    problems = []
    for statement in guard_statements("sqlite") + identity_statements("sqlite"):
        name = statement.split()[2]
        if name not in stored:
            problems.append(f"append-only trigger {name} is missing")
        elif stored[name] != _squeezed(statement):
            problems.append(f"append-only trigger {name} was altered")
    return problems


def _postgres_problems(raw: Any) -> list[str]:
    found = {(row[0], row[1]): row[2:] for row in raw.execute(_PG_TRIGGERS).fetchall()}
    problems = []
    for table in PROTECTED_TABLES:
        for kind, tgtype in _PG_TYPES.items():
            name = f"{table}_{kind}"
            state = found.get((table, name))
            if state is None:
                problems.append(f"append-only trigger {name} on {table} is missing")
            elif state[0] not in _PG_ARMED:
                problems.append(f"append-only trigger {name} on {table} is disabled")
            elif state[1:4] != (tgtype, True, _function(table, kind)):
                problems.append(f"append-only trigger {name} on {table} was altered")
    problems += _pg_identity_problems(found.get(("units_of_work", IDENTITY_TRIGGER)))
    for function, statement in (
        ("chameleon_reject_change", guard_statements("postgresql")[0]),
        (REDACT_FUNCTION, guard_statements("postgresql")[1]),
        (ARCHIVE_DELETE_FUNCTION, guard_statements("postgresql")[2]),
        (IDENTITY_FUNCTION, identity_statements("postgresql")[0]),
    ):
        body = raw.execute(_PG_FUNCTION, (function,)).fetchall()
        if [_squeezed(row[0]) for row in body] != [_squeezed(statement.split("$$")[1])]:
            problems.append(f"trigger function {function} is missing or was altered")
    return problems


def _function(table: str, kind: str) -> str:
    """Return the function a trigger calls.

    Redactable tables' UPDATE admits a redaction, archivable tables' DELETE a row under an
    archive manifest; every other trigger rejects.
    """
    if kind == "no_update" and table in REDACTABLE:
        return REDACT_FUNCTION
    if kind == "no_delete" and table in ARCHIVABLE_TABLES:
        return ARCHIVE_DELETE_FUNCTION
    return "chameleon_reject_change"


def _pg_identity_problems(state: tuple[Any, ...] | None) -> list[str]:
    name = f"identity trigger {IDENTITY_TRIGGER} on units_of_work"
    if state is None:
        return [f"{name} is missing"]
    if state[0] not in _PG_ARMED:
        return [f"{name} is disabled"]
    expected = (_PG_IDENTITY_TYPE, True, IDENTITY_FUNCTION, sorted(UOW_IDENTITY_COLUMNS))
    if (*state[1:4], list(state[4])) != expected:
        return [f"{name} was altered"]
    return []
