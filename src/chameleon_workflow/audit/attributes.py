"""The checks of one UOW's attribute rows, every version of every key.

The latest versions must hash to the UOW row's ``content_hash``; versions run 1..n per
key; each row written with keyed links must still hold the value its salted
``value_digest`` covers, and is gathered under the history row that commits to it (its
``history_sequence``) together with the change it made, so the chain check can compare
both with what that history row recorded. Rows positions follow
``reader.ATTRIBUTE_COLUMNS``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chameleon_workflow.audit.links import digest_matches
from chameleon_workflow.audit.report import FindingKind, Tally
from chameleon_workflow.chain import attribute_objects, attributes_digest, value_digest
from chameleon_workflow.hashing import content_hash, stored_json
from chameleon_workflow.redactions import REDACTED_MARKER

# Positions in an attribute row (reader.ATTRIBUTE_COLUMNS).
_KEY, _VERSION, _VALUE, _DELETED, _SALT, _DIGEST, _AT = 1, 2, 3, 4, 5, 6, 7
_ACTOR, _REASON, _CREATED, _INSTANCE = 8, 9, 10, 11


@dataclass(slots=True)
class Written:
    """The attribute rows one history row commits to, and the change they make."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)
    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str | None:
        """Return the digest the history row must record for these rows."""
        return attributes_digest(self.entries)

    def digest_is(self, stored: Any) -> bool:
        """Tell whether ``stored`` is ``digest()`` (tried over sorted orjson first)."""
        if not self.entries:
            return stored is None
        objects = attribute_objects(self.entries)
        return digest_matches(b"", objects, stored) or self.digest() == stored

    def diff(self) -> dict[str, Any]:
        """Return the change these rows make, as the history row's ``changes`` records it."""
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


def check_attributes(
    uow: Sequence[Any], rows: list[tuple[Any, ...]], tally: Tally
) -> dict[int, Written]:
    """Check one UOW's attribute rows; return what each history row wrote (by sequence)."""
    uow_id = uow[0]
    current: dict[str, Any] = {}
    redacted: list[str] = []
    written: dict[int, Written] = {}
    for key, versions in itertools.groupby(rows, key=lambda r: r[_KEY]):
        expected = 1
        previous: tuple[Any, ...] | None = None
        for row in versions:
            if row[_VERSION] != expected:
                tally.add(
                    FindingKind.ATTRIBUTE_VERSION_GAP,
                    uow_id,
                    None,
                    f"attribute {key!r}: expected version {expected}, found {row[_VERSION]}",
                )
            expected = row[_VERSION] + 1
            if row[_SALT] is None:
                tally.legacy_attributes += 1
            else:
                _check_keyed_row(uow_id, row, previous, written, tally)
            previous = row
        if previous is not None and not previous[_DELETED]:
            current[key] = stored_json(previous[_VALUE])
            if _redaction(uow_id, previous, tally) is not None:
                redacted.append(key)
    if redacted:
        # The content hash covers the erased value: it cannot be recomputed. Every other
        # current value is still proven by its digest, which the history links commit to.
        tally.notices.append(
            f"uow {uow_id}: content_hash not recomputed: {', '.join(map(repr, redacted))} redacted"
        )
        return written
    if digest_matches(b"", current, uow[3]):
        return written
    actual = content_hash(current)
    if actual != uow[3]:
        tally.add(
            FindingKind.DRIFT,
            uow_id,
            None,
            f"attributes hash to {actual}, stored content_hash is {uow[3]}",
        )
    return written


def _redaction(uow_id: str, row: tuple[Any, ...], tally: Tally) -> int | None:
    """Return the admin event that redacted this row (None: not redacted, or not as recorded)."""
    if row[_SALT] is None or stored_json(row[_VALUE]) != REDACTED_MARKER:
        return None
    record = tally.redactions.attribute(uow_id, row[_KEY], row[_VERSION])
    return None if record is None else record.admin_sequence


def _check_keyed_row(
    uow_id: str,
    row: tuple[Any, ...],
    previous: tuple[Any, ...] | None,
    written: dict[int, Written],
    tally: Tally,
) -> None:
    key, value = row[_KEY], stored_json(row[_VALUE])
    redaction = _redaction(uow_id, row, tally)
    if redaction is not None:
        tally.notices.append(
            f"uow {uow_id}: attribute {key!r} version {row[_VERSION]} was redacted "
            f"(admin event #{redaction}); its digest is still linked"
        )
    elif (
        not digest_matches(row[_SALT].encode("ascii"), value, row[_DIGEST])
        and value_digest(row[_SALT], value) != row[_DIGEST]
    ):
        tally.add(
            FindingKind.ATTRIBUTE_MISMATCH,
            uow_id,
            row[_AT],
            f"attribute {key!r} version {row[_VERSION]}: the value does not match its value_digest",
        )
    deleted = bool(row[_DELETED])
    entry = (key, row[_VERSION], row[_DIGEST], deleted, row[_ACTOR], row[_REASON], row[_CREATED])
    into = written.setdefault(row[_AT], Written())
    into.entries.append((*entry, row[_INSTANCE]))
    present = previous is not None and not previous[_DELETED]
    old = stored_json(previous[_VALUE]) if present and previous is not None else None
    if deleted:
        into.removed[key] = old
    elif present:
        into.changed[key] = {"old": old, "new": value}
    else:
        into.added[key] = value
