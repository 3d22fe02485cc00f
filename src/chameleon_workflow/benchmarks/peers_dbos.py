"""DBOS as a peer of the engine step: a durable workflow whose step is checkpointed.

DBOS Transact records each workflow in its system database (a status row written when
the workflow starts and updated when it ends) and checkpoints the output of each step
(one row per step), so a crashed workflow resumes after its last finished step. Two
shapes are timed:

- a workflow of one step, one per unit of work: a unit created and moved one step;
- a workflow of many steps: the cost of one more checkpointed step in a running workflow.

The system database is the benchmark's own SQLite file or scratch PostgreSQL database
(``system_database_url``, the library's documented setting). DBOS is a process-wide
singleton: :class:`DbosPeer` launches it and ``close`` destroys it with its registry, so
a second back end starts afresh.

Only imported under ``--peers``: the library is the optional ``peers`` extra.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from dbos import DBOS, DBOSConfig

from chameleon_workflow.db import normalize_url


def system_database_url(url: str) -> str:
    """The benchmark's database URL as DBOS takes it (a plain ``postgresql://`` URL)."""
    return normalize_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


class DbosPeer:
    """A launched DBOS with two workflows: one step each, and ``n`` steps in one."""

    def __init__(self, url: str) -> None:
        self.backend = "sqlite" if url.startswith("sqlite") else "postgresql"
        config: DBOSConfig = {
            "name": "chameleon-bench",
            "system_database_url": system_database_url(url),
            "log_level": "WARNING",
        }
        _log_to_current_stderr()
        DBOS(config=config)
        try:
            self.one_step, self.many_steps = _register()
            DBOS.launch()
        except BaseException:
            self.close()
            raise
        self.moved = 0

    def run_workflows(self, count: int) -> None:
        """Run ``count`` workflows of one checkpointed step each, one after the other."""
        for n in range(count):
            self.moved += self.one_step(n) - n

    def run_steps(self, count: int) -> None:
        """Run one workflow of ``count`` checkpointed steps."""
        self.moved += self.many_steps(count)

    def settings(self) -> str:
        """What the peer runs with, for the figure's notes."""
        return f"dbos {version('dbos')}, system database on {self.backend}"

    def close(self) -> None:
        """Shut DBOS down and forget its workflows, so it can be launched again."""
        DBOS.destroy(destroy_registry=True)


class _CurrentStderr(logging.Handler):
    """Write each record to ``sys.stderr`` as it is when the record comes."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


def _log_to_current_stderr() -> None:
    """Give DBOS's logger a handler that finds ``sys.stderr`` at each record.

    Left alone, DBOS adds a console handler bound to the stderr of the first launch; a later
    launch in the same process (the next back end) may find that stream replaced or closed.
    DBOS adds its own only when its logger has none, so this one takes its place.
    """
    dbos_logger = logging.getLogger("dbos")
    if not any(isinstance(h, _CurrentStderr) for h in dbos_logger.handlers):
        for handler in list(dbos_logger.handlers):
            if isinstance(handler, logging.StreamHandler):
                dbos_logger.removeHandler(handler)
        dbos_logger.addHandler(_CurrentStderr())
        dbos_logger.propagate = False


def _register() -> tuple[Callable[[int], int], Callable[[int], int]]:
    """Declare the benchmark's step and workflows on the current DBOS registry."""

    @DBOS.step(name="chameleon_bench_move")
    def move(step: int) -> int:
        return step + 1

    @DBOS.workflow(name="chameleon_bench_one_step")
    def one_step(step: int) -> int:
        return move(step)

    @DBOS.workflow(name="chameleon_bench_many_steps")
    def many_steps(count: int) -> int:
        done = 0
        for _ in range(count):
            done = move(done)
        return done

    return _typed(one_step), _typed(many_steps)


def _typed(workflow: Any) -> Callable[[int], int]:
    return workflow  # type: ignore[no-any-return]
