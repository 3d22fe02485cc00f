"""The README's snippet runs as written, so the README cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_one_api_snippet() -> None:
    """The README shows exactly one Python snippet."""
    assert len(_python_blocks()) == 1


def test_readme_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Executing the snippet in an empty directory prints three history rows and verifies."""
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_blocks()[0], "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["1", "CREATED", "PENDING"],
        ["2", "TRANSITION", "ACTIVE"],
        ["3", "ATTRIBUTES", "ACTIVE"],
    ]
    assert (tmp_path / "example.db").exists()
