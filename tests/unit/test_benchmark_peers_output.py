"""A side-by-side figure prints as ours, the peer and ours/peer, in its own table."""

from __future__ import annotations

import io

from rich.console import Console

from chameleon_workflow.benchmarks.figures import Figure, Rates
from chameleon_workflow.benchmarks.peers import versus
from chameleon_workflow.benchmarks.runner import figure_line, render, render_peers

PEER = versus(
    "engine step vs DBOS step",
    "postgresql",
    Rates(250.0, 200.0),
    Rates(1_000.0, 800.0),
    "steps/s",
    "dbos",
    "one output row",
)
OWN = Figure("full verification", "sqlite", 1_234_567.0, "rows/s")


def test_versus_is_ours_over_the_peer() -> None:
    """Ours is the value, the peer the baseline, the ratio ours/peer (a loss shows below 1)."""
    assert (PEER.value, PEER.worst, PEER.baseline, PEER.peer) == (250.0, 200.0, 1_000.0, "dbos")
    assert PEER.ratio == 0.25
    assert PEER.notes == "peer worst 800; one output row"


def test_peer_line_names_ours_the_peer_and_the_ratio() -> None:
    """The progress line says ours, which peer and ours/peer, never "raw"."""
    assert figure_line(PEER) == (
        "engine step vs DBOS step [postgresql]: ours 250 (worst 200) steps/s; "
        "peer dbos 1,000; ours/peer 0.25x; peer worst 800; one output row"
    )


def test_peer_figures_get_their_own_table() -> None:
    """render() leaves side-by-side figures out; render_peers() shows only them."""
    main, peers = io.StringIO(), io.StringIO()
    Console(file=main, width=200).print(render([OWN, PEER]))
    Console(file=peers, width=200).print(render_peers([OWN, PEER]))
    assert "full verification" in main.getvalue()
    assert "engine step vs DBOS step" not in main.getvalue()
    assert "full verification" not in peers.getvalue()
    row = next(line for line in peers.getvalue().splitlines() if "vs DBOS" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    expected = ["engine step vs DBOS step", "postgresql", "250 (200)", "steps/s", "dbos"]
    assert cells[:7] == [*expected, "1,000", "0.25x"]
