"""The project's benchmark: figures against the raw driver in the same run."""

from chameleon_workflow.benchmarks.figures import BenchContext, Benchmark, Figure, Rates, Sizes
from chameleon_workflow.benchmarks.runner import main, render, render_peers, run_benchmarks

__all__ = [
    "BenchContext",
    "Benchmark",
    "Figure",
    "Rates",
    "Sizes",
    "main",
    "render",
    "render_peers",
    "run_benchmarks",
]
