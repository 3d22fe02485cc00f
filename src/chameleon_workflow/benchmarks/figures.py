"""What a benchmark gets and gives: its context and sizes, and the figures it measures.

A benchmark is a function ``(BenchContext) -> list[Figure]``. The context names the back
end and carries its engine, session factory and URL (none for the process benchmarks)
and the sizes of the run; a figure carries the measured value, the raw-driver baseline
it is judged against when there is one, the target and whether the target is met.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, with the raw-driver baseline it is judged against when there is one."""

    name: str
    backend: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    notes: str = ""
    target: str = ""
    met: bool | None = None
    worst: float | None = None  # the slowest round, so readers see the spread
    peer: str = ""  # set on a side-by-side figure: the baseline is this peer, not the driver


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each benchmark does (the console figures' 100,000 UOWs take the longest)."""

    rows: int = 20_000
    saves: int = 2_000
    rounds: int = ROUNDS
    workers: int = 4
    verify_uows: int = 2_000
    verify_rows: int = 50
    engine_steps: int = 200
    server_clients: int = 4
    server_seconds: int = 10
    checkpoint_rows: int = 20_000
    archive_uows: int = 300
    console_uows: int = 100_000


@dataclass(frozen=True, slots=True)
class BenchContext:
    """What a benchmark gets: the back end, its engine, session factory, URL and sizes."""

    backend: str
    rows: int
    engine: Engine | None = None
    session_factory: sessionmaker[Session] | None = None
    url: str | None = None
    sizes: Sizes = Sizes()


Benchmark = Callable[[BenchContext], list[Figure]]


@dataclass(frozen=True, slots=True)
class Rates:
    """Best and worst rate over the rounds of one measurement."""

    best: float
    worst: float

    @classmethod
    def of(cls, count: int, seconds: Sequence[float]) -> Rates:
        """Turn per-round durations of ``count`` operations into rates."""
        return cls(count / min(seconds), count / max(seconds))


def figure(
    name: str,
    ctx: BenchContext,
    value: float | Rates,
    unit: str,
    baseline: float | Rates | None,
    notes: str,
    target: str = "",
    met: bool | None = None,
) -> Figure:
    """Build a figure; rates carry their best (value) and worst round."""
    best, worst = (value, None) if isinstance(value, float | int) else (value.best, value.worst)
    base = baseline if baseline is None or isinstance(baseline, float | int) else baseline.best
    ratio = best / base if base else None
    return Figure(name, ctx.backend, best, unit, base, ratio, notes, target, met, worst)
