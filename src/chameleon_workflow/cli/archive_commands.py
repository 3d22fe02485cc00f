"""``chameleon archive``: move finished work to signed segments; ``archive restore`` brings it back.

The archive directory is ``--archive-dir`` or ``CHAMELEON_ARCHIVE_DIR`` (no default: the
segments are the only copy of what the run deletes). The checkpoint signing key signs
each manifest. Bad input (a cut-off in the future, an unwritable directory, a segment of
another database or with a bad signature) is one line on stderr and exit status 2, and
nothing is deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from chameleon_workflow import read_models
from chameleon_workflow.archive.restore import restore as restore_segment
from chameleon_workflow.archive.run import archive as run_archive
from chameleon_workflow.archive.segment import ArchiveError
from chameleon_workflow.archive.selection import Scope
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.checkpoints.keys import load_signing_key
from chameleon_workflow.checkpoints.paths import signing_key_path
from chameleon_workflow.cli.common import (
    JsonOption,
    UrlOption,
    console,
    existing_engine,
    handled,
    json_ready,
    parse_time,
    print_json,
    sessions,
)
from chameleon_workflow.config import load_settings
from chameleon_workflow.errors import ConfigurationError

ArchiveDirOption = Annotated[
    Path | None,
    typer.Option(
        "--archive-dir",
        help="Directory of segments and manifests (default: CHAMELEON_ARCHIVE_DIR).",
        show_default=False,
    ),
]


def archive_dir(given: Path | None) -> Path:
    """Return the archive directory given, or the setting's; a ConfigurationError if neither."""
    if given is not None:
        return given
    configured = load_settings().archive_dir
    if not configured:
        raise ConfigurationError(
            "no archive directory: pass --archive-dir or set CHAMELEON_ARCHIVE_DIR"
        )
    return Path(configured)


def archive(
    ctx: typer.Context,
    before: Annotated[
        str | None,
        typer.Option(help="Archive UOWs finished and last changed before this ISO 8601 time."),
    ] = None,
    instance: Annotated[str | None, typer.Option(help="Only this instance (name or id).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be archived; change nothing.")
    ] = False,
    directory: ArchiveDirOption = None,
    as_json: JsonOption = False,
    database_url: UrlOption = None,
) -> None:
    """Archive finished UOWs (history, attribute versions, log rows) to signed segments."""
    if ctx.invoked_subcommand is not None:
        return
    with handled():
        if before is None:
            raise ArchiveError("--before is required: archive UOWs last changed before when?")
        cut = parse_time(before, "--before")
        assert cut is not None
        settings = load_settings()
        target = database_url or settings.database_url
        root = archive_dir(directory)
        store = DirectoryStore(root) if dry_run else DirectoryStore.for_writing(root)  # dry: unused
        signer = None if dry_run else load_signing_key(signing_key_path(target, settings))
        engine = existing_engine(target, read_only=dry_run)
        try:
            with sessions(engine) as factory, factory() as session:
                instance_id = read_models.instance_id_of(session, instance) if instance else None
            result = run_archive(engine, store, signer, Scope(cut, instance_id), dry_run=dry_run)
        finally:
            engine.dispose()
    document: dict[str, Any] = json_ready(result)
    document["compression_ratio"] = round(result.compression_ratio(), 2)
    if as_json:
        print_json(document)
        return
    verb = "would archive" if dry_run else "archived"
    rows = ", ".join(f"{n} {t}" for t, n in sorted(result.rows.items())) or "no rows"
    console.print(Text(f"{verb} {result.uows} UOWs ({rows})"))
    for segment in result.segments:
        console.print(Text(f"segment {segment} in {root}"))
    if result.segments:
        console.print(Text(f"compression {result.compression_ratio():.1f}x"))


def restore(
    segment: Annotated[str, typer.Argument(help="The segment's id (its file name's stem).")],
    directory: ArchiveDirOption = None,
    database_url: UrlOption = None,
) -> None:
    """Verify a segment and bring its rows back into the database."""
    with handled():
        settings = load_settings()
        target = database_url or settings.database_url
        store = DirectoryStore.for_reading(archive_dir(directory))
        public = load_signing_key(signing_key_path(target, settings)).public_key
        engine = existing_engine(target, read_only=False)
        try:
            result = restore_segment(engine, store, segment.split(".", 1)[0], public)
        finally:
            engine.dispose()
    rows = ", ".join(f"{n} {t}" for t, n in sorted(result.items()))
    console.print(Text(f"restored segment {segment}: {rows}"))
