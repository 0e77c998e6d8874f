"""Durable ``dealflow_event`` delivery: owed with the change, called after commit, redelivered.

When some plugin implements the hook, each event is written with ``notify_at`` set (save
time + ``event_hook_lease_seconds``) in the transaction of the change: a rolled-back change
owes nothing, a committed one owes its hook calls durably. After the commit the saving
process claims its events and calls the hooks. Every relay (in each server and each worker)
also looks, each round, for events whose ``notify_at`` has passed — the saving process died,
or a relay died while delivering — and delivers them. A claim is one conditional UPDATE that
moves ``notify_at`` forward, so two processes never hold one event at once; once the hooks
were called, ``notify_at`` becomes NULL. Delivery is at least once: a process that dies
while calling the hooks, or before recording that it did, leaves the event to be delivered
again when its lease runs out. A plugin that raises is logged and counts as delivered.

The relay calls the hooks itself rather than through a dramatiq actor, with or without
Redis: the event row is already the outbox entry and the lease, so a message would be a
second queue to keep in step with it and would add nothing. Every server and worker runs a
relay, so delivery goes on while any of them is alive.

When no plugin implements the hook, nothing here runs: the save writes no ``notify_at`` and
no relay scans the events.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from server.core.models import Event, Team, utcnow
from server.core.plugins import Registry

log = logging.getLogger("dealflow.notifications")

BATCH = 20
"""Events claimed at a time, by a relay and by the saving process alike: each claim holds its
events for a lease from the moment it is made, so a slow plugin working through a large batch
never lets the hold of the batch's last events run out before their turn."""

Delivery = tuple[int, dict[str, Any]]
"""``(team_id, document)``: one event as the hook receives it."""


def lease_seconds(settings: Any) -> float:
    return float(getattr(settings, "event_hook_lease_seconds", 60.0))


def owed(settings: Any) -> dict[str, dt.datetime]:
    """The value an event's INSERT adds when some plugin listens: the hook is owed, and
    relays may deliver it from ``event_hook_lease_seconds`` on."""
    return {"notify_at": utcnow() + dt.timedelta(seconds=lease_seconds(settings))}


class Notifier:
    """Calls the ``dealflow_event`` hooks for committed events, each at least once."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        registry: Registry,
        settings: Any,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.factory = factory
        self.registry = registry
        self.lease = dt.timedelta(seconds=lease_seconds(settings))
        self.clock = clock

    @property
    def listening(self) -> bool:
        """Whether any plugin of this process implements ``dealflow_event``."""
        return bool(self.registry.pm.hook.dealflow_event.get_hookimpls())

    def deliver(self, events: list[Delivery], committed: dt.datetime) -> int:
        """Called after a commit, off the request, with the events it wrote (``committed``
        read at the commit): claim them, call the hooks, record the delivery.

        The events were written with ``notify_at`` at most ``committed`` + lease. A relay's
        claim puts it past that (see :meth:`sweep`), and a delivery clears it, so the bound
        lets this process take exactly the events nobody else holds or has delivered."""
        delivered = 0
        for start in range(0, len(events), BATCH):
            chunk = events[start:start + BATCH]
            ids = [document["event"]["id"] for _, document in chunk]
            try:
                claimed = self._claim(ids, Event.notify_at <= committed + self.lease, self.lease)
            except Exception:  # noqa: BLE001 - the database is away: a relay delivers them later
                log.exception("could not claim %d events for dealflow_event; relays retry",
                              len(ids))
                return delivered
            self._call([(team_id, doc) for team_id, doc in chunk if doc["event"]["id"] in claimed])
            try:
                self._done(claimed)
            except Exception:  # noqa: BLE001 - delivered, not recorded: delivered again later
                log.exception("could not record %d events as notified", len(claimed))
            delivered += len(claimed)
        return delivered

    def sweep(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Called by the relay each round: deliver the events whose ``notify_at`` passed
        (their saving process or their relay died); return how many were delivered. Between
        batches it stops when ``stopping()`` says the process is closing: what is left stays
        owed for the next relay.

        A relay's claim holds for twice the lease, so its ``notify_at`` lies past the bound
        the saving process claims with (commit time + lease) even for an event it just saw
        committed: the two never both hold one event."""
        delivered = 0
        while not stopping():
            now = self.clock()
            with self.factory() as session:
                ids = list(
                    session.scalars(
                        select(Event.id)
                        .where(Event.notify_at <= now)
                        .order_by(Event.notify_at)
                        .limit(BATCH)
                    )
                )
            if not ids:
                return delivered
            claimed = self._claim(ids, Event.notify_at <= now, 2 * self.lease)
            self._call(self._documents(claimed))
            self._done(claimed)
            delivered += len(claimed)
            if len(ids) < BATCH:
                return delivered
        return delivered

    def _claim(self, ids: Iterable[int], due: ColumnElement[bool], hold: dt.timedelta) -> set[int]:
        """Move ``notify_at`` of those of ``ids`` that are ``due`` to ``hold`` from now, in
        one statement; return their ids."""
        ids = list(ids)
        if not ids:
            return set()
        with self.factory() as session:
            claimed = set(
                session.scalars(
                    update(Event)
                    .where(Event.id.in_(ids), due)
                    .values(notify_at=self.clock() + hold)
                    .returning(Event.id),
                    execution_options={"synchronize_session": False},
                )
            )
            session.commit()
        return claimed

    def _done(self, ids: set[int]) -> None:
        if not ids:
            return
        with self.factory() as session:
            session.execute(
                update(Event).where(Event.id.in_(ids)).values(notify_at=None),
                execution_options={"synchronize_session": False},
            )
            session.commit()

    def _call(self, events: list[Delivery]) -> None:
        impls = self.registry.pm.hook.dealflow_event.get_hookimpls()
        for team_id, document in events:
            for impl in impls:
                # Each plugin in its own try: one broken plugin does not stop the others.
                try:
                    impl.function(event=document, team_id=team_id)
                except Exception:  # noqa: BLE001
                    log.exception("plugin %s failed in dealflow_event", impl.plugin_name)

    def _documents(self, ids: set[int]) -> list[Delivery]:
        """The claimed events as the saving process would have passed them to the hook."""
        # Imported here: the engine imports this module to mark the events it writes.
        from server.core.engine import team_document

        if not ids:
            return []
        with self.factory() as session:
            rows = list(session.scalars(select(Event).where(Event.id.in_(ids)).order_by(Event.id)))
            teams = {
                team.id: team_document(team)
                for team in session.scalars(select(Team).where(Team.id.in_({r.team_id for r in rows})))
            }
        return [(row.team_id, event_document(row, teams[row.team_id])) for row in rows]


def event_document(row: Event, team: dict[str, Any]) -> dict[str, Any]:
    """The context document of a stored event (what :func:`engine.context_document` built
    when it was saved; ``team`` as it is now)."""
    event = {
        "id": row.id,
        "op": row.op,
        "entity": row.entity,
        "record_id": row.record_id,
        "name": row.name,
        "source": row.source,
        "depth": row.depth,
        "user_id": row.user_id,
    }
    if row.op == "scheduled":
        event.update((row.payload or {}).get("schedule") or {})
    return {
        "record": row.record,
        "previous": row.previous,
        "changed": row.changed,
        "event": event,
        "team": team,
        "payload": row.payload,
    }
