"""The ``eventsourcing`` library as a peer of ``save_uow``: one new event of an aggregate.

Each save is what an application built on that library does to move an aggregate one
step: call a command method (which triggers one new event, version + 1) and
``Application.save`` it. The recorder inserts the stored event in one transaction; the
primary key ``(originator_id, originator_version)`` is the optimistic-concurrency check
(a second writer of the same version fails). The application is configured with the
library's documented environment: ``PERSISTENCE_MODULE`` and ``SQLITE_DBNAME`` or
``POSTGRES_*``; it writes to the benchmark's own SQLite file or scratch database.

Only imported under ``--peers``: the library is the optional ``peers`` extra.
"""

from __future__ import annotations

from importlib.metadata import version
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from sqlalchemy.engine import make_url

#: Aggregates the saves cycle over (as many as the ``save_uow`` figure's UOWs).
AGGREGATES = 200


class Invoice(Aggregate):
    """An aggregate that moves between two places, like the benchmark's UOWs."""

    @event("Created")
    def __init__(self, amount: float) -> None:
        self.amount = amount
        self.place = 0
        self.step = 0

    @event("Moved")
    def move(self, step: int) -> None:
        """One new event: the aggregate moves to the other place."""
        self.place = 1 - self.place
        self.step = step


class Invoices(Application[UUID]):
    """The application whose repository stores the aggregates."""


def environment(url: str) -> dict[str, str]:
    """The library's settings for the database at ``url`` (a SQLite file or PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": parsed.database or "",
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parsed.database or "",
        "POSTGRES_HOST": parsed.host or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": parsed.username or "",
        "POSTGRES_PASSWORD": parsed.password or "",
    }


class EventsourcingPeer:
    """An application with its aggregates created; ``run`` saves one new event at a time."""

    def __init__(self, url: str) -> None:
        self.app = Invoices(env=environment(url))
        self.invoices = [Invoice(amount=1250.5) for _ in range(AGGREGATES)]
        self.app.save(*self.invoices)
        self.saved = 0

    def run(self, count: int) -> None:
        """Save ``count`` new events, one transaction each, cycling over the aggregates."""
        for n in range(count):
            invoice = self.invoices[n % len(self.invoices)]
            invoice.move(step=self.saved + n)
            self.app.save(invoice)
        self.saved += count

    def check(self) -> None:
        """Read one aggregate back: every saved event is in the store (a failed run raises)."""
        stored: Invoice = self.app.repository.get(self.invoices[0].id)
        if stored.version != self.invoices[0].version:
            raise AssertionError("eventsourcing peer: the stored aggregate lags its events")

    def settings(self) -> str:
        """What the peer runs with, for the figure's notes."""
        recorder = type(self.app.recorder).__name__
        return f"eventsourcing {version('eventsourcing')} {recorder}, {AGGREGATES} aggregates"

    def close(self) -> None:
        """Close the application's connections."""
        self.app.close()
