"""What every ``chameleon`` command shares: the consoles, exit codes, options and errors.

Exit status: 0 success, 1 verification found something, 2 bad input or a failure.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import load_settings, require_known_environment, unknown_variables
from chameleon_workflow.db import make_engine, make_session_factory, normalize_url, sqlite_path
from chameleon_workflow.errors import ChameleonError, InvalidValueError, SchemaMismatchError
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.schema import require_current_schema, upgrade_database

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # an error is one line, whatever the width

EXIT_FINDINGS = 1
EXIT_ERROR = 2

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CHAMELEON_DATABASE_URL",
        help="Database URL (default sqlite:///chameleon.db).",
        show_default=False,
    ),
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (shapes in docs/cli.md) instead of text.")
]


#: Control characters (C0 but tab and newline, DEL, C1) that could drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(value: object) -> Text:
    """Return text from a user or the database for display: never markup, never a control.

    Square brackets stay what they are (Rich markup is never parsed from stored text), and
    control characters, which could move the cursor or recolour the terminal, are shown
    as ``\\xNN`` escapes instead of being sent.
    """
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)))


def say_error(message: object) -> None:
    """Print one ``error:`` line on stderr; the message is shown as text, never markup."""
    errors.print(Text.assemble(("error:", "bold red"), " ", shown(message)), highlight=False)


@contextmanager
def handled() -> Iterator[None]:
    """Turn Chameleon errors into a one-line message and exit status 2, never a traceback."""
    try:
        yield
    except ChameleonError as exc:
        say_error(exc)
        raise typer.Exit(EXIT_ERROR) from None


def check_environment() -> None:
    """Refuse a ``CHAMELEON_*`` variable that neither the CLI nor the server reads."""
    if unknown_variables():
        # Only now pull in the server's settings: its variables are known to every command.
        from chameleon_workflow.server.settings import ServerSettings  # noqa: PLC0415 - see above

        require_known_environment(ServerSettings)


def migrated_engine(url: str | None) -> Engine:
    """Open the database at ``url`` and bring it to the current schema."""
    engine = make_engine(url)
    upgrade_database(engine)
    return engine


def existing_engine(url: str | None, *, read_only: bool) -> Engine:
    """Open an existing Chameleon database at the newest revision; never create or migrate it.

    The schema is checked over a connection that cannot write, so a mistyped path or a
    foreign database is refused before anything could change it.
    """
    settings = load_settings()
    target = url or settings.database_url
    require_existing_file(target)
    probe = make_engine(target, settings, read_only=True)
    try:
        require_current_schema(probe)
    finally:
        probe.dispose()
    return make_engine(target, settings, read_only=read_only)


def require_existing_file(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist: opening it would create it."""
    if normalize_url(url).startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None and not Path(path).is_file():
            raise SchemaMismatchError(f"no database at {path}: create it with `chameleon init`")


@contextmanager
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Yield a session factory on ``engine``; close the engine's connections afterwards."""
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@contextmanager
def reading(url: str | None) -> Iterator[Session]:
    """Yield a session on an existing database opened read-only; close it all afterwards."""
    with sessions(existing_engine(url, read_only=True)) as factory, factory() as session:
        yield session


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """Parse a UUID given on the command line, naming ``what`` when it is not one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidValueError(f"{what} {value!r} is not a UUID") from None


def parse_time(value: str | None, what: str) -> datetime | None:
    """Parse an ISO 8601 time (UTC when it has no offset), naming ``what`` when malformed."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidValueError(f"{what} {value!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def size_option(help_text: str, minimum: int = 1) -> Any:
    """Return a Typer option for a count with a lower bound."""
    return typer.Option(min=minimum, help=help_text)


def json_ready(value: Any) -> Any:
    """Return ``value`` as plain JSON data: ids and times as text, dataclasses as objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_ready(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    return value


def print_json(value: Any) -> None:
    """Write ``value`` as one JSON document on standard output (never through Rich)."""
    sys.stdout.write(json.dumps(json_ready(value), indent=2) + "\n")
    sys.stdout.flush()
