"""Settings read from the environment (prefix ``CHAMELEON_``), in one place."""

from __future__ import annotations

import difflib
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from chameleon_workflow.errors import ConfigurationError


class Settings(BaseSettings):
    """Every tunable of Chameleon; each field is ``CHAMELEON_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CHAMELEON_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///chameleon.db"
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    # Off by default: a liveness probe costs a PostgreSQL round trip per pool checkout.
    pool_pre_ping: bool = False
    db_connect_timeout_s: int = Field(default=5, ge=1)
    db_retry_attempts: int = Field(default=3, ge=1)
    db_retry_max_wait_s: float = Field(default=1.0, gt=0)
    background_backoff_max_s: float = Field(default=10.0, gt=0)
    telemetry_batch_size: int = Field(default=1000, ge=1)
    telemetry_max_queue_size: int = Field(default=10000, ge=1)
    telemetry_flush_interval_s: float = Field(default=1.0, gt=0)
    telemetry_drain_deadline_s: float = Field(default=5.0, gt=0)
    zombie_threshold_s: float = Field(default=300.0, gt=0)
    zombie_max_retries: int = Field(default=3, ge=0)
    # The ledger key (docs/ledger.md): hex secrets, or a key file; else beside a SQLite file.
    ledger_key: SecretStr | None = None
    ledger_key_file: Path | None = None
    # Checkpoints (docs/checkpoints.md): required on PostgreSQL, beside the file on SQLite.
    signing_key_file: str | None = None
    checkpoint_file: str | None = None
    # Archives (docs/lifecycle.md): the directory segments and manifests are written to.
    archive_dir: str | None = None
    max_attribute_value_bytes: int = Field(default=65_536, ge=1)
    max_attributes_per_uow: int = Field(default=1_000, ge=1)
    max_reasoning_chars: int = Field(default=10_000, ge=1)
    max_metadata_bytes: int = Field(default=65_536, ge=1)


def load_settings() -> Settings:
    """Read the settings now, turning a malformed variable into a ConfigurationError."""
    try:
        return Settings()
    except ValidationError as exc:
        raise configuration_error(exc) from exc


def configuration_error(exc: ValidationError) -> ConfigurationError:
    """Turn a settings validation error into one message naming every bad variable."""
    problems = "; ".join(
        f"CHAMELEON_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
    )
    return ConfigurationError(f"bad configuration: {problems}")


PREFIX = "CHAMELEON_"

#: Variables read somewhere other than a settings model, one per line: a new one is one line
#: here (a settings field needs nothing: its variable is known from the model).
OTHER_VARIABLES: tuple[str, ...] = (
    "CHAMELEON_OWNER_PASSWORD",  # chameleon db roles
    "CHAMELEON_APP_PASSWORD",  # chameleon db roles
    "CHAMELEON_AUDITOR_TOKEN",  # the server's read-only token
    "CHAMELEON_WRITER_NAME",  # names this process's log stream
    "CHAMELEON_SERVER_URL",  # chameleon worker and chameleon mcp: the server they talk to
    "CHAMELEON_ACTOR_TOKEN",  # chameleon worker and chameleon mcp: the actor they act as
    "CHAMELEON_TEST_POSTGRES_URL",  # tests
    "CHAMELEON_REQUIRE_POSTGRES",  # tests
    "CHAMELEON_PG_BINDIR",  # tests (the fault suite's own cluster)
    "CHAMELEON_TEST_DB_PREFIX",  # tests and benchmarks: names of scratch databases
)


def known_variables(model: type[BaseSettings] = Settings) -> frozenset[str]:
    """Return every ``CHAMELEON_*`` name that means something: ``model``'s fields and the rest."""
    fields = (PREFIX + name.upper() for name in model.model_fields)
    return frozenset((*fields, *OTHER_VARIABLES))


def unknown_variables(
    model: type[BaseSettings] = Settings, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Return the ``CHAMELEON_*`` variables set in ``environ`` that nothing reads, sorted."""
    known = known_variables(model)
    names = os.environ if environ is None else environ
    return sorted(n for n in names if n.upper().startswith(PREFIX) and n.upper() not in known)


def require_known_environment(
    model: type[BaseSettings] = Settings, environ: Mapping[str, str] | None = None
) -> None:
    """Refuse a ``CHAMELEON_*`` variable nothing reads (a typo), naming the closest known one."""
    unknown = unknown_variables(model, environ)
    if not unknown:
        return
    # Compared without the prefix every name shares, or everything looks alike.
    known = sorted(n.removeprefix(PREFIX) for n in known_variables(model))
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper().removeprefix(PREFIX), known, n=1)
        hint = f"did you mean {PREFIX}{close[0]}?" if close else "see docs/configuration.md"
        problems.append(f"{name} ({hint})")
    raise ConfigurationError(f"unknown environment variable: {'; '.join(problems)}")


#: Scratch database names start with this (tests and benchmarks): letters, digits, ``_``.
DEFAULT_SCRATCH_PREFIX = "chameleon"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,29}")


def scratch_database_name(kind: str, suffix: str | None = None) -> str:
    """Name a scratch PostgreSQL database: ``<prefix>_<kind>_<suffix>``.

    The prefix is ``CHAMELEON_TEST_DB_PREFIX`` (default ``chameleon``), so runs sharing a
    server can tell their databases apart; the suffix defaults to 12 random hex digits.
    """
    prefix = os.environ.get("CHAMELEON_TEST_DB_PREFIX", DEFAULT_SCRATCH_PREFIX)
    if not _IDENTIFIER.fullmatch(prefix):
        raise ConfigurationError(
            f"CHAMELEON_TEST_DB_PREFIX {prefix!r} must be 1 to 30 lower-case letters, digits "
            "or underscores, not starting with a digit"
        )
    return f"{prefix}_{kind}_{suffix or uuid.uuid4().hex[:12]}"
