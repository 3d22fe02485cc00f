"""``chameleon pilot …``: a pilot's oversight from the command line.

The pilot is named by its identity key in an instance (``--instance``, ``--pilot``); it
must be an actor of type PILOT. Each command is one engine operation: the queue of UOWs
waiting for a pilot, approve or reject a held move, answer a question, waive a guardian's
refusal, pause or resume the instance. Errors are one line and exit status 2.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.text import Text
from sqlalchemy import select

from chameleon_workflow import read_models
from chameleon_workflow.cli.common import (
    UrlOption,
    console,
    existing_engine,
    handled,
    parse_uuid,
    sessions,
    shown,
)
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.engine.views import UOWView
from chameleon_workflow.errors import NotFoundError
from chameleon_workflow.models import LocalActor

T = TypeVar("T")
InstanceOption = Annotated[str, typer.Option(help="The instance (name or id).")]
PilotOption = Annotated[
    str, typer.Option("--pilot", help="The pilot's identity key in the instance.")
]
UOWArgument = Annotated[str, typer.Argument(help="The UOW's id.")]

pilot = typer.Typer(
    help="Oversee an instance as a pilot: approve, reject, answer, waive, pause, resume.",
    no_args_is_help=True,
)


def _run(
    database_url: str | None,
    instance: str,
    identity: str,
    action: Callable[[WorkflowEngine, uuid.UUID, uuid.UUID], T],
) -> T:
    """Open the database, find the instance and the pilot, and run one engine operation."""
    with sessions(existing_engine(database_url, read_only=False)) as factory:
        engine = WorkflowEngine(factory)
        with factory() as session:
            instance_id = read_models.instance_id_of(session, instance)
            actor_id = session.scalar(
                select(LocalActor.actor_id).where(
                    LocalActor.instance_id == instance_id, LocalActor.identity_key == identity
                )
            )
        if actor_id is None:
            raise NotFoundError(f"no actor {identity!r} in instance {instance!r}")
        result = action(engine, actor_id, instance_id)
        engine.flush_telemetry()
        return result


def _done(view: UOWView, what: str) -> None:
    console.print(
        shown(f"{what}: UOW {view.uow_id} is {view.status} in {view.interaction or '(none)'}")
    )


@pilot.command()
def queue(instance: InstanceOption, pilot_key: PilotOption, database_url: UrlOption = None) -> None:
    """List the UOWs waiting for a pilot, oldest first."""
    with handled():
        waiting = _run(database_url, instance, pilot_key, lambda e, p, i: e.oversight.queue(p, i))
        console.print(shown(f"{len(waiting)} waiting for a pilot, oldest first"))
        # One block per UOW, never a table: a table would cut the ids at the terminal's width.
        for item in waiting:
            head = shown(f"{item.uow_id}  {item.kind}")
            head.stylize("bold")
            console.print()
            console.print(head, soft_wrap=True)
            since = item.since.strftime("%Y-%m-%d %H:%M:%S")
            place = f"{item.workflow} / {item.interaction}, waiting since {since} UTC"
            console.print(Text("    ") + shown(place), soft_wrap=True)
            what = (
                f"question: {item.question}"
                if item.kind == "clarification"
                else f"rule: {item.rule}"
            )
            console.print(Text("    ") + shown(what), soft_wrap=True)


@pilot.command()
def approve(
    uow_id: UOWArgument,
    instance: InstanceOption,
    pilot_key: PilotOption,
    reasoning: Annotated[str, typer.Option(help="Why the move may go ahead.")],
    database_url: UrlOption = None,
) -> None:
    """Approve a held move: it is made now (PILOT_APPROVAL in the history)."""
    with handled():
        target = parse_uuid(uow_id, "UOW id")
        view = _run(
            database_url, instance, pilot_key,
            lambda e, p, _: e.oversight.approve(p, target, reasoning),
        )  # fmt: skip
        _done(view, "approved")


@pilot.command()
def reject(
    uow_id: UOWArgument,
    instance: InstanceOption,
    pilot_key: PilotOption,
    reason: Annotated[str, typer.Option(help="Why the move is refused.")],
    to: Annotated[
        str | None, typer.Option(help="Interaction to send it to (default: the rule's).")
    ] = None,
    database_url: UrlOption = None,
) -> None:
    """Refuse a held move: to the rule's (or --to) interaction, else FAILED."""
    with handled():
        target = parse_uuid(uow_id, "UOW id")
        view = _run(
            database_url, instance, pilot_key,
            lambda e, p, _: e.oversight.reject(p, target, reason, to),
        )  # fmt: skip
        _done(view, "rejected")


@pilot.command()
def answer(
    uow_id: UOWArgument,
    instance: InstanceOption,
    pilot_key: PilotOption,
    text: Annotated[str, typer.Option("--answer", help="The answer to the holder's question.")],
    database_url: UrlOption = None,
) -> None:
    """Answer a holder's question; the UOW goes back to it."""
    with handled():
        target = parse_uuid(uow_id, "UOW id")
        view = _run(
            database_url, instance, pilot_key,
            lambda e, p, _: e.oversight.answer(p, target, text),
        )  # fmt: skip
        _done(view, "answered")


@pilot.command()
def waive(
    uow_id: UOWArgument,
    instance: InstanceOption,
    pilot_key: PilotOption,
    justification: Annotated[str, typer.Option(help="Why the guardian is overruled.")],
    database_url: UrlOption = None,
) -> None:
    """Overrule the guardian that refused a UOW, with a written justification."""
    with handled():
        target = parse_uuid(uow_id, "UOW id")
        view = _run(
            database_url, instance, pilot_key,
            lambda e, p, _: e.oversight.waive(p, target, justification),
        )  # fmt: skip
        _done(view, "waived")


@pilot.command()
def pause(
    instance: InstanceOption,
    pilot_key: PilotOption,
    reasoning: Annotated[str, typer.Option(help="Why the instance is paused.")],
    database_url: UrlOption = None,
) -> None:
    """Pause an instance: no checkout until resumed; its waiting UOWs become PAUSED."""
    with handled():
        moved = _run(
            database_url, instance, pilot_key, lambda e, p, i: e.oversight.pause(p, i, reasoning)
        )
        console.print(shown(f"instance {instance!r} paused; {moved} waiting UOWs paused"))


@pilot.command()
def resume(
    instance: InstanceOption,
    pilot_key: PilotOption,
    reasoning: Annotated[str, typer.Option(help="Why the instance may run again.")],
    database_url: UrlOption = None,
) -> None:
    """Resume a paused instance: its PAUSED UOWs wait again."""
    with handled():
        moved = _run(
            database_url, instance, pilot_key, lambda e, p, i: e.oversight.resume(p, i, reasoning)
        )
        console.print(shown(f"instance {instance!r} resumed; {moved} UOWs waiting again"))
