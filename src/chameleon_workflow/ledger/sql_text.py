"""The SQL text of the persistence hot path: column orders, statement templates.

``_statements`` fills these in per back end (placeholders, casts) and runs them on the
raw driver connection; the column orders are the parameter orders.
"""

from __future__ import annotations

from collections.abc import Sequence

SNAPSHOT = """
SELECT u.version, u.content_hash, a.key, a.version, {value}, a.is_deleted{extra}
FROM units_of_work u
LEFT JOIN uow_attributes a ON a.uow_id = u.uow_id AND NOT EXISTS (
    SELECT 1 FROM uow_attributes n
    WHERE n.uow_id = a.uow_id AND n.key = a.key AND n.version > a.version)
WHERE u.uow_id = {p}
"""
#: PostgreSQL: SHA-256 over the UOW's latest attribute rows as the server renders them.
#: Equal fingerprints mean the very rows a drift check accepted (ORDER BY key: one text).
PG_FINGERPRINT = """(SELECT sha256(convert_to(coalesce(string_agg(
    jsonb_build_array(f.key, f.version, f.value, f.is_deleted)::text, ',' ORDER BY f.key), ''),
    'UTF8'))
FROM uow_attributes f WHERE f.uow_id = {uow} AND NOT EXISTS (
    SELECT 1 FROM uow_attributes g
    WHERE g.uow_id = f.uow_id AND g.key = f.key AND g.version > f.version))"""
UPDATE_COLUMNS = (
    "status",
    "current_interaction_id",
    "content_hash",
    "last_heartbeat_at",
    "held_by_actor_id",
    "retry_count",
    "updated_at",
    "version",
    "history_sequence",
    "chain_head",
)
TOUCH_COLUMNS = ("held_by_actor_id", "retry_count", "last_heartbeat_at", "updated_at", "version")
HISTORY_COLUMNS = (
    "history_id",
    "instance_id",
    "uow_id",
    "sequence",
    "event_type",
    "previous_status",
    "new_status",
    "previous_state_hash",
    "new_state_hash",
    "previous_interaction_id",
    "new_interaction_id",
    "actor_id",
    "transition_timestamp",
    "reasoning",
    "transition_metadata",
    "changes",
    "chain_hash",
)
ATTRIBUTE_COLUMNS = (
    "uow_id",
    "instance_id",
    "key",
    "version",
    "value",
    "is_deleted",
    "actor_id",
    "reasoning",
    "created_at",
)
UUID_COLUMNS = frozenset(
    {
        "history_id",
        "instance_id",
        "uow_id",
        "previous_interaction_id",
        "new_interaction_id",
        "actor_id",
        "current_interaction_id",
        "held_by_actor_id",
    }
)
TIME_COLUMNS = frozenset({"last_heartbeat_at", "updated_at", "transition_timestamp", "created_at"})
JSON_COLUMNS = frozenset({"transition_metadata", "changes", "value"})


def placeholders(columns: Sequence[str], p: str, casts: dict[str, str]) -> list[str]:
    """Return one placeholder per column, with the column's cast if it has one."""
    return [f"{p}{casts.get(c, '')}" for c in columns]


def cas_sql(columns: Sequence[str], p: str, casts: dict[str, str]) -> str:
    """Return the compare-and-set UPDATE of ``columns`` (then uow_id and version)."""
    pairs = ", ".join(
        f"{c} = {v}" for c, v in zip(columns, placeholders(columns, p, casts), strict=True)
    )
    return f"UPDATE units_of_work SET {pairs} WHERE uow_id = {p} AND version = {p}"


def values_sql(columns: Sequence[str], p: str, casts: dict[str, str]) -> str:
    """Return the VALUES list of placeholders for ``columns``."""
    return ", ".join(placeholders(columns, p, casts))
