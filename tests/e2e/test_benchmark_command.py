"""The benchmark command runs end to end on SQLite and prints every figure it promises."""

from __future__ import annotations

import pytest

from chameleon_workflow.benchmarks import runner as benchmark

TINY = ["--rows", "100", "--saves", "20", "--rounds", "1", "--verify-uows", "5"]
TINY += ["--verify-rows", "4", "--engine-steps", "5", "--server-seconds", "1"]
TINY += ["--checkpoint-rows", "100", "--archive-uows", "10"]
TINY += ["--console-uows", "40"]


def test_benchmark_prints_every_sqlite_figure(capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny run exits 0 and prints one row per SQLite figure, each with a measured value."""
    assert benchmark.main(TINY) == 0
    out = capsys.readouterr().out
    rows = [line.split("│")[1:4] for line in out.splitlines() if line.startswith("│")]
    named = {(name.strip(), backend.strip()) for name, backend, _ in rows if name.strip()}
    assert named == {
        ("record() built entry", "python"),
        ("build + record()", "python"),
        ("memory per 10K buffered", "python"),
        ("flush() vs raw driver", "sqlite"),
        ("save_uow() 1 worker", "sqlite"),
        ("on a Core connection", "sqlite"),
        ("of which: empty Session txn", "sqlite"),
        ("full verification", "sqlite"),
        ("checkpoint: seal new rows", "sqlite"),
        ("checkpoint: inclusion proof", "sqlite"),
        ("checkpoint: verify", "sqlite"),
        ("archive: rows archived", "sqlite"),
        ("archive: compression", "sqlite"),
        ("archive: verify segments", "sqlite"),
        ("archive: peak memory", "sqlite"),
        ("console: first page", "sqlite"),
        ("console: by status", "sqlite"),
        ("console: by attribute", "sqlite"),
        ("console: deep cursor", "sqlite"),
        ("console: timeline", "sqlite"),
        ("engine step, 1 worker", "sqlite"),
        ("server requests", "sqlite"),
        ("server checkout + submit", "sqlite"),
        ("cycle latency p50", "sqlite"),
        ("cycle latency p99", "sqlite"),
    }
    # Rows whose notes fold go on over lines with no name: those hold no figure.
    values = [v.split("(")[0].strip().replace(",", "") for n, _, v in rows if n.strip()]
    assert all(float(v) > 0 for v in values), values
    # The server's cycle rate is judged against the engine's own step rate of the same run.
    cycle = next(line for line in out.splitlines() if "server checkout + submit [sqlite]:" in line)
    assert "target >= 0.5x step, p99 <= 4x p50" in cycle, cycle
