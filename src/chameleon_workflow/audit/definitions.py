"""Whether every stored workflow definition still hashes to what was recorded at its import.

The definition tables are append-only, so an ordinary writer cannot change a guardian's
limit; their owner can, with the triggers off. Recomputing ``definition_hash`` from the
rows catches that edit even after the triggers were put back (unless the hash on the
workflow row was rewritten too, which only a signed checkpoint taken before can show).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection

from chameleon_workflow.audit.report import FindingKind, Tally
from chameleon_workflow.definitions import stored_definitions


def check_definitions(conn: Connection, instance_id: uuid.UUID | None, tally: Tally) -> int:
    """Report each definition whose rows no longer hash to its recorded hash; return how many."""
    checked = 0
    for workflow, digest in stored_definitions(conn, instance_id):
        checked += 1
        if digest != workflow["definition_hash"]:
            tally.add(
                FindingKind.DEFINITION_ALTERED,
                "",
                None,
                f"workflow {workflow['name']!r} ({workflow['local_workflow_id']}) hashes to "
                f"{digest}, recorded {workflow['definition_hash']}",
            )
    return checked
