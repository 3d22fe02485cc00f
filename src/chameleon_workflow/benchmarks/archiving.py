"""Archive benchmarks on the demo's data: archive rows/s, compression, verify-from-archive rows/s.

The invoice demo drives ``archive_uows`` invoices to their end (untimed); then one archive
run takes every finished UOW of its instance (timed: sealing, writing, reading back,
signing and the audited delete), and the check of the segments against the checkpoint
tree and the log-stream links is timed too. Compression is the segment's raw JSON Lines
bytes over its stored bytes. Memory: the segments are then restored (untimed) and the
same UOWs archived again under ``tracemalloc``, whose peak is the figure (traced Python
allocations, not the process's resident size; a run holds one batch of at most 500 UOWs
at a time, so the peak follows the batch, not the number of rows archived).
"""

from __future__ import annotations

import tempfile
import tracemalloc
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chameleon_workflow.archive.restore import restore
from chameleon_workflow.archive.run import archive
from chameleon_workflow.archive.selection import Scope
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.archive.verify import check_archive
from chameleon_workflow.benchmarks.figures import BenchContext, Figure, figure
from chameleon_workflow.checkpoints import Signer
from chameleon_workflow.demo import run_demo
from chameleon_workflow.keys import find_keys
from chameleon_workflow.models import utcnow


def bench_archive(ctx: BenchContext) -> list[Figure]:
    """Measure an archive run and the verification of its segments on the demo's data."""
    assert ctx.engine is not None
    assert ctx.session_factory is not None
    assert ctx.url is not None
    demo = run_demo(ctx.session_factory, uows=ctx.sizes.archive_uows)
    signer = Signer(Ed25519PrivateKey.generate())
    with tempfile.TemporaryDirectory() as folder:
        store = DirectoryStore.for_writing(Path(folder))
        result = archive(ctx.engine, store, signer, Scope(utcnow(), demo.instance_id))
        with ctx.engine.connect() as connection:
            checked = check_archive(connection, store, signer.public_key, find_keys(ctx.url))
        if checked.problems or not result.total_rows:
            raise AssertionError(f"benchmark archive does not verify: {checked.problems[:3]}")
        for segment_id in result.segments:
            restore(ctx.engine, store, segment_id, signer.public_key)
        tracemalloc.start()
        try:
            again = archive(ctx.engine, store, signer, Scope(utcnow(), demo.instance_id))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    rows = f"{result.total_rows:,} rows of {result.uows:,} UOWs"
    return [
        figure(
            "archive: rows archived",
            ctx,
            result.total_rows / result.elapsed_s,
            "rows/s",
            None,
            f"{rows} in {result.elapsed_s:.2f} s (seal, write, read back, delete)",
        ),
        figure(
            "archive: compression",
            ctx,
            result.compression_ratio(),
            "x",
            None,
            f"{result.raw_bytes:,} B of JSON Lines in {result.stored_bytes:,} B (zstd 9)",
        ),
        figure(
            "archive: verify segments",
            ctx,
            checked.rows_per_second(),
            "rows/s",
            None,
            f"{checked.rows:,} archived rows in {checked.elapsed_s:.2f} s",
        ),
        figure(
            "archive: peak memory",
            ctx,
            peak / 1e6,
            "MB",
            None,
            f"tracemalloc peak of a run of {again.total_rows:,} rows in "
            f"{len(again.segments)} segment(s); bounded by the 500-UOW batch",
        ),
    ]
