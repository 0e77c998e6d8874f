"""Leads: lifecycle stage with allowed transitions and history, score, owner and qualification."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import and_, func
from sqlalchemy.orm import object_session

from server.core.errors import InvalidInput
from server.core.models import Contact, Lead, LeadStageChange, User, utcnow
from server.core.models.lead import TRANSITIONS
from server.core.records import RecordType, register
from server.core.scope import TeamScope
from server.core.services.common import (
    Custom,
    fetch_page,
    flush,
    merge_custom,
    saved,
    set_fields,
)
from server.core.services.contacts import ContactOut
from server.core.services.contacts import out as contact_out
from server.core.services.qualification import (
    QualificationOut,
    contact_brief,
    rule_of,
    standing,
)
from server.core.services.upsert import convert, upsert

StageName = Literal["lead", "mql", "sal", "opportunity", "customer", "recycled"]
SideName = Literal["sales", "marketing"]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Score = Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class LeadIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new lead for a contact; it starts at ``lead`` unless another stage is given."""

    contact_id: int
    stage: StageName = "lead"
    score: Score = 0
    owner_id: int | None = None
    custom: Custom = {}
    external_id: ExternalId | None = None


class LeadPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial update. A stage change must be an allowed transition; ``recycled`` needs
    ``stage_reason``."""

    stage: StageName | UnsetType = UNSET
    stage_reason: Reason | UnsetType = UNSET
    score: Score | UnsetType = UNSET
    owner_id: int | None | UnsetType = UNSET
    assign_owner: SideName | UnsetType = UNSET
    """Give the lead to the next user of this side (``settings.sales_users`` or
    ``marketing_users``): the one with the fewest leads in that side's stages, ties in list
    order. Not together with ``owner_id``."""
    custom: Custom | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET


class LeadPut(msgspec.Struct, forbid_unknown_fields=True):
    """The create body for ``PUT /leads/external/{external_id}``: what it leaves out is the
    default when the lead is created and is kept when it is updated (a ``stage`` it gives
    must then be an allowed move)."""

    contact_id: int
    stage: StageName | UnsetType = UNSET
    score: Score | UnsetType = UNSET
    owner_id: int | None | UnsetType = UNSET
    custom: Custom | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET


class LeadOut(msgspec.Struct):
    """A lead as the API returns it."""

    id: int
    contact_id: int
    stage: str
    stage_changed_at: dt.datetime
    score: int
    owner_id: int | None
    custom: dict[str, str | int | float | bool | None]
    external_id: str | None
    created_by_id: int
    created_at: dt.datetime
    updated_at: dt.datetime


class StageChangeOut(msgspec.Struct):
    """One entry of a lead's stage history."""

    from_stage: str | None
    to_stage: str
    at: dt.datetime
    user_id: int | None
    reason: str | None


class PersonOut(msgspec.Struct):
    """The lead's owner as a workflow's document shows it."""

    id: int
    name: str
    email: str


class LeadDocument(LeadOut):
    """A lead as workflow conditions and templates see it (``record``): the API fields, its
    contact (as the API returns it), its owner and its standing against the qualification rule."""

    contact: ContactOut | None = None
    owner: PersonOut | None = None
    qualification: QualificationOut | None = None


def out(row: Lead) -> LeadOut:
    return LeadOut(
        id=row.id,
        contact_id=row.contact_id,
        stage=row.stage,
        stage_changed_at=row.stage_changed_at,
        score=row.score,
        owner_id=row.owner_id,
        custom=dict(row.custom or {}),
        external_id=row.external_id,
        created_by_id=row.created_by_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def document(row: Lead) -> LeadDocument:
    """The lead with its contact, owner and qualification standing, for workflows."""
    base = out(row)
    session = object_session(row)
    if session is None:
        return LeadDocument(**msgspec.structs.asdict(base))
    with session.no_autoflush:
        row_contact = session.get(Contact, row.contact_id)
        if row_contact is not None and row_contact.team_id != row.team_id:
            row_contact = None  # never another team's contact, whatever the id says
        user = session.get(User, row.owner_id) if row.owner_id is not None else None
        rule = rule_of(session, row.team_id)
    owner = PersonOut(id=user.id, name=user.name, email=user.email) if user else None
    brief = contact_brief(row_contact)
    found = standing(
        rule, msgspec.to_builtins(base), msgspec.to_builtins(brief) if brief else None
    )
    return LeadDocument(
        **msgspec.structs.asdict(base),
        contact=contact_out(row_contact) if row_contact is not None else None,
        owner=owner,
        qualification=found.out(),
    )


def qualifies(scope: TeamScope, lead: Lead | int) -> tuple[bool, list[str]]:
    """Whether ``lead`` meets the team's qualification rule, and the required fields it lacks."""
    row = scope.get(Lead, lead) if isinstance(lead, int) else lead
    contact = contact_brief(scope.session.get(Contact, row.contact_id))
    from server.core.services.teams import settings_of

    found = standing(
        settings_of(scope.team).rule(),
        msgspec.to_builtins(out(row)),
        msgspec.to_builtins(contact) if contact else None,
    )
    return found.qualified, found.missing_fields


def _record_stage(scope: TeamScope, row: Lead, old: str | None, reason: str | None) -> None:
    now = utcnow()
    row.stage_changed_at = now
    scope.add(
        LeadStageChange(
            lead_id=row.id,
            from_stage=old,
            to_stage=row.stage,
            at=now,
            # A signed webhook on the public route acts for no user (actor id 0).
            user_id=scope.actor.user_id or None,
            reason=reason,
        )
    )


def next_owner(scope: TeamScope, side: str, lead_id: int | None = None) -> int:
    """The user of ``side`` to give a lead to: the one holding the fewest leads in that side's
    stages (``settings.stage_owners``), ties in the order of ``settings.<side>_users``.

    Computed from the leads themselves, so there is no counter to keep: two hand-offs racing
    may pick the same user once, and the next hand-off evens it out."""
    from server.core.services.teams import settings_of

    settings = settings_of(scope.team)
    users = settings.side_users(side)
    if not users:
        raise InvalidInput(
            f"assign_owner: the team has no {side} users; an admin lists them in "
            f"settings.{side}_users",
            field="assign_owner",
        )
    stages = [stage for stage, owner in settings.stage_owners.items() if owner == side]
    held = and_(Lead.owner_id.in_(users), Lead.stage.in_(stages))
    if lead_id is not None:
        held = and_(held, Lead.id != lead_id)
    counts = dict(
        scope.session.execute(
            scope.select(Lead, Lead.owner_id, func.count()).where(held).group_by(Lead.owner_id)
        ).all()
    )
    return min(users, key=lambda user: (counts.get(user, 0), users.index(user)))


def create(scope: TeamScope, data: LeadIn) -> LeadOut:
    scope.get(Contact, data.contact_id, field="contact_id")
    if data.owner_id is not None:
        scope.get(User, data.owner_id, field="owner_id")
    row = Lead(
        contact_id=data.contact_id,
        stage=data.stage,
        stage_changed_at=utcnow(),
        score=data.score,
        owner_id=data.owner_id,
        custom=merge_custom(scope, "lead", {}, data.custom),
        external_id=data.external_id,
        created_by_id=scope.actor.user_id,
    )
    scope.add(row)
    flush(scope, unique_field="external_id")
    _record_stage(scope, row, None, None)
    saved(scope, "lead", row, None, "created", unique_field="external_id")
    return out(row)


def get(scope: TeamScope, lead_id: int) -> LeadOut:
    return out(scope.get(Lead, lead_id))


def check_transition(old: str, new: str, reason: str | None) -> None:
    """Refuse a stage change the lifecycle does not allow, naming the pair."""
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(TRANSITIONS[old]) or "none"
        raise InvalidInput(
            f"stage: a lead cannot move from {old} to {new} (from {old}: {allowed})", field="stage"
        )
    if new == "recycled" and not reason:
        raise InvalidInput(
            "stage_reason: recycling a lead back to marketing needs a reason", field="stage_reason"
        )


def update(scope: TeamScope, lead_id: int, patch: LeadPatch) -> LeadOut:
    row = scope.get(Lead, lead_id)
    previous = RECORD.document(row)
    apply(scope, row, patch)
    saved(scope, "lead", row, previous, "updated", unique_field="external_id")
    return out(row)


def put(scope: TeamScope, external_id: str, data: LeadPut) -> tuple[LeadOut, bool]:
    """Create the lead with this external id (True) or update the team's one (False)."""
    return upsert(
        scope,
        Lead,
        external_id,
        data,
        create=lambda fields: create(scope, convert(fields, LeadIn)),
        update=lambda lead_id, fields: _update_put(scope, lead_id, fields),
    )


def _update_put(scope: TeamScope, lead_id: int, fields: dict[str, object]) -> LeadOut:
    # A lead belongs to one contact for good (a PATCH cannot move it either): the body's
    # contact_id, required to create, must be the lead's own when it updates.
    contact_id = fields.pop("contact_id")
    current = scope.get(Lead, lead_id).contact_id
    if contact_id != current:
        raise InvalidInput(
            f"contact_id: lead {lead_id} belongs to contact {current}, and a lead's contact "
            f"cannot change; send {current} or create a new lead under another external id",
            field="contact_id",
        )
    return update(scope, lead_id, convert(fields, LeadPatch))


def apply(scope: TeamScope, row: Lead, patch: LeadPatch) -> list[str]:
    """Check and apply a partial change (a stage move included) without committing."""
    if patch.assign_owner is not UNSET:
        if patch.owner_id is not UNSET:
            raise InvalidInput(
                "assign_owner: give owner_id or assign_owner, not both", field="assign_owner"
            )
        patch.owner_id = next_owner(scope, patch.assign_owner, row.id)
    if patch.owner_id not in (UNSET, None):
        scope.get(User, patch.owner_id, field="owner_id")
    reason = patch.stage_reason if patch.stage_reason is not UNSET else None
    old_stage = row.stage
    if patch.stage is not UNSET and patch.stage != old_stage:
        check_transition(old_stage, patch.stage, reason)
    elif reason is not None:
        raise InvalidInput("stage_reason: given without a stage change", field="stage_reason")
    changed = []
    if patch.custom is not UNSET:
        custom = merge_custom(scope, "lead", row.custom, patch.custom)
        if custom != row.custom:
            row.custom = custom
            changed.append("custom")
    changed += set_fields(row, patch, skip=("custom", "stage_reason", "assign_owner"))
    if row.stage != old_stage:
        _record_stage(scope, row, old_stage, reason)
    return changed


def history(scope: TeamScope, lead_id: int) -> list[StageChangeOut]:
    scope.get(Lead, lead_id)
    rows = scope.session.scalars(
        scope.select(LeadStageChange)
        .where(LeadStageChange.lead_id == lead_id)
        .order_by(LeadStageChange.id)
    ).all()
    return [
        StageChangeOut(
            from_stage=r.from_stage,
            to_stage=r.to_stage,
            at=r.at,
            user_id=r.user_id,
            reason=r.reason,
        )
        for r in rows
    ]


def delete(scope: TeamScope, lead_id: int) -> None:
    row = scope.get(Lead, lead_id)
    previous = RECORD.document(row)
    scope.session.delete(row)
    saved(scope, "lead", row, previous, "deleted")


def list_(
    scope: TeamScope,
    *,
    limit: int,
    cursor: str | None = None,
    stage: str | None = None,
    owner_id: int | None = None,
    contact_id: int | None = None,
    min_score: int | None = None,
    external_id: str | None = None,
) -> tuple[list[LeadOut], str | None]:
    stmt = scope.select(Lead)
    for column, value in (
        (Lead.external_id, external_id),
        (Lead.stage, stage),
        (Lead.owner_id, owner_id),
        (Lead.contact_id, contact_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if min_score is not None:
        stmt = stmt.where(Lead.score >= min_score)
    rows, next_cursor = fetch_page(scope, stmt, Lead, limit, cursor)
    return [out(r) for r in rows], next_cursor


RECORD = register(RecordType("lead", Lead, document, LeadPatch, apply))
