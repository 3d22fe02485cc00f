"""`--peers` measures Chameleon beside eventsourcing, DBOS and procrastinate, on both back ends.

SQLite runs the whole command (every figure, then the peers' table); PostgreSQL runs the
peers' step of the same run on a fresh database of the test server. Values are only
checked to be measured and consistent (ours, the peer, ours/peer), never for speed.
"""

from __future__ import annotations

import os
import re

import pytest

from chameleon_workflow.benchmarks import Figure, Sizes, run_benchmarks
from chameleon_workflow.benchmarks import runner as benchmark

TINY = ["--rows", "100", "--saves", "20", "--rounds", "1", "--verify-uows", "5"]
TINY += ["--verify-rows", "4", "--engine-steps", "5", "--server-seconds", "0"]
TINY += ["--checkpoint-rows", "100"]

BOTH = {
    ("save_uow() vs eventsourcing save", "eventsourcing", "tx/s"),
    ("create + 1 step vs DBOS 1-step workflow", "dbos", "units/s"),
    ("engine step vs DBOS step", "dbos", "steps/s"),
}
POSTGRES_ONLY = {
    ("create + 1 step vs procrastinate defer + execute", "procrastinate", "units/s"),
    ("engine step vs procrastinate execute", "procrastinate", "steps/s"),
}
#: One printed side-by-side line: name [backend]: ours V (worst W) unit; peer NAME V; ours/peer R
LINE = re.compile(
    r"^  (?P<name>.+) \[(?P<backend>\w+)\]: ours (?P<ours>[\d,.]+) \(worst [\d,.]+\) "
    r"(?P<unit>\S+); peer (?P<peer>\w+) (?P<value>[\d,.]+); ours/peer (?P<ratio>[\d.]+)x; "
)


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_command_prints_each_peer_figure_with_its_ratio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A tiny SQLite run with --peers prints each side-by-side line and the peers' table."""
    assert benchmark.main([*TINY, "--peers"]) == 0
    out = capsys.readouterr().out
    lines = [m for m in map(LINE.match, out.splitlines()) if m is not None]
    assert {(m["name"], m["peer"], m["unit"]) for m in lines} == BOTH
    for m in lines:
        assert m["backend"] == "sqlite"
        ours, peer, ratio = _number(m["ours"]), _number(m["value"]), float(m["ratio"])
        assert ours > 0
        assert peer > 0
        assert ratio == pytest.approx(ours / peer, rel=0.05, abs=0.01)
    assert "Chameleon and its peers" in out
    table = [row.split("│") for row in out.split("Chameleon and its peers")[1].splitlines()]
    names = {cells[1].strip() for cells in table if len(cells) > 8 and cells[1].strip()}
    assert names == {name for name, _, _ in BOTH}
    assert "synchronous=FULL on both sides" in out


def test_peers_measured_on_postgresql(request: pytest.FixtureRequest) -> None:
    """On PostgreSQL every peer, procrastinate included, is measured beside ours."""
    request.getfixturevalue("pg_template")  # fails (CI) or skips like every PostgreSQL test
    # The command's own scratch database on the test server, dropped at the end.
    url, drop = benchmark._scratch_postgres(os.environ["CHAMELEON_TEST_POSTGRES_URL"])
    figures: list[Figure] = []
    try:
        found = run_benchmarks(
            [url],
            sizes=Sizes(saves=20, rounds=1, engine_steps=5, server_seconds=0),
            process=[],
            database=[],
            engine_steps=False,
            peers=True,
            measured=figures.append,
        )
    finally:
        drop()
    assert found == figures
    assert {(f.name, f.peer, f.unit) for f in figures} == BOTH | POSTGRES_ONLY
    for f in figures:
        assert f.backend == "postgresql"
        assert f.baseline is not None
        assert f.baseline > 0
        assert f.value > 0
        assert f.ratio == pytest.approx(f.value / f.baseline)
        assert "synchronous_commit=on" in f.notes
        assert benchmark.figure_line(f).startswith(f"{f.name} [postgresql]: ours ")
