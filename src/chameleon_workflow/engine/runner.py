"""How the engine runs its transactions: errors translated, lost connections retried.

Every database error leaves here as a ``ChameleonError`` (``translated_errors`` sits
outside the session, so even the rollback of a session whose connection died is
translated). A transaction that failed because the database was unreachable or the
connection was lost is run again from the start, with a bounded exponential backoff
(``CHAMELEON_DB_RETRY_ATTEMPTS`` attempts in all, waits up to
``CHAMELEON_DB_RETRY_MAX_WAIT_S``): nothing of it was committed, so running it again is
safe. A connection lost *during* COMMIT is never retried, because the commit may have
happened; it is reported as a ``DatabaseError`` saying the outcome is unknown. A
transaction's telemetry is emitted only once it has committed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from chameleon_workflow.config import Settings
from chameleon_workflow.db import SQLITE_IMMEDIATE, is_sqlite, translated_errors
from chameleon_workflow.engine.txn import TxnLog
from chameleon_workflow.errors import DatabaseError, DatabaseUnavailableError, StateDriftError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import as_uuid
from chameleon_workflow.telemetry.buffer import TelemetryBuffer

T = TypeVar("T")
#: One engine operation: what it does inside its write transaction.
Work = Callable[[Session, TxnLog], T]

log = logging.getLogger(__name__)


class TransactionRunner:
    """Run read and write transactions on one database, retrying those a lost connection broke."""

    def __init__(
        self,
        reads: sessionmaker[Session],
        engine: Engine,
        persistence: UOWPersistenceService,
        telemetry: TelemetryBuffer,
        settings: Settings,
    ) -> None:
        """Read with ``reads``; write on ``engine`` (on SQLite, taking the lock at BEGIN)."""
        self.engine = engine
        self.persistence = persistence
        self.telemetry = telemetry
        self.settings = settings
        self.reads = reads
        write_bind = (
            engine.execution_options(**{SQLITE_IMMEDIATE: True}) if is_sqlite(engine) else engine
        )
        self._writes = sessionmaker(bind=write_bind, expire_on_commit=False)

    def retrying(self, attempts: int) -> Retrying:
        """Return the retry policy: lost connections only, ``attempts`` tries, bounded waits."""
        return Retrying(
            retry=retry_if_exception_type(DatabaseUnavailableError),
            stop=stop_after_attempt(attempts),
            # 50 ms, 100 ms, 200 ms ... up to the cap, each plus up to 50 ms of jitter.
            wait=wait_exponential(multiplier=0.05, max=self.settings.db_retry_max_wait_s)
            + wait_random(0, 0.05),
            # The first attempt ran before this policy existed (see ``_retried``).
            before_sleep=lambda state: log.info(
                "database unavailable (attempt %d); retrying", state.attempt_number + 1
            ),
            reraise=True,
        )

    def read(self, query: Callable[[Session], T]) -> T:
        """Run a read-only query in a session of its own; retried on a lost connection."""

        def attempt() -> T:
            with translated_errors(), self.reads() as session:
                return query(session)

        return self._retried(attempt)

    def write(self, work: Work[T]) -> T:
        """Run ``work`` in one write transaction, retried whole on a lost connection.

        Once it has committed, the telemetry it noted is emitted; nothing is emitted for
        an attempt that failed.
        """

        def attempt() -> T:
            txn = TxnLog()
            result = self._attempt(work, txn)
            txn.emit(self.telemetry)
            return result

        return self._retried(attempt)

    def _retried(self, attempt: Callable[[], T]) -> T:
        attempts = self.settings.db_retry_attempts
        try:
            return attempt()
        except DatabaseUnavailableError:
            if attempts <= 1:
                raise
            log.info("database unavailable (attempt 1); retrying")
        # The retry policy is built only after a failure: the usual path pays nothing for it.
        jitter = random.uniform(0, 0.05)  # noqa: S311 - spreads retries; not a secret
        time.sleep(min(0.05, self.settings.db_retry_max_wait_s) + jitter)
        for retry in self.retrying(attempts - 1):
            with retry:
                return attempt()
        raise AssertionError("unreachable: the retry policy re-raises")  # pragma: no cover

    def _attempt(self, work: Work[T], txn: TxnLog) -> T:
        committing = False
        try:
            with translated_errors(), self._writes() as session:
                result = work(session, txn)
                committing = True
                session.commit()
        except DatabaseUnavailableError as exc:
            if committing:
                raise DatabaseError(
                    "the connection was lost while committing: the outcome is unknown; "
                    "read the state back before trying again"
                ) from exc
            raise
        except StateDriftError as exc:
            if exc.recorded:
                raise
            # Our own transaction held the lock the breach writer needed; it is over now.
            uow_id = as_uuid(str(exc.uow_id), "UOW id")
            recorded = self.persistence.record_breach(self.engine, uow_id, exc.actual)
            raise StateDriftError(exc.uow_id, exc.stored, exc.actual, recorded=recorded) from exc
        return result
