"""The package's shape: imports run one way without cycles, modules stay small and public."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

import chameleon_workflow

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(chameleon_workflow.__file__).parent
MAX_LINES = 400


def _modules() -> list[Path]:
    # A migration records one schema change as released and is never edited afterwards.
    return sorted(p for p in PACKAGE.rglob("*.py") if "versions" not in p.parent.parts)


def test_import_contracts_hold() -> None:
    """The layer and no-cycle contracts in pyproject.toml are kept (lint-imports exits 0)."""
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_no_module_is_over_the_size_limit() -> None:
    """Every module of the package (migrations aside) has at most 400 lines."""
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in _modules()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_no_module_is_underscore_private() -> None:
    """Module names say what they hold; none hides behind a leading underscore."""
    private = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if p.name.startswith("_") and p.name not in {"__init__.py", "__main__.py"}
    ]
    assert private == []
