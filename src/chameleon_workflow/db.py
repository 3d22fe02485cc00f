"""Engines and sessions for both back ends, and translation of driver errors."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import Settings, load_settings
from chameleon_workflow.errors import (
    AppendOnlyViolationError,
    ChameleonError,
    ConcurrencyError,
    ConfigurationError,
    DatabaseError,
    DatabaseUnavailableError,
    IntegrityViolationError,
)

#: Execution option that makes a SQLite transaction take the write lock at BEGIN.
SQLITE_IMMEDIATE = "chameleon_sqlite_immediate"
#: Execution option: on SQLite, BEGIN IMMEDIATE without waiting for a busy write lock.
SQLITE_NO_WAIT = "chameleon_sqlite_no_wait"

_PG_CONFLICT_CODES = frozenset({"40001", "40P01", "55P03"})
# Shutdown, crash recovery, too many connections: the server is there but will not serve now.
_PG_UNAVAILABLE_CODES = frozenset({"57P01", "57P02", "57P03", "53300"})


def normalize_url(url: str) -> str:
    """Make a PostgreSQL URL use psycopg 3; refuse back ends Chameleon does not support."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+psycopg://", "sqlite://", "sqlite+pysqlite://")):
        return url
    raise ConfigurationError(
        f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql+psycopg://..."
    )


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_loads(value: Any) -> Any:
    # SQLite gives a column declared JSON numeric affinity: a stored number comes back
    # as int/float rather than JSON text. Both are the same JSON value.
    if isinstance(value, (int, float)):
        return value
    return orjson.loads(value)


def make_engine(
    url: str | None = None, settings: Settings | None = None, *, read_only: bool = False
) -> Engine:
    """Create an engine with Chameleon's connection settings for its back end.

    ``read_only`` opens a connection that cannot write: SQLite in ``mode=ro`` (a missing
    file is an error, never created), PostgreSQL with read-only transactions.
    """
    settings = settings or load_settings()
    url = normalize_url(url or settings.database_url)
    common: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": _json_loads,
    }
    if url.startswith("sqlite"):
        if read_only:
            common["creator"] = _read_only_sqlite(url)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **common)
        _configure_sqlite(engine, settings, read_only=read_only)
    else:
        if read_only:
            common["connect_args"] = {"options": "-c default_transaction_read_only=on"}
        connect_args = common.setdefault("connect_args", {})
        # Without it, connecting to an unreachable host waits for the kernel's TCP timeout.
        connect_args["connect_timeout"] = settings.db_connect_timeout_s
        engine = create_engine(url, pool_pre_ping=settings.pool_pre_ping, **common)
    return engine


def _read_only_sqlite(url: str) -> Callable[[], sqlite3.Connection]:
    path = sqlite_path(url)
    if path is None:
        raise ConfigurationError(f"{url!r} is an in-memory database: it holds nothing")
    uri = f"{Path(path).absolute().as_uri()}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return connect


def sqlite_path(url: str) -> str | None:
    """Return the file a SQLite URL names, or None for an in-memory database."""
    database = make_url(normalize_url(url)).database
    return None if database in (None, "", ":memory:") else database


def _configure_sqlite(engine: Engine, settings: Settings, *, read_only: bool) -> None:
    pragmas = (
        # A read-only connection must not switch a file's journal mode (that is a write).
        *(() if read_only else ("PRAGMA journal_mode=WAL",)),
        "PRAGMA foreign_keys=ON",
        # REPLACE conflict resolution fires DELETE triggers only with this on; the
        # append-only triggers rely on it (see migrations) for INSERT OR REPLACE.
        "PRAGMA recursive_triggers=ON",
        f"PRAGMA synchronous={settings.sqlite_synchronous}",
        f"PRAGMA busy_timeout={settings.sqlite_busy_timeout_ms}",
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so SAVEPOINT and BEGIN IMMEDIATE work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        # Straight to the driver: this runs once per transaction, on the hot path.
        driver = conn.connection.driver_connection
        assert driver is not None
        if options.get(SQLITE_NO_WAIT, False):
            # Take the write lock now or fail at once; later statements need no waiting.
            driver.execute("PRAGMA busy_timeout=0")
            try:
                driver.execute("BEGIN IMMEDIATE")
            finally:
                driver.execute(f"PRAGMA busy_timeout={settings.sqlite_busy_timeout_ms}")
            return
        driver.execute("BEGIN IMMEDIATE" if options.get(SQLITE_IMMEDIATE, False) else "BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_sqlite(bind: Engine | Connection | Session) -> bool:
    """Tell whether ``bind`` talks to SQLite."""
    if isinstance(bind, Session):
        return bind.get_bind().dialect.name == "sqlite"
    return bind.dialect.name == "sqlite"


_APPEND_ONLY = re.compile(r"append-only", re.IGNORECASE)
_SQLITE_BUSY = re.compile(r"database is locked|database table is locked|busy", re.IGNORECASE)


def translate_error(exc: BaseException) -> ChameleonError:
    """Map a SQLAlchemy/driver exception onto the project's error tree."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    if _APPEND_ONLY.search(text):
        return AppendOnlyViolationError(text.strip().splitlines()[0])
    if sqlstate in _PG_CONFLICT_CODES:
        return ConcurrencyError(f"concurrent update lost: {text.strip().splitlines()[0]}")
    if isinstance(exc, sa_exc.OperationalError | sqlite3.OperationalError) and _SQLITE_BUSY.search(
        text
    ):
        return ConcurrencyError(f"another writer holds the database: {text}")
    if isinstance(exc, sa_exc.IntegrityError | sqlite3.IntegrityError | psycopg.IntegrityError):
        return IntegrityViolationError(text.strip().splitlines()[0])
    if is_unavailable(exc):
        return DatabaseUnavailableError(f"{type(orig).__name__}: {text.strip()}")
    return DatabaseError(f"{type(orig).__name__}: {text.strip()}")


def is_unavailable(exc: BaseException) -> bool:
    """Tell whether an error means the database is unreachable or the connection was lost."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    orig = getattr(exc, "orig", None) or exc
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate.startswith("08") or sqlstate in _PG_UNAVAILABLE_CODES
    # psycopg reports a refused or broken connection without an SQLSTATE.
    return isinstance(orig, psycopg.OperationalError)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise SQLAlchemy and driver exceptions as Chameleon errors."""
    try:
        yield
    except (sa_exc.SQLAlchemyError, sqlite3.Error, psycopg.Error) as exc:
        raise translate_error(exc) from exc
