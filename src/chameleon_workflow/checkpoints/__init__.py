"""Signed checkpoints: a Merkle tree over every ledger row, its head signed outside the database.

``seal`` gives unsealed rows their positions and signs the new head; ``verify_checkpoint``
proves nothing a checkpoint covers changed since; ``prove_inclusion`` and
``prove_consistency`` build RFC 9162 proofs. See docs/checkpoints.md.
"""

from chameleon_workflow.checkpoints.heads import Checkpoint, read_checkpoint, write_checkpoint
from chameleon_workflow.checkpoints.keys import (
    Signer,
    create_signing_key,
    key_id,
    load_public_key,
    load_signing_key,
    public_pem,
)
from chameleon_workflow.checkpoints.leaves import LEDGER_TABLES, leaf_data
from chameleon_workflow.checkpoints.proofs import (
    InclusionProof,
    prove_consistency,
    prove_inclusion,
)
from chameleon_workflow.checkpoints.sealer import SealResult, seal, seal_to_file
from chameleon_workflow.checkpoints.verify import (
    CheckpointFinding,
    CheckpointFindingKind,
    CheckpointReport,
    verify_checkpoint,
)

__all__ = [
    "LEDGER_TABLES",
    "Checkpoint",
    "CheckpointFinding",
    "CheckpointFindingKind",
    "CheckpointReport",
    "InclusionProof",
    "SealResult",
    "Signer",
    "create_signing_key",
    "key_id",
    "leaf_data",
    "load_public_key",
    "load_signing_key",
    "prove_consistency",
    "prove_inclusion",
    "public_pem",
    "read_checkpoint",
    "seal",
    "seal_to_file",
    "verify_checkpoint",
    "write_checkpoint",
]
