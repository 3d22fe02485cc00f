"""The test vectors published in docs/ledger.md, shared by the hashing and ledger tests."""

from __future__ import annotations

import dataclasses

from chameleon_workflow.chain import LedgerRecord

VECTOR_ATTRS = {
    "amount": 1250.5,
    "currency": "EUR",
    "approved": False,
    "lines": [1, 2.0, 1e21],
    "note": "café ☕",
    "€": None,
}
VECTOR_ROW_1 = LedgerRecord(
    history_id="00000000-0000-4000-8000-000000000001",
    instance_id="00000000-0000-4000-8000-0000000000aa",
    uow_id="00000000-0000-4000-8000-0000000000bb",
    sequence=1,
    event_type="CREATED",
    previous_status=None,
    new_status="PENDING",
    previous_state_hash=None,
    new_state_hash="264eea2221c5334cfbbc4a84665a0593226858b37df240b26916e5ccf6f7a171",
    previous_interaction_id=None,
    new_interaction_id="00000000-0000-4000-8000-0000000000cc",
    actor_id=None,
    transition_timestamp="2026-01-01T00:00:00.000000Z",
    reasoning="created",
    transition_metadata={"source": "test-vector"},
    changes={"added": VECTOR_ATTRS, "removed": {}, "changed": {}},
)
VECTOR_ROW_2 = dataclasses.replace(
    VECTOR_ROW_1,
    history_id="00000000-0000-4000-8000-000000000002",
    sequence=2,
    event_type="TRANSITION",
    previous_status="PENDING",
    new_status="ACTIVE",
    previous_state_hash=VECTOR_ROW_1.new_state_hash,
    previous_interaction_id=VECTOR_ROW_1.new_interaction_id,
    actor_id="00000000-0000-4000-8000-0000000000dd",
    transition_timestamp="2026-01-01T00:00:01.500000Z",
    reasoning="checked out",
    transition_metadata=None,
    changes=None,
)
