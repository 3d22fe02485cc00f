"""The key ledger's checks: its chain, the fingerprints it records, and the seal in row 0.

Row 0 seals what was written before keyed links: verification of a whole database counts
the history rows still in format 1 (and digests their links) and the attribute rows
without a digest, and reports any difference, so a row added later in the old, unkeyed
format is found. Every later row makes a key current and is linked under that key.
"""

from __future__ import annotations

from typing import Any

from chameleon_workflow.audit.reader import KEY_LEDGER_COLUMNS, VerifyReader
from chameleon_workflow.audit.report import FindingKind, Tally
from chameleon_workflow.keys import KeyProvider, key_event_link


def check_key_ledger(reader: VerifyReader, keys: KeyProvider, tally: Tally, *, whole: bool) -> None:
    """Check the key ledger's rows; on a ``whole``-database run, also the seal."""
    rows = [dict(zip(KEY_LEDGER_COLUMNS, row, strict=True)) for row in reader.key_ledger()]
    if not rows or rows[0]["sequence"] != 0 or rows[0]["link_version"] != 1:
        _add(tally, None, "the seal (key ledger row 0) is missing")
    previous = None
    for expected, row in enumerate(rows):
        _check_row(row, expected, previous, keys, tally)
        previous = row["chain_hash"]
    if whole and rows and rows[0]["sequence"] == 0:
        _check_seal(rows[0], tally)


def _check_row(
    row: dict[str, Any], expected: int, previous: str | None, keys: KeyProvider, tally: Tally
) -> None:
    sequence = row["sequence"]
    if sequence != expected:
        _add(tally, sequence, f"expected key ledger row {expected}")
    if row["link_version"] == 1 and sequence != 0:
        _add(tally, sequence, "an unkeyed key ledger row after the seal")
        return
    link = key_event_link(previous, row, keys)
    if link is None:
        key_id = str(row["key_id"])
        tally.unknown_keys[key_id] = tally.unknown_keys.get(key_id, 0) + 1
        return
    if link != row["chain_hash"]:
        _add(tally, sequence, "chain_hash does not match the row's content and the previous link")
    held = keys.fingerprint(str(row["key_id"])) if sequence else None
    if held is not None and held != row["fingerprint"]:
        _add(tally, sequence, f"key {row['key_id']} has fingerprint {held}, not the one recorded")


def _check_seal(seal: dict[str, Any], tally: Tally) -> None:
    found, sealed = tally.legacy.rows, seal["legacy_history_rows"]
    if found != sealed or tally.legacy.hexdigest() != seal["legacy_digest"]:
        _add(
            tally,
            0,
            f"{found} history rows are in the unkeyed link format; the seal of "
            f"{seal['recorded_at']} holds {sealed} with another digest: unkeyed rows were "
            "added, changed or removed since",
        )
    found, sealed = tally.legacy_attributes, seal["legacy_attribute_rows"]
    if found != sealed:
        _add(
            tally,
            0,
            f"{found} attribute rows carry no value digest; the seal of {seal['recorded_at']} "
            f"holds {sealed}: undigested rows were added or removed since",
        )


def report_unknown_keys(keys: KeyProvider, tally: Tally) -> None:
    """Report, per key id, the rows linked under a key the keyring does not hold."""
    source = getattr(keys, "source", "the key provider")
    for key_id, rows in sorted(tally.unknown_keys.items()):
        tally.add(
            FindingKind.UNKNOWN_KEY,
            "",
            None,
            f"{rows} rows are linked under ledger key {key_id}, which {source} does not "
            "hold (a wrong key, or an old key missing from it): their links were not checked",
        )


def _add(tally: Tally, sequence: int | None, detail: str) -> None:
    tally.add(FindingKind.KEY_LEDGER, "", sequence, detail)
