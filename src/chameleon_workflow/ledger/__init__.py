"""The ledger's one writer: UOW state, attribute versions and the hash-chained history."""

from chameleon_workflow.ledger.service import UOWPersistenceService, UOWStateTransition

__all__ = ["UOWPersistenceService", "UOWStateTransition"]
