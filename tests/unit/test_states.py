"""The UOW state machine table (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chameleon_workflow.errors import InvalidTransitionError
from chameleon_workflow.states import (
    FINAL_STATUSES,
    TRANSITIONS,
    UOWStatus,
    check_transition,
    is_legal,
)

statuses = st.sampled_from(list(UOWStatus))


def test_every_status_has_a_row() -> None:
    """The table covers every status exactly once."""
    assert set(TRANSITIONS) == set(UOWStatus)


@given(statuses, statuses)
def test_is_legal_follows_the_table(previous: UOWStatus, new: UOWStatus) -> None:
    """A move is legal iff the table lists it, it keeps the status, or it records a breach."""
    expected = previous not in FINAL_STATUSES and (
        previous == new or new in TRANSITIONS[previous] or new is UOWStatus.FAILED_SECURITY_BREACH
    )
    assert is_legal(previous, new) is expected


@given(statuses)
def test_final_statuses_have_no_exit(new: UOWStatus) -> None:
    """Nothing leaves ARCHIVED or FAILED_SECURITY_BREACH, not even a same-status save."""
    for final in FINAL_STATUSES:
        assert not is_legal(final, new)


def test_illegal_transition_names_both_states() -> None:
    """The error names the state it came from and the one it was asked to reach."""
    with pytest.raises(InvalidTransitionError, match="illegal transition PENDING -> COMPLETED"):
        check_transition("PENDING", "COMPLETED")


def test_unknown_status_is_illegal() -> None:
    """An unknown status name is refused like an illegal move."""
    with pytest.raises(InvalidTransitionError, match="PENDING -> DONE"):
        check_transition("PENDING", "DONE")


@pytest.mark.parametrize(
    ("previous", "new"),
    [
        ("PENDING", "ACTIVE"),
        ("ACTIVE", "PENDING"),
        ("ACTIVE", "COMPLETED"),
        ("ACTIVE", "FAILED"),
        ("ACTIVE", "ZOMBIED_SOFT"),
        ("ZOMBIED_SOFT", "PENDING"),
        ("ZOMBIED_SOFT", "ZOMBIED_DEAD"),
        ("FAILED", "PENDING"),
        ("COMPLETED", "ARCHIVED"),
    ],
)
def test_engine_moves_are_legal(previous: str, new: str) -> None:
    """Every move the engine makes (SPEC §4) is in the table."""
    check_transition(previous, new)
