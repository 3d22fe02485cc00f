"""Settings of the HTTP server: the common ones plus its admin token, address and intervals.

They come from the same ``CHAMELEON_`` environment as ``config.Settings``; the command
line's ``--host``/``--port`` (and ``chameleon serve``'s ``--database-url``) win over it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from chameleon_workflow.config import Settings, configuration_error, require_known_environment

#: 32 random URL-safe characters carry 192 bits; a shorter token is easier to guess.
MIN_TOKEN_LENGTH = 32


class ServerSettings(Settings):
    """Settings of the HTTP server on top of the common ones (``CHAMELEON_`` prefix too)."""

    model_config = SettingsConfigDict(env_prefix="CHAMELEON_", extra="ignore", frozen=True)

    admin_token: SecretStr | None = None
    #: A read-only token: every GET of the API, never a write.
    auditor_token: SecretStr | None = None
    #: When set, ``/metrics`` wants this token (or the admin token) as a bearer token.
    metrics_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    sweep_interval_s: float = Field(default=30.0, gt=0)
    telemetry_flush_size_trigger: int | None = Field(default=None, ge=1)
    checkpoint_interval_s: float = Field(default=0.0, ge=0)  # 0: no background checkpoints
    #: Archive UOWs finished and unchanged for this many days, on a schedule (0: never).
    retention_days: int = Field(default=0, ge=0)
    retention_interval_s: float = Field(default=3600.0, gt=0)
    max_request_bytes: int = Field(default=1_048_576, ge=1)

    @field_validator("admin_token", "auditor_token", "metrics_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        """Refuse a token short enough to guess."""
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"a token must be at least {MIN_TOKEN_LENGTH} characters "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))' makes one)"
            )
        return token

    @classmethod
    def of(cls, settings: Settings | None) -> ServerSettings:
        """Return server settings: as given, or the common ones completed from the environment."""
        if isinstance(settings, ServerSettings):
            return settings
        if settings is None:
            return cls()
        return cls(**settings.model_dump())


def load_server_settings(**given: Any) -> ServerSettings:
    """Read the server settings from the environment, ``given`` values (not None) winning.

    A malformed variable or value, or a ``CHAMELEON_*`` variable nothing reads, is a
    ConfigurationError naming it, never a traceback.
    """
    require_known_environment(ServerSettings)
    overrides = {name: value for name, value in given.items() if value is not None}
    try:
        return ServerSettings(**overrides)
    except ValidationError as exc:
        raise configuration_error(exc) from exc
