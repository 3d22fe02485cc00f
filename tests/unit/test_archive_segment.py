"""Segments and manifests: written, read back, and every kind of damage refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chameleon_workflow.archive.manifest import (
    SignedManifest,
    expand,
    read_manifest,
    runs,
    write_manifest,
)
from chameleon_workflow.archive.segment import (
    ArchiveError,
    SegmentError,
    read_lines,
    row_of,
    scan_segment,
    segment_name,
    write_segment,
)
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.checkpoints.keys import Signer
from chameleon_workflow.checkpoints.leaves import leaf_data
from chameleon_workflow.checkpoints.merkle import leaf_hash, root_of
from chameleon_workflow.errors import ConfigurationError


def _lines(count: int) -> list[bytes]:
    uow = leaf_data("units_of_work", {"uow_id": "u-1", "status": "COMPLETED"})
    history = [
        leaf_data("uow_history", {"history_id": f"h-{i}", "sequence": i, "reasoning": "x" * 40})
        for i in range(count)
    ]
    return [uow, *history]


def test_a_segment_reads_back_as_written(tmp_path: Path) -> None:
    store = DirectoryStore.for_writing(tmp_path / "archive")
    lines = _lines(300)
    written = write_segment(store, segment_name("s1"), lines)
    assert list(read_lines(store, segment_name("s1"))) == lines
    found = scan_segment(store, segment_name("s1"))
    assert (found.sha256, found.size) == (written.sha256, written.size)
    assert found.counts == written.counts
    assert found.counts == {"units_of_work": 1, "uow_history": 300}
    expected_root, size = root_of(leaf_hash(line) for line in lines[1:])
    assert (found.merkle_root, found.leaves) == (expected_root.hex(), size)
    assert written.size < sum(len(line) for line in lines)  # compressed
    assert row_of(lines[1])["history_id"] == "h-0"


@pytest.mark.parametrize("damage", ["truncate", "flip", "missing", "empty"])
def test_a_damaged_segment_is_refused(tmp_path: Path, damage: str) -> None:
    store = DirectoryStore.for_writing(tmp_path)
    name = segment_name("s2")
    write_segment(store, name, _lines(200))
    path = tmp_path / name
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        edited = bytearray(data)
        edited[len(edited) // 2] ^= 0x01
        path.write_bytes(bytes(edited))
    elif damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"")
    with pytest.raises(SegmentError) as caught:
        scan_segment(store, name)
    assert name in str(caught.value)


def _signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def test_a_manifest_is_signed_and_any_edit_breaks_it(tmp_path: Path) -> None:
    store = DirectoryStore.for_writing(tmp_path)
    signer = _signer()
    manifest = SignedManifest.sign({"format": 1, "segment_id": "s3", "leaves": 4}, signer)
    write_manifest(store, manifest)
    back = read_manifest(store, "s3")
    assert back == manifest
    assert back.signed_by(signer.public_key)
    assert not back.signed_by(_signer().public_key)
    edited = SignedManifest({**back.body, "leaves": 5}, back.key_id, back.signature)
    assert not edited.signed_by(signer.public_key)


def test_a_foreign_file_is_not_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "s4.manifest.json").write_bytes(b'{"hello": 1}')
    with pytest.raises(ArchiveError, match="not a manifest"):
        read_manifest(DirectoryStore(tmp_path), "s4")
    with pytest.raises(SegmentError, match="missing"):
        read_manifest(DirectoryStore(tmp_path), "s5")


def test_positions_are_kept_as_runs() -> None:
    positions = [0, 1, 2, 7, 9, 10]
    assert runs(positions) == [[0, 3], [7, 8], [9, 11]]
    assert list(expand(runs(positions))) == positions


def test_an_unwritable_directory_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="not writable"):
        DirectoryStore.for_writing(blocker / "archive")
    with pytest.raises(ConfigurationError, match="does not exist"):
        DirectoryStore.for_reading(tmp_path / "nowhere")


def test_one_run_at_a_time_holds_the_store(tmp_path: Path) -> None:
    store = DirectoryStore.for_writing(tmp_path)
    order: list[str] = []
    held = threading.Event()

    def second() -> None:
        held.wait()
        with store.lock():
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with store.lock():
        held.set()
        thread.join(0.3)  # the second run waits while the first holds the lock
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]
    assert store.names() == []  # the lock file is not a blob
