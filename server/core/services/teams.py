"""Teams: creation, users, API keys, settings and field domains."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.core.errors import Conflict, InvalidInput, NotFound
from server.core.models import FieldDomain, Team, User
from server.core.scope import TeamScope
from server.core.services import audit
from server.core.services.common import bump_rules, check_email, commit
# API keys live in services.keys; these names stay importable from here.
from server.core.services.keys import authenticate, create_key, revoke_key  # noqa: F401

DOMAIN_PATH_RE = re.compile(
    r"^(deal\.(stage|currency)|(contact|deal|lead)\.custom\.[A-Za-z_][A-Za-z0-9_]{0,63})$"
)

TeamName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
DomainValue = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Side = Literal["marketing", "sales"]
LeadStage = Literal["lead", "mql", "sal", "opportunity", "customer", "recycled"]
OutreachTypeName = Literal["platform", "email", "call", "social", "messenger"]
Channel = Literal["slack", "telegram", "email"]
UserId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
QUALIFICATION_FIELD_RE = re.compile(
    r"^(contact\.(name|email|phone|company)|(contact|lead)\.custom\.[A-Za-z_][A-Za-z0-9_]{0,63})$"
)


STAGE_OWNERS: dict[str, str] = {
    "lead": "marketing",
    "mql": "marketing",
    "sal": "sales",
    "opportunity": "sales",
    "customer": "sales",
    "recycled": "marketing",
}


class Qualification(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    """When a lead is ready for sales: its score reached ``score_threshold``, every required
    profile field is filled in and ``condition`` holds."""

    score_threshold: Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
    """The score at or above which a lead qualifies."""
    required_fields: list[Annotated[str, msgspec.Meta(max_length=100)]] = []
    """Profile fields that must not be empty: ``contact.name|email|phone|company``,
    ``contact.custom.<name>`` or ``lead.custom.<name>``."""
    condition: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    """JMESPath over ``{"lead": …, "contact": …}`` that must be true; None: no extra rule."""


class TeamSettings(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    """Team-wide settings."""

    notification_channels: list[Channel] = []
    """Channels that team notifications go to."""
    outreach_costs: dict[OutreachTypeName, Annotated[float, msgspec.Meta(ge=0)]] = {}
    """Default cost of one outreach effort per channel, for ROI figures."""
    stage_owners: dict[LeadStage, Side] = msgspec.field(default_factory=lambda: dict(STAGE_OWNERS))
    """Which side owns a lead in each lifecycle stage."""
    stage_sla_hours: dict[LeadStage, Annotated[int, msgspec.Meta(gt=0)]] = {}
    """How long a lead may stay in a stage without the expected action."""
    # The parts below are left out of the team's document until they are set.
    qualification: Qualification | None | UnsetType = UNSET
    """The team's qualification rule; unset or None: no lead qualifies automatically."""
    sales_users: list[UserId] | UnsetType = UNSET
    """Users on the sales side, in round-robin order, who take leads handed to sales."""
    marketing_users: list[UserId] | UnsetType = UNSET
    """Users on the marketing side, who take leads handed back to marketing."""

    def rule(self) -> Qualification | None:
        """The qualification rule, None when there is none."""
        return self.qualification if isinstance(self.qualification, Qualification) else None

    def side_users(self, side: str) -> list[int]:
        """The users listed for ``side`` (``sales`` or ``marketing``), in order."""
        users = getattr(self, f"{side}_users")
        return list(users) if users is not UNSET else []


class TeamOut(msgspec.Struct, omit_defaults=True):
    """A team's settings as the API returns them."""

    id: int
    name: str
    timezone: str
    settings: TeamSettings
    field_domains: dict[str, list[str]]
    group_checks: list[dict[str, Any]] = []
    """After a change of field domains: the report of each exclusive group it broke."""


class TeamUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Team settings to change; parts left out stay as they are. ``field_domains`` replaces the
    whole map: a path left out of it loses its domain."""

    name: TeamName | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
    settings: TeamSettings | UnsetType = UNSET
    field_domains: dict[str, list[DomainValue]] | UnsetType = UNSET


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA timezone, else :class:`InvalidInput` naming ``timezone``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"timezone: {name!r} is not an IANA timezone such as Europe/Berlin", field="timezone"
        ) from exc
    return name


def check_domains(domains: dict[str, list[str]]) -> dict[str, list[str]]:
    """Refuse domain paths a condition cannot see and empty or repeated value lists."""
    for path, values in domains.items():
        field = f"field_domains.{path}"
        if not DOMAIN_PATH_RE.match(path):
            raise InvalidInput(
                f"{field}: domains are declared for deal.stage, deal.currency or "
                "<contact|deal|lead>.custom.<name>",
                field=field,
            )
        if not values:
            raise InvalidInput(f"{field}: a domain needs at least one value", field=field)
        if len(set(values)) != len(values):
            raise InvalidInput(f"{field}: values are repeated", field=field)
    return domains


def check_settings(scope: TeamScope, settings: TeamSettings) -> TeamSettings:
    """Refuse a qualification rule that cannot be evaluated and side users not in the team;
    stages left out of ``stage_owners`` keep their default side."""
    settings.stage_owners = {**STAGE_OWNERS, **settings.stage_owners}
    rule = settings.rule()
    if rule is not None:
        if rule.condition is not None and rule.condition.strip():
            from server.core.expressions import ExpressionError, compile_expression

            try:
                compile_expression(rule.condition)
            except ExpressionError as exc:
                field = "settings.qualification.condition"
                raise InvalidInput(f"{field}: {exc.message}", field=field) from exc
        for index, path in enumerate(rule.required_fields):
            field = f"settings.qualification.required_fields[{index}]"
            if not QUALIFICATION_FIELD_RE.match(path):
                raise InvalidInput(
                    f"{field}: {path!r} is not a profile field; use contact.name, contact.email, "
                    "contact.phone, contact.company, contact.custom.<name> or lead.custom.<name>",
                    field=field,
                )
        if len(set(rule.required_fields)) != len(rule.required_fields):
            field = "settings.qualification.required_fields"
            raise InvalidInput(f"{field}: fields are repeated", field=field)
    for side in ("sales_users", "marketing_users"):
        ids = settings.side_users(side.removesuffix("_users"))
        if len(set(ids)) != len(ids):
            raise InvalidInput(f"settings.{side}: users are repeated", field=f"settings.{side}")
        known = set(
            scope.session.scalars(scope.select(User, User.id).where(User.id.in_(ids))).all()
        ) if ids else set()
        for index, user_id in enumerate(ids):
            if user_id not in known:
                field = f"settings.{side}[{index}]"
                raise InvalidInput(f"{field}: user {user_id} is not in the team", field=field)
    return settings


def settings_of(team: Team) -> TeamSettings:
    return msgspec.convert(team.settings or {}, TeamSettings)


def out(scope: TeamScope) -> TeamOut:
    team = scope.team
    rows = scope.session.scalars(scope.select(FieldDomain).order_by(FieldDomain.path)).all()
    return TeamOut(
        id=team.id,
        name=team.name,
        timezone=team.timezone,
        settings=settings_of(team),
        field_domains={r.path: list(r.values) for r in rows},
    )


def _audited_settings(team: Team) -> dict[str, Any]:
    """A team's settings as the audit log compares them: one key per setting."""
    values = msgspec.to_builtins(settings_of(team))
    return {"name": team.name, "timezone": team.timezone} | {
        f"settings.{key}": value for key, value in values.items()
    }


def _audit(scope: TeamScope, action: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Record the keys that changed between ``before`` and ``after``, if any did."""
    changed = audit.changed_keys(before, after)
    if changed:
        audit.record(
            scope,
            action,
            None,
            {key: before.get(key) for key in changed},
            {key: after.get(key) for key in changed},
        )


def update(scope: TeamScope, data: TeamUpdate) -> TeamOut:
    team = scope.team
    settings_before = _audited_settings(team)
    domains_before = (
        {r.path: list(r.values) for r in scope.session.scalars(scope.select(FieldDomain))}
        if data.field_domains is not UNSET
        else {}
    )
    if data.name is not UNSET:
        team.name = data.name
    if data.timezone is not UNSET:
        team.timezone = check_timezone(data.timezone)
    if data.settings is not UNSET:
        team.settings = msgspec.to_builtins(check_settings(scope, data.settings))
    _audit(scope, "team.settings", settings_before, _audited_settings(team))
    scope.forget_info()
    broken = []
    if data.field_domains is not UNSET:
        from server.core.services.workflows import check_all_groups

        before = {r.group: r.ok for r in check_all_groups(scope)}
        set_domains(scope, check_domains(data.field_domains))
        scope.session.flush()
        broken = [r.as_dict() for r in check_all_groups(scope) if not r.ok and before.get(r.group, True)]
        _audit(scope, "team.domains", domains_before, data.field_domains)
    commit(scope, unique_field="name")
    result = out(scope)
    result.group_checks = broken
    return result


def check_domain_change(scope: TeamScope, domains: dict[str, list[str]]) -> list[dict[str, Any]]:
    """What replacing the team's field domains with ``domains`` would break, without saving:
    the report of each exclusive group that passes now and would not (the ``group_checks``
    that :func:`update` answers after saving). Invalid paths or value lists are refused as
    :func:`update` refuses them."""
    from server.core.services.workflows import check_all_groups

    check_domains(domains)
    before = {r.group: r.ok for r in check_all_groups(scope)}
    stored = scope.__dict__.get("_domains")
    # The group checks read the team's domains through this per-scope cache.
    scope.__dict__["_domains"] = {path: list(values) for path, values in domains.items()}
    try:
        after = check_all_groups(scope)
    finally:
        scope.__dict__["_domains"] = stored
    return [r.as_dict() for r in after if not r.ok and before.get(r.group, True)]


def set_domains(scope: TeamScope, domains: dict[str, list[str]]) -> None:
    """Replace the team's field domains with ``domains``."""
    scope.session.execute(delete(FieldDomain).where(FieldDomain.team_id == scope.team_id))
    for path, values in domains.items():
        scope.add(FieldDomain(path=path, values=list(values)))
    scope.__dict__.pop("_domains", None)
    bump_rules(scope)


def find_team(session: Session, name_or_id: str) -> Team:
    """A team by name, or by id when given digits."""
    team = session.scalar(select(Team).where(Team.name == name_or_id))
    if team is None and name_or_id.isdigit():
        team = session.get(Team, int(name_or_id))
    if team is None:
        raise NotFound("team", name_or_id)
    return team


def create_team(
    session: Session,
    name: str,
    *,
    admin_email: str,
    admin_name: str = "Admin",
    timezone: str = "UTC",
    issue_key: bool = True,
) -> tuple[Team, User, str | None]:
    """A new team with its first admin user and, unless told not to, an API key for them
    (returned in plain, once)."""
    if not name.strip():
        raise InvalidInput("name: a team needs a name", field="name")
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise Conflict(f"name: a team named {name!r} already exists", field="name")
    team = Team(name=name, timezone=check_timezone(timezone), settings={})
    session.add(team)
    session.flush()
    user = User(
        team_id=team.id, name=admin_name, email=check_email(admin_email) or "", role="admin"
    )
    session.add(user)
    session.flush()
    key = create_key(session, user, name="initial admin key") if issue_key else None
    return team, user, key


def ensure_user(session: Session, team: Team, email: str, *, name: str | None, role: str) -> User:
    """The team's user with ``email``, created with ``role`` if there is none."""
    email = check_email(email) or ""
    user = session.scalar(select(User).where(User.team_id == team.id, User.email == email))
    if user is None:
        if role not in ("admin", "member"):
            raise InvalidInput(f"role: {role!r} is not admin or member", field="role")
        user = User(team_id=team.id, name=name or email.split("@")[0], email=email, role=role)
        session.add(user)
        session.flush()
    return user
