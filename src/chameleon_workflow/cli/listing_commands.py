"""The listings: ``uows`` (filtered, cursor-paged), ``instances``, ``workflows``, ``actors``.

Each opens the database read-only (``instances create`` is the one that writes), prints
full ids, and with ``--json`` prints one JSON document instead (docs/cli.md gives the
shapes).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from chameleon_workflow import listings, read_models
from chameleon_workflow.cli.common import (
    JsonOption,
    UrlOption,
    console,
    existing_engine,
    handled,
    parse_time,
    print_json,
    reading,
    sessions,
    shown,
)
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.errors import InvalidValueError

InstanceFilter = Annotated[
    str | None, typer.Option("--instance", help="Only this instance (name or id).")
]


def uows(
    instance: InstanceFilter = None,
    workflow: Annotated[
        str | None, typer.Option(help="Only this workflow (name or id).", show_default=False)
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only UOWs in this status (repeat for several).", show_default=False),
    ] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            help="Only UOWs whose attribute KEY is VALUE: KEY=VALUE, VALUE read as JSON when it "
            "is JSON, else as text (repeat: all must hold).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Last changed at or after (ISO 8601, UTC if no offset).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last changed before (ISO 8601, UTC if no offset).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=listings.MAX_LIMIT, help="UOWs per page.")] = 50,
    cursor: Annotated[
        str | None, typer.Option(help="The next cursor a previous page printed.")
    ] = None,
    as_json: JsonOption = False,
    database_url: UrlOption = None,
) -> None:
    """List UOWs, the most recently changed first, a page at a time, with full ids."""
    with handled():
        wanted = parse_attributes(attribute or [])
        moments = parse_time(since, "--since"), parse_time(until, "--until")
        with (
            sessions(existing_engine(database_url, read_only=True)) as factory,
            factory() as session,
        ):
            instance_id = read_models.instance_id_of(session, instance) if instance else None
            workflows = (
                read_models.workflow_ids_of(session, workflow, instance_id) if workflow else ()
            )
            where = listings.UOWFilter(
                instance_id, workflows, tuple(status or ()), wanted, moments[0], moments[1]
            )
            page = listings.list_uows(session, where, limit=limit, cursor=cursor)
    if as_json:
        print_json(page)
        return
    console.print(f"{len(page.uows)} UOWs, most recently changed first", highlight=False)
    for u in page.uows:
        console.print(_bold(f"\n{u.uow_id}  {u.status}"), soft_wrap=True)
        changed = u.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        place = f"{u.workflow} / {u.interaction or '-'}, changed {changed} UTC"
        console.print(Text("    ") + shown(place), soft_wrap=True)
    if page.next_cursor is not None:
        console.print(Text(f"\nnext page: --cursor {page.next_cursor}"), soft_wrap=True)


def parse_attributes(pairs: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` filters: the value as JSON when it is JSON, else as text."""
    wanted: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidValueError(f"--attribute {pair!r} is not KEY=VALUE")
        try:
            wanted[key] = json.loads(raw)
        except ValueError:
            wanted[key] = raw
    return wanted


def instances(
    ctx: typer.Context, as_json: JsonOption = False, database_url: UrlOption = None
) -> None:
    """List instances with their ids and what each holds (``instances create NAME`` adds one)."""
    if ctx.invoked_subcommand is not None:
        return
    with handled(), reading(database_url) as session:
        found = listings.list_instances(session)
    if as_json:
        print_json({"instances": found})
        return
    console.print(f"{len(found)} instances", highlight=False)
    for i in found:
        console.print(_bold(f"\n{i.name} ({i.status})"), soft_wrap=True)
        held = f"{i.workflows:,} workflows, {i.actors:,} actors, {i.uows:,} UOWs"
        _lines([("id", str(i.instance_id)), ("holds", held)])


def instances_create(
    name: Annotated[str, typer.Argument(help="The new instance's name (unique).")],
    description: Annotated[str | None, typer.Option(help="What the instance is for.")] = None,
    database_url: UrlOption = None,
) -> None:
    """Create an instance (an isolation container for workflows, actors and UOWs)."""
    with handled():
        if not name.strip():
            raise InvalidValueError("an instance name cannot be empty")
        with sessions(existing_engine(database_url, read_only=False)) as factory:
            instance_id = WorkflowEngine(factory).create_instance(name, description)
    console.print(shown(f"created instance {name!r} with id {instance_id}"), soft_wrap=True)


def workflows(
    instance: InstanceFilter = None, as_json: JsonOption = False, database_url: UrlOption = None
) -> None:
    """List imported workflow versions with their roles' ids (a role id is never ambiguous)."""
    with handled(), reading(database_url) as session:
        instance_id = read_models.instance_id_of(session, instance) if instance else None
        found = listings.list_workflows(session, instance_id)
    if as_json:
        print_json({"workflows": found})
        return
    console.print(f"{len(found)} workflow versions", highlight=False)
    for w in found:
        head = f"\n{w.name} version {w.version} (instance {w.instance})"
        console.print(_bold(head), soft_wrap=True)
        _lines([("id", str(w.workflow_id)), ("definition", w.definition_hash or "-")])
        _lines([(f"role {r.name} ({r.role_type})", str(r.role_id)) for r in w.roles])


def actors(
    instance: InstanceFilter = None, as_json: JsonOption = False, database_url: UrlOption = None
) -> None:
    """List actors with their ids and the roles each holds."""
    with handled(), reading(database_url) as session:
        instance_id = read_models.instance_id_of(session, instance) if instance else None
        found = listings.list_actors(session, instance_id)
    if as_json:
        print_json({"actors": found})
        return
    console.print(f"{len(found)} actors", highlight=False)
    for a in found:
        head = f"\n{a.identity_key} — {a.name}, {a.actor_type} (instance {a.instance})"
        console.print(_bold(head), soft_wrap=True)
        _lines([("id", str(a.actor_id))])
        held = [
            (f"role {r.role} ({r.workflow} {r.workflow_version})", str(r.role_id)) for r in a.roles
        ]
        _lines(held or [("roles", "none")])


def _bold(text: str) -> Text:
    styled = shown(text)
    styled.stylize("bold")
    return styled


def _lines(pairs: list[tuple[str, str]]) -> None:
    for label, value in pairs:
        console.print(Text("    ") + shown(label) + Text(": ") + shown(value), soft_wrap=True)
