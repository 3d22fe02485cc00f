"""Verification of the ledger: one UOW, one instance or a whole database, every finding named.

For each UOW it checks that the attributes hash to the stored ``content_hash``, that
attribute versions run 1..n per key and every digested version still matches its digest
and the history row committing to it, that history sequences run 1..n without gaps,
that every row's ``chain_hash`` is the link (format 1) or the MAC under the ledger key
(format 2) from the row before it, that each row starts where the previous one ended
(status, interaction, state hash), and that the UOW row agrees with its history. The key
ledger (and on whole-database runs its seal of unkeyed rows) is checked too, and on
whole-database runs every log stream (``audit.streams``) and the admin ledger. Rows are
streamed page by page straight from the driver, so memory stays flat and the pace is set
by hashing, not by the ORM. One process does it all: on a 2-core machine, worker
processes never beat it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from chameleon_workflow.archive.cuts import load_cuts
from chameleon_workflow.audit.admin import check_admin_ledger
from chameleon_workflow.audit.checks import check_orphans, verify_page
from chameleon_workflow.audit.definitions import check_definitions
from chameleon_workflow.audit.keyledger import check_key_ledger, report_unknown_keys
from chameleon_workflow.audit.protection import check_protection
from chameleon_workflow.audit.reader import VerifyReader
from chameleon_workflow.audit.report import Tally, VerificationReport
from chameleon_workflow.audit.streams import check_streams
from chameleon_workflow.db import translated_errors
from chameleon_workflow.keys import KeyProvider, find_keys
from chameleon_workflow.redactions import load_redactions


def verify(
    session: Session,
    *,
    keys: KeyProvider | None = None,
    instance_id: uuid.UUID | None = None,
    uow_id: uuid.UUID | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Verify every UOW (of one instance, or just one UOW) and report all findings.

    Links are checked under ``keys``; without them, under the keys the database's settings
    name (``keys.find_keys``: ConfigurationError when there are none).
    """
    started = time.perf_counter()
    tally = Tally()
    with translated_errors():
        conn = session.connection()
        if keys is None:
            keys = find_keys(conn.engine.url.render_as_string(hide_password=False))
        tally.redactions = load_redactions(conn)
        scope = None if instance_id is None else str(instance_id)
        reader = VerifyReader(conn.connection.driver_connection, conn.dialect.name, scope)
        for page in reader.pages(uow_id):
            verify_page(reader, page, keys, tally)
            if progress is not None:
                progress(len(page))
        if uow_id is None:
            check_orphans(reader, tally)
            check_key_ledger(reader, keys, tally, whole=scope is None)
            check_protection(reader.raw, conn.dialect.name, tally)
            tally.definitions = check_definitions(conn, instance_id, tally)
        if uow_id is None and scope is None:
            check_streams(conn, keys, tally)
            check_admin_ledger(conn, keys, tally)
            for segment_id, manifest in load_cuts(conn).manifests.items():
                tally.notices.append(
                    f"the live ledger continues from archived segment {segment_id} "
                    f"({manifest.body.get('leaves')} rows of UOWs last changed before "
                    f"{manifest.body.get('before')}): verify it with --archive"
                )
        report_unknown_keys(keys, tally)
    return VerificationReport(
        tally.uows,
        tally.history,
        tally.attributes,
        tuple(tally.findings),
        time.perf_counter() - started,
        log_rows_checked=tally.log_rows,
        streams_checked=tally.streams,
        admin_events_checked=tally.admin_events,
        definitions_checked=tally.definitions,
        notices=tuple(tally.notices),
    )
