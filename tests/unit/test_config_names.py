"""Every CHAMELEON_* variable is known in one place; an unknown one names the closest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chameleon_workflow.config import (
    OTHER_VARIABLES,
    Settings,
    known_variables,
    require_known_environment,
    scratch_database_name,
)
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.server.settings import ServerSettings, load_server_settings

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"CHAMELEON_[A-Z][A-Z0-9_]*[A-Z0-9]")
#: Written in prose as a family, never read as such.
FAMILIES = {"CHAMELEON_MAX"}
#: Misspelled on purpose by the tests of the refusal.
TYPOS = {
    "CHAMELEON_DATABASE_ULR",
    "CHAMELEON_ADMIN_TOKN",
    "CHAMELEON_QWERTY",
    "CHAMELEON_SWEEP_INTERVAL",
}


def _mentioned() -> set[str]:
    places = [ROOT / "src", ROOT / "tests", ROOT / "docs", ROOT / ".ci", ROOT / "README.md"]
    found: set[str] = set()
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        for path in files:
            if path.suffix in {".pyc", ".db"}:
                continue
            found |= set(NAME.findall(path.read_text(errors="replace")))
    return found - FAMILIES


def test_every_name_the_project_mentions_is_known() -> None:
    """Each CHAMELEON_ name in the code, tests, docs and CI is in the one known list."""
    known = known_variables(ServerSettings)
    assert _mentioned() - known == TYPOS
    assert TYPOS & known == set()


def test_known_names_come_from_the_models_and_one_tuple() -> None:
    """The server's names extend the common ones; the extras include the test variables."""
    common = known_variables(Settings)
    assert "CHAMELEON_DATABASE_URL" in common
    assert "CHAMELEON_ADMIN_TOKEN" not in common
    assert "CHAMELEON_ADMIN_TOKEN" in known_variables(ServerSettings)
    for name in (
        "CHAMELEON_TEST_POSTGRES_URL",
        "CHAMELEON_REQUIRE_POSTGRES",
        "CHAMELEON_PG_BINDIR",
    ):
        assert name in OTHER_VARIABLES
    for name in ("CHAMELEON_AUDITOR_TOKEN", "CHAMELEON_WRITER_NAME", "CHAMELEON_TEST_DB_PREFIX"):
        assert name in OTHER_VARIABLES


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("CHAMELEON_DATABASE_ULR", "CHAMELEON_DATABASE_ULR (did you mean CHAMELEON_DATABASE_URL?)"),
        ("CHAMELEON_ADMIN_TOKN", "CHAMELEON_ADMIN_TOKN (did you mean CHAMELEON_ADMIN_TOKEN?)"),
        ("CHAMELEON_QWERTY", "CHAMELEON_QWERTY (see docs/configuration.md)"),
    ],
)
def test_unknown_name_is_refused(name: str, message: str) -> None:
    """An unknown variable is a ConfigurationError naming it and the closest known one."""
    with pytest.raises(ConfigurationError) as caught:
        require_known_environment(ServerSettings, {name: "x", "CHAMELEON_HOST": "h"})
    assert str(caught.value) == f"unknown environment variable: {message}"


def test_server_settings_refuse_an_unknown_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the server's settings stops on a misspelled variable."""
    monkeypatch.setenv("CHAMELEON_SWEEP_INTERVAL", "5")
    with pytest.raises(ConfigurationError, match="did you mean CHAMELEON_SWEEP_INTERVAL_S"):
        load_server_settings()
    monkeypatch.delenv("CHAMELEON_SWEEP_INTERVAL")
    assert load_server_settings().sweep_interval_s == 30.0


def test_other_prefixes_and_known_names_pass() -> None:
    """Variables of other programs and every known name are left alone."""
    environ = {"PATH": "/bin", "CHAMELEONX": "1", **dict.fromkeys(known_variables(), "1")}
    require_known_environment(Settings, environ)


def test_scratch_database_names_take_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """CHAMELEON_TEST_DB_PREFIX starts every scratch database name; a bad one is refused."""
    monkeypatch.delenv("CHAMELEON_TEST_DB_PREFIX", raising=False)
    assert scratch_database_name("t", "abc") == "chameleon_t_abc"
    monkeypatch.setenv("CHAMELEON_TEST_DB_PREFIX", "ci_run_7")
    assert scratch_database_name("bench", "x") == "ci_run_7_bench_x"
    assert re.fullmatch(r"ci_run_7_tpl_[0-9a-f]{12}", scratch_database_name("tpl"))
    monkeypatch.setenv("CHAMELEON_TEST_DB_PREFIX", 'x"; DROP')
    with pytest.raises(ConfigurationError, match="CHAMELEON_TEST_DB_PREFIX"):
        scratch_database_name("t")
