"""A deal's contact in the context document: read once per event, only when a workflow that can
run names it, only the team's own, and carried into ``previous`` and the follow-up events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy import event as sa_event

from server.core.models import Deal, Event
from server.core.related import names_contact


def workflow(key: str, condition: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": key,
        "name": key,
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "condition": condition,
        "actions": [{"type": "field_update", "set": {f"custom.{key.replace('-', '_')}": True}}],
        **fields,
    }


def post(client: TestClient[Litestar], path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(path, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def contact(client: TestClient[Litestar], **fields: Any) -> dict[str, Any]:
    body = {"name": "Bill Lumbergh", "email": "bill@initech.test", "company": "Initech", **fields}
    return post(client, "/api/v1/contacts", body)


def event_records(engine: Engine, deal_id: int) -> list[tuple[Any, Any]]:
    """(record, previous) of each event of the deal, oldest first, as stored."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Event.record, Event.previous)
            .where(Event.entity == "deal", Event.record_id == deal_id)
            .order_by(Event.id)
        )
        return [tuple(row) for row in rows]


@contextmanager
def contact_reads(engine: Engine) -> Iterator[list[str]]:
    """The statements that read the contacts table while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "contacts" in statement:
            seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


def test_a_condition_on_the_contacts_company_matches_on_creation_and_update(api) -> None:
    # Given a workflow whose condition reads the deal's contact, and one on its previous contact
    post(api, "/api/v1/workflows", workflow("initech", "record.contact.company == 'Initech'"))
    post(
        api,
        "/api/v1/workflows",
        workflow(
            "still-initech",
            "previous.contact.company == 'Initech' && record.contact.email == 'bill@initech.test'",
            trigger={"type": "record_saved", "on": ["updated"], "fields": ["title"]},
        ),
    )
    bill = contact(api)
    # When a deal with that contact is created, and one without a contact
    deal = post(api, "/api/v1/deals", {"title": "TPS portal", "contact_id": bill["id"]})
    alone = post(api, "/api/v1/deals", {"title": "No contact"})
    # Then the first matched, the second did not (its record.contact is null)
    assert deal["custom"] == {"initech": True}
    assert alone["custom"] == {}
    # When the first is renamed, previous.contact is there too
    resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"title": "TPS portal v2"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["custom"] == {"initech": True, "still_initech": True}


def test_the_event_carries_the_contacts_api_document_and_changed_does_not_list_it(
    api, engine: Engine
) -> None:
    # Given a workflow that names record.contact in a template-free field update
    post(api, "/api/v1/workflows", workflow("named", "record.contact != null"))
    bill = contact(api, phone="+1 555 0100", custom={"tier": "gold"})
    # When a deal with the contact is created (and the workflow's change follows it)
    deal = post(api, "/api/v1/deals", {"title": "TPS portal", "contact_id": bill["id"]})
    # Then each event's record holds the contact as the API returns it
    (first, _), (second, previous) = event_records(engine, deal["id"])
    assert first["contact"] == api.get(f"/api/v1/contacts/{bill['id']}").json()
    assert second["contact"] == first["contact"] == previous["contact"]
    # and the follow-up's changed fields are the workflow's, not the contact
    runs = api.get("/api/v1/runs", params={"entity": "deal", "record_id": deal["id"]}).json()
    assert [r["changed"] for r in runs["items"] if r["depth"] == 1] == [["custom.named"]]


def test_a_workflow_that_does_not_name_the_contact_does_not_read_it(api, engine: Engine) -> None:
    # Given a workflow reading only record.contact_id, and a deal with a contact
    post(api, "/api/v1/workflows", workflow("has-contact", "record.contact_id != null"))
    bill = contact(api)
    deal = post(api, "/api/v1/deals", {"title": "TPS portal", "contact_id": bill["id"]})
    # When the deal is updated
    with contact_reads(engine) as reads:
        resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"title": "Renamed"})
    # Then the contact was not read and no event's document has a contact
    assert resp.status_code == 200, resp.text
    assert resp.json()["custom"] == {"has_contact": True}
    assert reads == []
    for record, previous in event_records(engine, deal["id"]):
        assert "contact" not in record and "contact" not in (previous or {})


def test_a_workflow_that_names_the_contact_reads_it_once_per_event(api, engine: Engine) -> None:
    # Given two workflows on the contact's company, and a deal with a contact
    for key in ("a", "b"):
        post(api, "/api/v1/workflows", workflow(key, "record.contact.company == 'Initech'",
                                                 trigger={"type": "record_saved",
                                                          "on": ["updated"]}))
    bill = contact(api)
    deal = post(api, "/api/v1/deals", {"title": "TPS portal", "contact_id": bill["id"]})
    # When the deal is updated (both match; their change is a follow-up event)
    with contact_reads(engine) as reads:
        resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"title": "Renamed"})
    # Then the contact was read once, for record and previous and the follow-up alike
    assert resp.json()["custom"] == {"a": True, "b": True}
    assert len(reads) == 1


def test_another_teams_contact_is_never_loaded(api, make_team, client, engine: Engine) -> None:
    # Given another team's contact, and a deal of ours whose row names it (a bad row)
    post(api, "/api/v1/workflows", workflow("named", "record.contact == null"))
    theirs = make_team("Globex")
    ours = dict(client.headers)
    client.headers.update(theirs.headers)
    hank = contact(client, name="Hank Scorpio", company="Globex")
    client.headers.clear()
    client.headers.update(ours)
    deal = post(api, "/api/v1/deals", {"title": "TPS portal"})
    with engine.begin() as conn:
        conn.execute(update(Deal).where(Deal.id == deal["id"]).values(contact_id=hank["id"]))
    # When the deal is saved
    resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"title": "Renamed"})
    # Then its document's contact is null, and the other team's contact is nowhere
    assert resp.status_code == 200, resp.text
    record, previous = event_records(engine, deal["id"])[-1]
    assert record["contact_id"] == hank["id"]
    assert record["contact"] is None and previous["contact"] is None
    assert resp.json()["custom"] == {"named": True}
    assert not any("Globex" in str(row) for row in event_records(engine, deal["id"]))


def test_a_leads_record_has_its_contacts_api_document(api) -> None:
    # Given a lead workflow on the contact's company and external id
    post(
        api,
        "/api/v1/workflows",
        {
            "id": "initech-lead",
            "name": "initech-lead",
            "entity": "lead",
            "trigger": {"type": "record_saved"},
            "condition": (
                "record.contact.company == 'Initech' && record.contact.external_id == 'c-1'"
            ),
            "actions": [{"type": "field_update", "set": {"custom.initech": True}}],
        },
    )
    bill = contact(api, external_id="c-1")
    # When a lead of the contact is created
    lead = post(api, "/api/v1/leads", {"contact_id": bill["id"]})
    # Then the workflow matched
    assert lead["custom"] == {"initech": True}


@pytest.mark.parametrize(
    ("condition", "actions", "names"),
    [
        ("record.contact.company == 'Initech'", [], True),
        ("record.\"contact\".company", [], True),
        (None, [{"type": "field_update", "set_from": {"custom.c": "record.contact.name"}}], True),
        (None, [{"type": "email", "to": "a@b.test", "subject": "{{ record['contact'] }}"}], True),
        (None, [{"type": "erp_export", "projection": "record.{c: contact}"}], True),
        ("previous.contact.email != record.contact.email", [], True),
        ("record.contact_id != null", [], False),
        (None, [{"type": "field_update", "set_from": {"custom.n": "length(record.contacts)"}}],
         False),
        ("record.amount > `5`", [{"type": "contact_sync", "set": {"custom.x": 1}}], False),
    ],
)
def test_which_workflows_name_the_contact(
    condition: str | None, actions: list[dict[str, Any]], names: bool
) -> None:
    assert names_contact({"condition": condition, "actions": actions}) is names
