"""The benchmark prints each figure as it is measured and never cuts a figure at 80 columns."""

from __future__ import annotations

import io

from rich.console import Console

from chameleon_workflow.benchmarks.figures import BenchContext, Figure
from chameleon_workflow.benchmarks.runner import figure_line, render, run_benchmarks

FIGURES = [
    Figure(
        "save_uow() 1 worker",
        "postgresql",
        10_071.5,
        "tx/s",
        23_456.0,
        0.43,
        "n" * 90,
        ">= 5,000 tx/s",
        True,
        9_876.0,
    ),
    Figure("full verification", "sqlite", 1_234_567.0, "rows/s", notes="x" * 120),
]


def test_table_keeps_every_figure_whole_at_80_columns() -> None:
    """On an 80-column terminal the values, baselines and ratios are printed whole."""
    out = io.StringIO()
    Console(file=out, width=80).print(render(FIGURES))
    text = out.getvalue()
    for whole in ("10,072 (9,876)", "23,456", "0.43x", "1,234,567", "rows/s", "tx/s"):
        assert whole in text
    assert "…" not in text


def test_figure_line_says_everything() -> None:
    """One figure as a line: name, back end, value and worst, baseline, ratio, target, notes."""
    assert figure_line(FIGURES[0]) == (
        "save_uow() 1 worker [postgresql]: 10,072 (worst 9,876) tx/s; raw 23,456, 0.43x; "
        f"target >= 5,000 tx/s: yes; {'n' * 90}"
    )


def test_each_step_is_announced_then_its_figures_reported() -> None:
    """run_benchmarks tells of each step before it runs and of each figure right after."""
    events: list[str] = []

    def first(ctx: BenchContext) -> list[Figure]:
        events.append("ran first")
        return [Figure("one", ctx.backend, 1.0, "x"), Figure("two", ctx.backend, 2.0, "x")]

    def bench_second(ctx: BenchContext) -> list[Figure]:
        events.append("ran second")
        return [Figure("three", ctx.backend, 3.0, "x")]

    figures = run_benchmarks(
        [],
        process=[first, bench_second],
        database=[],
        engine_steps=False,
        started=lambda label: events.append(f"start {label}"),
        measured=lambda figure: events.append(f"measured {figure.name}"),
    )
    assert [f.name for f in figures] == ["one", "two", "three"]
    assert events == [
        "start first on python",
        "ran first",
        "measured one",
        "measured two",
        "start second on python",
        "ran second",
        "measured three",
    ]
