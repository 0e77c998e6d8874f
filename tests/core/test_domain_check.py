"""teams.check_domain_change: the group re-check of a field-domain change, without saving it."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar

from server.core.db import make_session_factory
from server.core.errors import InvalidInput
from server.core.scope import Actor, TeamScope
from server.core.services import teams
from server.core.starter import STARTER_DOMAINS, load_starter


def scope_of(app: Litestar, engine: Any, team: Any) -> TeamScope:
    session = make_session_factory(engine)()
    return TeamScope(session, Actor(team.team_id, team.user_id), app.state.runtime.engine)


def test_a_change_that_breaks_the_ladder_is_reported_and_nothing_is_saved(
    app: Litestar, engine: Any, team: Any
) -> None:
    # Given the shipped ladder and its domains
    scope = scope_of(app, engine, team)
    load_starter(scope)
    rev = scope.team.workflows_rev
    without = {k: v for k, v in STARTER_DOMAINS.items() if k != "deal.custom.relationship"}

    # When the relationship domain would be dropped
    broken = teams.check_domain_change(scope, without)

    # Then the group it breaks is reported, as update's group_checks would be
    assert [r["group"] for r in broken] == ["deal_probability"]
    assert {u["field"] for u in broken[0]["unprovable"]} == {"record.custom.relationship"}
    # ... and nothing changed: the stored domains, the cache, the rules revision
    scope.session.rollback()
    assert teams.out(scope).field_domains == STARTER_DOMAINS
    assert teams.check_domain_change(scope, dict(STARTER_DOMAINS)) == []
    assert scope.team.workflows_rev == rev
    saved = teams.update(scope, teams.TeamUpdate(field_domains=without))
    assert saved.group_checks == broken
    scope.session.close()


def test_a_harmless_change_breaks_nothing_and_bad_paths_are_refused(
    app: Litestar, engine: Any, team: Any
) -> None:
    scope = scope_of(app, engine, team)
    load_starter(scope)

    assert teams.check_domain_change(
        scope, {**STARTER_DOMAINS, "lead.custom.segment": ["smb", "enterprise"]}
    ) == []
    with pytest.raises(InvalidInput, match="field_domains.deal.title"):
        teams.check_domain_change(scope, {"deal.title": ["x"]})
    scope.session.close()
