"""``chameleon redact``: erase one attribute value everywhere, recorded in the admin ledger."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.checkpoints.keys import load_signing_key
from chameleon_workflow.checkpoints.paths import signing_key_path
from chameleon_workflow.cli.common import (
    UrlOption,
    console,
    existing_engine,
    handled,
    parse_uuid,
    sessions,
    shown,
)
from chameleon_workflow.config import load_settings
from chameleon_workflow.erasure import (
    RedactionResult,
    archived_in,
    redact_archived,
    redact_value,
    writing,
)


def redact(
    uow_id: Annotated[str, typer.Argument(help="The UOW whose value is erased (its id).")],
    key: Annotated[str, typer.Argument(help="The attribute whose value is erased.")],
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why (recorded in the admin ledger).", show_default=False),
    ],
    archive_dir: Annotated[
        Path | None,
        typer.Option(
            "--archive-dir",
            help="Archive directory: an archived UOW is restored, redacted and archived again.",
            show_default=False,
        ),
    ] = None,
    database_url: UrlOption = None,
) -> None:
    """Erase an attribute's value from every row that holds it; verification still passes."""
    with handled():
        target = parse_uuid(uow_id, "UOW_ID")
        settings = load_settings()
        url = database_url or settings.database_url
        engine = existing_engine(url, read_only=False)
        with sessions(engine) as factory:
            with engine.connect() as connection:
                archived = bool(archived_in(connection, target))
            if archive_dir is not None and archived:
                store = DirectoryStore.for_writing(archive_dir)
                signer = load_signing_key(signing_key_path(url, settings))
                done = redact_archived(factory, store, signer, target, key, reason)
                _said(done.redaction)
                for segment in done.restored:
                    _say(f"segment {segment} restored; its files removed by the archive run")
                for segment in done.archived.segments:
                    _say(f"archived {done.archived.uows} UOWs again: segment {segment}")
                return
            _said(_redact(factory, target, key, reason))


def _redact(
    factory: sessionmaker[Session], target: uuid.UUID, key: str, reason: str
) -> RedactionResult:
    with writing(factory).begin() as session:
        return redact_value(session, target, key, reason)


def _said(result: RedactionResult) -> None:
    _say(
        f"redacted {result.key!r} of UOW {result.uow_id}: {result.attribute_rows} attribute "
        f"rows, {result.history_rows} history rows, {result.log_rows} log rows "
        f"(admin event #{result.admin_sequence})"
    )


def _say(text: str) -> None:
    console.print(shown(text), highlight=False, soft_wrap=True)
