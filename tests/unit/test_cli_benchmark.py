"""`chameleon benchmark` offers the same knobs as `python -m chameleon_workflow.benchmarks`."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from chameleon_workflow.benchmarks import runner as benchmark
from chameleon_workflow.cli import app


def _cli_params() -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    command = group.get_command(group.make_context("chameleon", ["benchmark"]), "benchmark")
    return {param.opts[0]: param.default for param in command.params if param.opts[0] != "--help"}


def _module_options(capsys: pytest.CaptureFixture[str]) -> set[str]:
    with pytest.raises(SystemExit) as done:
        benchmark.main(["--help"])
    assert done.value.code == 0
    return set(re.findall(r"(--[a-z][a-z-]*)", capsys.readouterr().out)) - {"--help"}


def _sizes() -> dict[str, Any]:
    return dataclasses.asdict(benchmark.Sizes())


def test_cli_and_module_take_the_same_options(capsys: pytest.CaptureFixture[str]) -> None:
    """Every option of the benchmark module is an option of the CLI command, and no other."""
    assert set(_cli_params()) == _module_options(capsys)


def test_cli_defaults_are_the_benchmark_sizes() -> None:
    """The CLI's size defaults are the benchmark's own (Sizes); PostgreSQL and peers are off."""
    defaults = _cli_params()
    sizes = {f"--{name.replace('_', '-')}": value for name, value in _sizes().items()}
    assert defaults == {**sizes, "--postgres": None, "--peers": False}


def test_cli_forwards_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command passes each option to benchmark.main and exits with its status."""
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    monkeypatch.setattr(benchmark, "main", fake_main)
    args = ["benchmark", "--postgres", "postgresql://u@h/db", "--rows", "100", "--saves", "5"]
    args += ["--rounds", "1", "--workers", "2", "--verify-uows", "3", "--verify-rows", "4"]
    args += ["--engine-steps", "6", "--server-clients", "7", "--server-seconds", "0"]
    args += ["--checkpoint-rows", "8", "--archive-uows", "9"]
    args += ["--console-uows", "10", "--peers"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen == [
        [
            "--rows",
            "100",
            "--saves",
            "5",
            "--rounds",
            "1",
            "--workers",
            "2",
            "--verify-uows",
            "3",
            "--verify-rows",
            "4",
            "--engine-steps",
            "6",
            "--server-clients",
            "7",
            "--server-seconds",
            "0",
            "--checkpoint-rows",
            "8",
            "--archive-uows",
            "9",
            "--console-uows",
            "10",
            "--postgres",
            "postgresql://u@h/db",
            "--peers",
        ]
    ]


def test_cli_refuses_sizes_below_the_minimum() -> None:
    """A size of zero is a usage error (exit 2) before any benchmark runs."""
    result = CliRunner().invoke(app, ["benchmark", "--workers", "0"])
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "argument --workers: 0 is below the minimum of 1"),
        (["--rows", "99"], "argument --rows: 99 is below the minimum of 100"),
        (["--saves", "many"], "argument --saves: 'many' is not an integer"),
    ],
)
def test_module_refuses_sizes_out_of_range(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The module's own parser refuses a size below its minimum, naming the option."""
    with pytest.raises(SystemExit) as done:
        benchmark.main(argv)
    assert done.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(message)
