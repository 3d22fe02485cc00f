"""The checkpoint commands: seal (``checkpoint``), export the public key, prove, verify against one.

``checkpoint`` writes (positions and a signed head); ``prove`` and ``verify --checkpoint``
open the database read-only and never create or migrate it. The signing key is a file
outside the database (docs/checkpoints.md says where).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.text import Text

from chameleon_workflow.archive.cuts import archived_map
from chameleon_workflow.checkpoints.heads import Checkpoint, read_checkpoint
from chameleon_workflow.checkpoints.keys import (
    create_signing_key,
    load_public_key,
    load_signing_key,
    public_pem,
)
from chameleon_workflow.checkpoints.paths import (
    checkpoint_path,
    default_signing_key_path,
    signing_key_path,
)
from chameleon_workflow.checkpoints.proofs import prove_inclusion
from chameleon_workflow.checkpoints.sealer import seal_to_file
from chameleon_workflow.checkpoints.verify import CheckpointReport, verify_checkpoint
from chameleon_workflow.cli.common import (
    EXIT_FINDINGS,
    UrlOption,
    console,
    errors,
    existing_engine,
    handled,
)
from chameleon_workflow.config import Settings, load_settings
from chameleon_workflow.errors import ConfigurationError

#: Findings printed one per line; the rest are counted.
SHOWN_FINDINGS = 100

CheckpointOption = Annotated[
    Path | None,
    typer.Option(help="A checkpoint file (JSON) to verify against; see docs/checkpoints.md."),
]
PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        help="Public key (PEM) the checkpoint must be signed by; default: the signing key's.",
        show_default=False,
    ),
]


def checkpoint(
    output: Annotated[
        Path | None,
        typer.Option(help="Where to write the checkpoint JSON (default beside the database)."),
    ] = None,
    database_url: UrlOption = None,
) -> None:
    """Seal every ledger row written so far and write the signed checkpoint."""
    with handled():
        settings = load_settings()
        target = database_url or settings.database_url
        signer = load_signing_key(signing_key_path(target, settings))
        path = output or checkpoint_path(target, settings)
        engine = existing_engine(target, read_only=False)
        try:
            result = seal_to_file(engine, signer, path)
        finally:
            engine.dispose()
        head = result.checkpoint
        if head is None:
            console.print("nothing to seal: the ledger is empty", highlight=False)
            return
        console.print(
            Text(
                f"sealed {result.new_leaves:,} new rows in {result.elapsed_s:.2f} s; checkpoint "
                f"of {head.tree_size:,} leaves, root {head.root_hash}, key {head.key_id}, "
                f"written to {path}"
            ),
            soft_wrap=True,
        )


def keys_export(
    output: Annotated[
        Path | None, typer.Option(help="Write the public key here (default: standard output).")
    ] = None,
    database_url: UrlOption = None,
) -> None:
    """Write the public half of the checkpoint signing key (PEM)."""
    with handled():
        settings = load_settings()
        signer = load_signing_key(signing_key_path(database_url or settings.database_url, settings))
        pem = public_pem(signer.public_key)
        if output is None:
            sys.stdout.write(pem.decode("ascii"))
            return
        try:
            output.write_bytes(pem)
        except OSError as exc:
            raise ConfigurationError(f"cannot write the public key to {output}: {exc}") from exc
        console.print(Text(f"public key {signer.key_id} written to {output}"), soft_wrap=True)


def prove(
    row_id: Annotated[str, typer.Argument(help="The row's id (a history_id by default).")],
    checkpoint_file: Annotated[
        Path, typer.Option("--checkpoint", help="The checkpoint file to prove against.")
    ],
    table: Annotated[str, typer.Option(help="The ledger table the row is in.")] = "uow_history",
    database_url: UrlOption = None,
) -> None:
    """Print the inclusion proof (JSON) of one ledger row in a checkpoint; read-only."""
    with handled():
        head = read_checkpoint(checkpoint_file)
        engine = existing_engine(database_url, read_only=True)
        try:
            with engine.connect() as connection:
                proof = prove_inclusion(connection, head, table, row_id)
        finally:
            engine.dispose()
        if not proof.valid():
            message = (
                f"{table} {row_id} at position {proof.leaf_index} does not lead to the "
                "checkpoint's root: it or the sealed record changed since; "
                "run `chameleon verify --checkpoint`"
            )
            errors.print(Text.assemble(("finding: ", "bold red"), message))
            raise typer.Exit(EXIT_FINDINGS)
        sys.stdout.write(json.dumps(proof.to_json(), indent=2) + "\n")


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint to verify against and the public key that must have signed it."""

    checkpoint: Checkpoint
    public_key: Ed25519PublicKey


def load_anchor(path: Path, public_key: Path | None, database_url: str | None) -> Anchor:
    """Read the checkpoint file and the public key (given, or the signing key's half)."""
    return Anchor(read_checkpoint(path), public_key_of(public_key, database_url))


def public_key_of(public_key: Path | None, database_url: str | None) -> Ed25519PublicKey:
    """Return the public key given, or the signing key's half; a ConfigurationError if neither."""
    if public_key is not None:
        return load_public_key(public_key)
    settings = load_settings()
    key_file = signing_key_path(database_url or settings.database_url, settings)
    if not key_file.is_file():
        raise ConfigurationError(
            f"no public key: pass --public-key FILE (no signing key at {key_file})"
        )
    return load_signing_key(key_file).public_key


def check_anchor(database_url: str | None, anchor: Anchor) -> CheckpointReport:
    """Verify the database against the anchor and return the report (printing nothing)."""
    engine = existing_engine(database_url, read_only=True)
    try:
        with engine.connect() as connection:
            archived = archived_map(connection)
            return verify_checkpoint(connection, anchor.checkpoint, anchor.public_key, archived)
    finally:
        engine.dispose()


def print_checkpoint_report(report: CheckpointReport) -> None:
    """Print a checkpoint verification: one summary line, then one line per finding."""
    newest = "none" if report.newest_size is None else f"{report.newest_size:,} leaves"
    console.print(
        Text(
            f"checkpoint of {report.tree_size:,} leaves: {report.leaves_checked:,} rows "
            f"recomputed in {report.elapsed_s:.2f} s; the database's newest checkpoint: {newest}"
        ),
        soft_wrap=True,
    )
    for segment, leaves in report.archived:
        console.print(
            Text(f"{leaves:,} covered rows are in archived segment {segment}, not the database"),
            soft_wrap=True,
        )
    if report.ok:
        console.print("[bold green]checkpoint verification clean[/]")
        return
    for finding in report.findings[:SHOWN_FINDINGS]:
        console.print(Text(str(finding)), soft_wrap=True)
    hidden = len(report.findings) - SHOWN_FINDINGS
    if hidden > 0:
        console.print(f"... and {hidden:,} more findings", highlight=False)
    console.print(f"[bold red]{len(report.findings):,} checkpoint findings[/]")


def ensure_signing_key(database_url: str | None, settings: Settings) -> None:
    """Create the checkpoint signing key where it belongs, once; say where (``chameleon init``)."""
    target = database_url or settings.database_url
    path = (
        Path(settings.signing_key_file)
        if settings.signing_key_file
        else default_signing_key_path(target)
    )
    if path is None:
        return
    if path.exists():
        return
    key = create_signing_key(path)
    console.print(
        Text(f"checkpoint signing key {key.key_id} created at {path} (mode 0600; back it up)"),
        soft_wrap=True,
    )
