"""procrastinate as a peer of the engine step: a PostgreSQL job deferred, then executed.

Deferring a job inserts it into ``procrastinate_jobs`` (its stored procedure, one
transaction); a worker then claims it (``FOR UPDATE SKIP LOCKED`` in a stored
procedure), runs the task and records the job as succeeded (another transaction). The
worker here runs one job at a time and stops when the queue is empty (``wait=False``,
no LISTEN/NOTIFY), the way the engine figure drains its queue with one worker.

The schema is applied to the benchmark's scratch PostgreSQL database (its documented
``schema_manager``). Only imported under ``--peers``: the library is the optional
``peers`` extra.
"""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import version

import procrastinate

from chameleon_workflow.benchmarks.peers_dbos import system_database_url

QUEUE = "chameleon_bench"


class ProcrastinatePeer:
    """A procrastinate app on the benchmark's database with one task and its schema."""

    def __init__(self, url: str) -> None:
        self.conninfo = system_database_url(url)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=self.conninfo)
        )
        self.executed = 0

        @self.app.task(name="chameleon_bench_move", queue=QUEUE)
        def move(step: int) -> None:
            self.executed += 1

        self.task = move
        asyncio.run(self._apply_schema())

    async def _apply_schema(self) -> None:
        async with self.app.open_async():
            await self.app.schema_manager.apply_schema_async()

    def run(self, count: int) -> tuple[float, float]:
        """Defer ``count`` jobs, then execute them all; return the seconds of each half."""
        return asyncio.run(self._run(count))

    async def _run(self, count: int) -> tuple[float, float]:
        async with self.app.open_async():
            started = time.perf_counter()
            for n in range(count):
                await self.task.defer_async(step=n)
            deferred = time.perf_counter()
            before = self.executed
            await self.app.run_worker_async(
                queues=[QUEUE],
                concurrency=1,
                wait=False,
                listen_notify=False,
                install_signal_handlers=False,
            )
            executed = time.perf_counter()
        if self.executed - before != count:
            raise AssertionError(f"procrastinate peer ran {self.executed - before} of {count} jobs")
        return deferred - started, executed - deferred

    def settings(self) -> str:
        """What the peer runs with, for the figure's notes."""
        return f"procrastinate {version('procrastinate')}, psycopg connector, 1 worker"
