"""Full-database verification shared between this process and worker processes.

Each UOW's chain is independent of every other, so a page of UOWs is a unit of work: the
calling process reads pages of UOW rows and either checks a page itself or hands it to a
worker, which reads that page's history and attributes on its own connection and sends
back its counts and findings. The caller keeps working while workers start (a spawned
interpreter takes about a second to import the package), takes back pages nobody has
picked up yet when it runs out, and puts the results together in page order: the report
is the one the serial path produces.

On PostgreSQL the workers read the caller's snapshot (``pg_export_snapshot``). On SQLite
they open the file read-only and see what is committed when they read; verification runs
on committed data anyway.

Opt-in (``audit.verify(..., workers=N)``): measured on a 2-core machine shared with other
jobs (500,000 rows), two processes ran at 40-75K rows/s against 45-77K for one, because
there was no idle core to win and each worker spends about a second importing.
"""

from __future__ import annotations

import multiprocessing
import queue
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection

from . import audit
from ._verify_reader import VerifyReader
from .db import translated_errors
from .errors import ChameleonError, DatabaseError

#: UOWs per task: small enough to balance two workers, large enough to amortise a query.
TASK_PAGE = 100
_WAIT_S = 0.05

PageResult = tuple[int, int, int, list["audit.Finding"]]


@dataclass(frozen=True, slots=True)
class Target:
    """How a worker reaches the database being verified."""

    dialect: str
    dsn: str
    snapshot: str | None
    scope: str | None


def target_of(conn: Connection, scope: str | None) -> Target | None:
    """Describe how workers can open the same database, or None if they cannot."""
    url = conn.engine.url
    if conn.dialect.name == "sqlite":
        path = url.database or ""
        if path in ("", ":memory:") or path.startswith("file:") or url.query.get("mode"):
            return None
        return Target("sqlite", str(Path(path).resolve()), None, scope)
    raw: Any = conn.connection.driver_connection
    snapshot = raw.execute("SELECT pg_export_snapshot()").fetchone()[0]
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return Target("postgresql", dsn, snapshot, scope)


def _connect(target: Target) -> Any:
    if target.dialect == "sqlite":
        return sqlite3.connect(f"{Path(target.dsn).as_uri()}?mode=ro", uri=True)
    raw = psycopg.connect(target.dsn)
    if target.snapshot is not None:
        raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        raw.read_only = True
        raw.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(target.snapshot))
    return raw


def check_page(reader: VerifyReader, page: list[tuple[Any, ...]]) -> PageResult:
    """Verify one page of UOW rows; return its counts and findings."""
    tally = audit.new_tally()
    audit.verify_page(reader, page, tally)
    return tally.uows, tally.history, tally.attributes, tally.findings


def _work(target: Target, tasks: Any, results: Any) -> None:
    """Worker process: check the pages handed over until told to stop."""
    try:
        with translated_errors():
            raw = _connect(target)
            reader = VerifyReader(raw, target.dialect, target.scope)
            while (task := tasks.get()) is not None:
                index, page = task
                results.put((index, check_page(reader, page)))
            raw.close()
    except ChameleonError as exc:
        results.put((-1, exc))
    except Exception as exc:  # noqa: BLE001 - anything else reaches the caller as text
        results.put((-1, DatabaseError(f"verification worker failed: {exc!r}")))


class _Pool:
    """Worker processes, their task and result queues, and what is still out."""

    def __init__(self, target: Target, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.tasks: Any = context.Queue()
        self.results: Any = context.Queue()
        self.procs = [
            context.Process(target=_work, args=(target, self.tasks, self.results), daemon=True)
            for _ in range(workers)
        ]
        for proc in self.procs:
            proc.start()
        self.out: set[int] = set()
        self.done: dict[int, PageResult] = {}

    def give(self, index: int, page: list[tuple[Any, ...]]) -> None:
        self.tasks.put((index, page))
        self.out.add(index)

    def take_back(self) -> tuple[int, list[tuple[Any, ...]]] | None:
        try:
            index, page = self.tasks.get(timeout=_WAIT_S)
        except queue.Empty:
            return None
        self.out.discard(index)
        return index, page

    def collect(self, *, block: bool) -> list[int]:
        """Move finished results into ``done``; return their indexes."""
        got: list[int] = []
        while self.out:
            try:
                index, result = (
                    self.results.get(timeout=_WAIT_S) if block else self.results.get_nowait()
                )
            except queue.Empty:
                if not block or not any(p.is_alive() for p in self.procs):
                    if block:
                        raise DatabaseError("verification workers exited early") from None
                    return got
                continue
            if index < 0:
                raise result
            self.out.discard(index)
            self.done[index] = result
            got.append(index)
            block = False if got else block
        return got

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def verify_shared(
    reader: VerifyReader,
    target: Target,
    workers: int,
    progress: Callable[[int], None] | None,
) -> list[PageResult]:
    """Verify every page, sharing them with ``workers`` processes; return results in order."""
    pool = _Pool(target, workers)
    sizes: dict[int, int] = {}

    def report(indexes: list[int]) -> None:
        if progress is not None:
            for index in indexes:
                progress(sizes[index])

    try:
        for index, page in enumerate(reader.pages(size=TASK_PAGE)):
            sizes[index] = len(page)
            report(pool.collect(block=False))
            if len(pool.out) < 2 * workers:
                pool.give(index, page)
            else:
                pool.done[index] = check_page(reader, page)
                report([index])
        while (task := pool.take_back()) is not None:
            pool.done[task[0]] = check_page(reader, task[1])
            report([task[0]])
        while pool.out:
            report(pool.collect(block=True))
    finally:
        pool.close()
    return [pool.done[i] for i in sorted(pool.done)]
