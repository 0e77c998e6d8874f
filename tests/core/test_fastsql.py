"""The save path's prepared statements: the same rows, types and errors as the ORM writes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from server.core.db import _json_loads, make_session_factory
from server.core.fastsql import reader, writer
from server.core.models import Deal, Event, Run, Team
from server.core.scope import Actor, TeamScope
from server.core.services import deals
from server.core.services.common import bump_rules


def scope_of(app: Litestar, engine: Any, team: Any) -> TeamScope:
    session = make_session_factory(engine)()
    return TeamScope(session, Actor(team.team_id, team.user_id), app.state.runtime.engine)


def test_an_inserted_run_reads_back_through_the_orm_with_its_types_and_defaults(
    engine: Any, team: Any
) -> None:
    # Given an event and a run written by the prepared statements
    with Session(engine) as session:
        event_id = writer(session, Event.__table__).insert(
            session,
            {"team_id": team.team_id, "entity": "deal", "record_id": 7, "op": "created",
             "record": {"id": 7, "custom": {"x": "é"}}, "changed": ["stage"]},
        )
        run_id = writer(session, Run.__table__).insert(
            session,
            {"team_id": team.team_id, "event_id": event_id, "status": "ok",
             "evaluations": [{"workflow": "a", "matched": True}], "duration_ms": 1.5},
        )
        session.commit()

    # Then the ORM reads them as if it had written them
    with Session(engine) as session:
        event = session.get(Event, event_id)
        run = session.get(Run, run_id)
        assert event is not None and run is not None
        assert event.record == {"id": 7, "custom": {"x": "é"}}
        assert event.changed == ["stage"] and event.source == "api" and event.depth == 0
        assert run.evaluations == [{"workflow": "a", "matched": True}]
        assert run.notes == [] and run.matched == ""
        # Defaults filled in (created_at) and timestamps aware UTC on both backends
        assert run.created_at.tzinfo is not None
        assert abs(run.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_an_update_sets_the_values_and_refreshes_updated_at(engine: Any, team: Any) -> None:
    with Session(engine) as session:
        runs = writer(session, Run.__table__)
        event_id = writer(session, Event.__table__).insert(
            session, {"team_id": team.team_id, "op": "received"}
        )
        run_id = runs.insert(session, {"team_id": team.team_id, "event_id": event_id, "status": "ok"})
        session.commit()
        before = session.get(Run, run_id).updated_at  # type: ignore[union-attr]
        session.expunge_all()

        written = runs.update(session, run_id, {"status": "error", "notes": [{"n": 1}]})
        session.commit()

        run = session.get(Run, run_id)
        assert run is not None and run.status == "error" and run.notes == [{"n": 1}]
        assert written["updated_at"] >= before and run.updated_at >= before


def test_a_broken_constraint_is_sqlalchemys_integrity_error(engine: Any, team: Any) -> None:
    # A run must name an existing event (foreign key): the driver's error comes out as the
    # ORM's, so the services' conflict handling applies to both paths.
    with Session(engine) as session:
        with pytest.raises(IntegrityError):
            writer(session, Run.__table__).insert(
                session, {"team_id": team.team_id, "event_id": 999_999, "status": "ok"}
            )
        session.rollback()


def test_a_reader_parses_json_and_returns_none_when_nothing_matches(engine: Any, team: Any) -> None:
    with Session(engine) as session:
        session.get(Team, team.team_id).settings = {"a": [1, 2]}  # type: ignore[union-attr]
        session.commit()
        teams = reader(session, Team.__table__, ("name", "settings"), ("id",))
        assert teams.one(session, team.team_id) == ("Acme", {"a": [1, 2]})
        assert teams.one(session, 999_999) is None


def test_a_deal_created_on_the_save_path_keeps_what_its_workflows_set(
    app: Litestar, engine: Any, team: Any
) -> None:
    # Given a workflow that sets a custom field on every new deal
    scope = scope_of(app, engine, team)
    from server.core.services import workflows

    workflows.save(scope, {
        "id": "tag", "name": "tag", "entity": "deal", "trigger": {"type": "record_saved"},
        "actions": [{"type": "field_update", "set": {"custom.tagged": "yes", "probability": 40}}],
    })

    # When a deal is created (written without the ORM) and the workflow changes it
    created = deals.create(scope, deals.DealIn(title="Pilot", amount=1000))
    scope.session.close()

    # Then the answer and the stored row both carry the workflow's changes and the rules'
    # consequences (the weighted amount), written back in the save's transaction
    assert created.custom == {"tagged": "yes"} and created.probability == 40
    assert created.weighted_amount == 400.0
    with Session(engine) as session:
        row = session.scalars(select(Deal).where(Deal.id == created.id)).one()
        assert row.custom == {"tagged": "yes"} and row.probability == 40
        assert row.weighted_amount == Decimal("400.00") and row.amount == Decimal("1000.00")
        assert row.updated_at == created.updated_at


def test_a_rules_revision_is_never_reused_after_a_rollback(
    app: Litestar, engine: Any, team: Any
) -> None:
    # A process may cache a team's index under a revision read inside a transaction that
    # then rolls back; the next change must not land on that same revision.
    scope = scope_of(app, engine, team)
    bump_rules(scope)
    seen = scope.info.workflows_rev
    scope.session.rollback()
    scope.forget_info()
    bump_rules(scope)
    assert scope.info.workflows_rev != seen
    scope.session.close()


def test_a_value_longer_than_its_column_is_refused_not_cut_short(engine: Any, team: Any) -> None:
    # PostgreSQL cuts a value cast to VARCHAR(n) without a word; the statements must let the
    # column refuse it instead (SQLite keeps whatever it is given).
    with Session(engine) as session:
        values = {"team_id": team.team_id, "op": "created", "entity": "x" * 40}
        if engine.dialect.name == "postgresql":
            with pytest.raises(DataError):
                writer(session, Event.__table__).insert(session, values)
            session.rollback()
        else:
            event_id = writer(session, Event.__table__).insert(session, values)
            assert session.get(Event, event_id).entity == "x" * 40  # type: ignore[union-attr]


def test_none_in_a_json_column_is_json_null_as_the_orm_writes_it(engine: Any, team: Any) -> None:
    with Session(engine) as session:
        fast = writer(session, Event.__table__).insert(
            session, {"team_id": team.team_id, "op": "received", "payload": None}
        )
        orm = Event(team_id=team.team_id, op="received", payload=None)
        session.add(orm)
        session.flush()
        stored = dict(
            session.execute(
                select(Event.id, Event.payload.is_(None)).where(Event.id.in_([fast, orm.id]))
            ).all()
        )
        assert stored[fast] == stored[orm.id] is False


def test_json_written_by_the_json_module_before_still_reads() -> None:
    # NaN and Infinity: text the json module wrote and msgspec refuses.
    value = _json_loads('{"p": NaN, "q": Infinity, "r": [1]}')
    assert value["r"] == [1] and value["p"] != value["p"] and value["q"] == float("inf")
