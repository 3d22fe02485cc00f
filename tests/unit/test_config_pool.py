"""CHAMELEON_POOL_PRE_PING: off by default, parsed strictly, handed to the PostgreSQL pool."""

from __future__ import annotations

import pytest

from chameleon_workflow.config import Settings, load_settings
from chameleon_workflow.db import make_engine
from chameleon_workflow.errors import ConfigurationError

PG_URL = "postgresql+psycopg://nobody@127.0.0.1:1/never_connected"


def test_pre_ping_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variable the setting is False and the pool does not probe."""
    monkeypatch.delenv("CHAMELEON_POOL_PRE_PING", raising=False)
    assert load_settings().pool_pre_ping is False
    engine = make_engine(PG_URL, Settings(database_url=PG_URL))
    assert engine.pool._pre_ping is False
    engine.dispose()


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("1", True), ("false", False)])
def test_pre_ping_reads_booleans(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: bool
) -> None:
    """Boolean text turns the probe on or off, and make_engine passes it to the pool."""
    monkeypatch.setenv("CHAMELEON_POOL_PRE_PING", text)
    settings = load_settings()
    assert settings.pool_pre_ping is expected
    engine = make_engine(PG_URL, settings)
    assert engine.pool._pre_ping is expected
    engine.dispose()


@pytest.mark.parametrize("text", ["maybe", "", "2"])
def test_bad_pre_ping_value_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """A value that is not a boolean stops with an error naming the variable."""
    monkeypatch.setenv("CHAMELEON_POOL_PRE_PING", text)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert str(info.value) == (
        "bad configuration: CHAMELEON_POOL_PRE_PING: Input should be a valid boolean, "
        "unable to interpret input"
    )
