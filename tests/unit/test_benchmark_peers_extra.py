"""`--peers` without the peers extra is refused in one line, naming what to install."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec

import pytest
from typer.testing import CliRunner

from chameleon_workflow.benchmarks import runner as benchmark
from chameleon_workflow.cli import app

REFUSAL = "error: --peers needs dbos, procrastinate: pip install 'chameleon-workflow[peers]'"


@pytest.fixture
def without_two_peers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make dbos and procrastinate look uninstalled (eventsourcing stays found)."""
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name in {"dbos", "procrastinate"} else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.usefixtures("without_two_peers")
def test_module_refuses_peers_without_the_extra(capsys: pytest.CaptureFixture[str]) -> None:
    """Exit status 2, one line on stderr naming the missing packages, nothing measured."""
    assert benchmark.main(["--peers", "--rounds", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [REFUSAL]
    assert captured.out == ""


@pytest.mark.usefixtures("without_two_peers")
def test_cli_refuses_peers_without_the_extra() -> None:
    """`chameleon benchmark --peers` exits 2 with the same line and no traceback."""
    result = CliRunner().invoke(app, ["benchmark", "--peers"])
    assert result.exit_code == 2
    assert REFUSAL in result.output
    assert "Traceback" not in result.output
    assert "measuring" not in result.output


def test_the_extra_is_found_here() -> None:
    """The peers are installed with the dev extra, so the side-by-side tests never skip."""
    assert benchmark.missing_peers() == []
