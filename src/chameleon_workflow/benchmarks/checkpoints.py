"""Checkpoint benchmarks: sealing new rows, one inclusion proof, verification against a checkpoint.

Whatever the earlier benchmarks left in the database is sealed first, untimed; then
``checkpoint_rows`` new history rows (50 per UOW, built like the verification
benchmark's, with each UOW's first row and attribute versions) are written and the seal
that takes them is timed. The proof is of a history row in the middle of the tree; the
verification recomputes every covered row of the database, so its rate is per row of
the whole tree.
"""

from __future__ import annotations

import json
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from chameleon_workflow.benchmarks.figures import BenchContext, Figure, figure
from chameleon_workflow.benchmarks.ledger import build_ledger
from chameleon_workflow.checkpoints import Signer, prove_inclusion, seal, verify_checkpoint
from chameleon_workflow.checkpoints.heads import Checkpoint
from chameleon_workflow.config import load_settings

ROWS_PER_UOW = 50
#: UOWs written per batch, so building a large ledger never holds it all in memory.
UOWS_PER_BATCH = 2_000


def bench_checkpoint(ctx: BenchContext) -> list[Figure]:
    """Measure the seal of N new rows, one inclusion proof, and verification rows/s."""
    assert ctx.engine is not None
    assert ctx.session_factory is not None
    signer = Signer(Ed25519PrivateKey.generate())
    seal(ctx.engine, signer)  # whatever earlier benchmarks wrote: not part of the figure
    uows = max(1, ctx.sizes.checkpoint_rows // ROWS_PER_UOW)
    for start in range(0, uows, UOWS_PER_BATCH):
        build_ledger(ctx.session_factory, min(UOWS_PER_BATCH, uows - start), ROWS_PER_UOW)
    sealed = seal(ctx.engine, signer)
    head = sealed.checkpoint
    assert head is not None
    proof_ms, proof_bytes, path = _prove_middle(ctx.engine, head)
    with ctx.engine.connect() as connection:
        report = verify_checkpoint(connection, head, signer.public_key)
    if not report.ok:
        raise AssertionError(f"benchmark ledger does not verify: {report.findings[:3]}")
    settings = _settings(ctx)
    seal_notes = f"{settings}; {sealed.new_leaves:,} rows in {sealed.elapsed_s:.2f} s"
    proof_notes = f"{settings}; {head.tree_size:,} leaves, {path} hashes, {proof_bytes:,} B"
    verify_notes = f"{settings}; {report.leaves_checked:,} rows in {report.elapsed_s:.2f} s"
    seal_rate = sealed.new_leaves / sealed.elapsed_s
    return [
        figure("checkpoint: seal new rows", ctx, seal_rate, "rows/s", None, seal_notes),
        figure("checkpoint: inclusion proof", ctx, proof_ms, "ms", None, proof_notes),
        figure("checkpoint: verify", ctx, report.rows_per_second(), "rows/s", None, verify_notes),
    ]


def _prove_middle(engine: Engine, head: Checkpoint) -> tuple[float, int, int]:
    """Time the proof of the history row sealed nearest the middle; return ms, bytes, path."""
    with engine.connect() as connection:
        row_id = connection.execute(
            text(
                "SELECT row_id FROM ledger_leaves WHERE kind = 'uow_history' "
                "AND position >= :middle ORDER BY position LIMIT 1"
            ),
            {"middle": head.tree_size // 2},
        ).scalar_one()
        started = time.perf_counter()
        proof = prove_inclusion(connection, head, "uow_history", row_id)
        elapsed = time.perf_counter() - started
    if not proof.valid():
        raise AssertionError("benchmark proof does not verify")
    return elapsed * 1000, len(json.dumps(proof.to_json())), len(proof.audit_path)


def _settings(ctx: BenchContext) -> str:
    if ctx.backend == "sqlite":
        return f"synchronous={load_settings().sqlite_synchronous}, WAL"
    return "synchronous_commit=on (server default)"
