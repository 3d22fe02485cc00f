"""Settings read from the environment (prefix ``CHAMELEON_``), in one place."""

from __future__ import annotations

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
