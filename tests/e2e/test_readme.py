"""The README's snippet runs as written, so the README cannot rot."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from chameleon_workflow.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def _chameleon_invocations() -> list[list[str]]:
    """Return the arguments of every `chameleon` command in the README's shell blocks."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL):
        for line in block.splitlines():
            command: list[str] = []
            for word in [*shlex.split(line, comments=True), "&&"]:
                if word != "&&":
                    command.append(word)
                    continue
                if command and command[0].rsplit("/", 1)[-1] == "chameleon":
                    found.append(command[1:])
                command = []
    return found


def test_readme_chameleon_commands_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `chameleon` command the README shows names a real command with valid options."""
    for name in ("CHAMELEON_DATABASE_URL", "CHAMELEON_HOST", "CHAMELEON_PORT"):
        monkeypatch.delenv(name, raising=False)
    invocations = _chameleon_invocations()
    assert invocations == [
        ["demo"],
        ["serve"],
        ["serve", "--host", "127.0.0.1", "--port", "8080"],
    ]
    group: Any = typer.main.get_command(app)  # typer vendors its own click: no isinstance
    for name, *args in invocations:
        parent = group.make_context("chameleon", [name])
        command = group.get_command(parent, name)
        assert command is not None, name
        with command.make_context(name, list(args), parent=parent) as context:
            assert context.params["database_url"] is None


def test_readme_has_one_api_snippet() -> None:
    """The README shows exactly one Python snippet."""
    assert len(_python_blocks()) == 1


def test_readme_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Executing the snippet in an empty directory prints three history rows and verifies."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHAMELEON_LEDGER_KEY")  # as a user runs it: the key file beside
    exec(compile(_python_blocks()[0], "README.md", "exec"), {})
    assert (tmp_path / "example.db.ledger-keys").is_file()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["1", "CREATED", "PENDING"],
        ["2", "TRANSITION", "ACTIVE"],
        ["3", "ATTRIBUTES", "ACTIVE"],
    ]
    assert (tmp_path / "example.db").exists()
