"""Each trigger through real saves over the HTTP API, observed in the run log."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient


def listen(client: TestClient[Litestar], key: str, entity: str, trigger: dict[str, Any]) -> None:
    """Save a workflow that flags the record (``custom.<key>``) whenever ``trigger`` fires."""
    flag = "custom." + key.replace("-", "_")
    document = {
        "id": key,
        "name": key,
        "entity": entity,
        "trigger": trigger,
        "actions": [{"type": "field_update", "set": {flag: True}}],
    }
    resp = client.post("/api/v1/workflows", json=document)
    assert resp.status_code == 201, resp.text


def fired(client: TestClient[Litestar], key: str) -> list[tuple[str, int]]:
    """(op, record id) of each save made through the API on which workflow ``key`` matched."""
    resp = client.get("/api/v1/runs", params={"workflow": key})
    assert resp.status_code == 200, resp.text
    return [(r["op"], r["record_id"]) for r in resp.json()["items"] if r["source"] == "api"]


def post(client: TestClient[Litestar], url: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(url, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def patch(client: TestClient[Litestar], url: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.patch(url, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def new_lead(client: TestClient[Litestar], **fields: Any) -> dict[str, Any]:
    contact = post(client, "/api/v1/contacts", {"name": "Milton Waddams"})
    return post(client, "/api/v1/leads", {"contact_id": contact["id"], **fields})


def test_record_saved_fires_on_the_chosen_operations_and_fields(api) -> None:
    # Given one workflow per operation, and one for amount changes only
    listen(api, "on-created", "deal", {"type": "record_saved", "on": ["created"]})
    listen(api, "on-updated", "deal", {"type": "record_saved", "on": ["updated"]})
    listen(api, "on-deleted", "deal", {"type": "record_saved", "on": ["deleted"]})
    listen(
        api, "on-amount", "deal", {"type": "record_saved", "on": ["updated"], "fields": ["amount"]}
    )

    # When a deal is created, renamed, given a new amount, and deleted
    deal = post(api, "/api/v1/deals", {"title": "Initech", "amount": 100})
    url = f"/api/v1/deals/{deal['id']}"
    patch(api, url, {"title": "Initech TPS"})
    patch(api, url, {"amount": 250})
    assert api.delete(url).status_code == 204

    # Then each fired on its own operations only
    d = deal["id"]
    assert deal["custom"]["on_created"] is True  # the creation's response shows the action
    assert fired(api, "on-created") == [("created", d)]
    assert fired(api, "on-updated") == [("updated", d), ("updated", d)]
    assert fired(api, "on-amount") == [("updated", d)]
    assert fired(api, "on-deleted") == [("deleted", d)]


def test_stage_changed_follows_deal_stages_and_lead_lifecycle_stages(api) -> None:
    # Given stage workflows on deals and on leads
    listen(api, "deal-to-proposal", "deal", {"type": "stage_changed", "to": "proposal"})
    listen(
        api,
        "deal-proposal-to-negotiation",
        "deal",
        {"type": "stage_changed", "from": "proposal", "to": "negotiation"},
    )
    listen(api, "lead-to-mql", "lead", {"type": "stage_changed", "to": "mql"})
    listen(
        api,
        "lead-recycled",
        "lead",
        {"type": "stage_changed", "from": ["sal", "opportunity"], "to": "recycled"},
    )

    # When a deal is created in proposal, moves to negotiation, back, and forward again
    deal = post(api, "/api/v1/deals", {"title": "Initech", "stage": "proposal"})
    url = f"/api/v1/deals/{deal['id']}"
    for stage in ("negotiation", "proposal", "negotiation"):
        patch(api, url, {"stage": stage})
    patch(api, url, {"title": "Initech TPS"})  # not a stage change
    # and a lead goes lead → mql → sal → recycled
    lead = new_lead(api)
    lead_url = f"/api/v1/leads/{lead['id']}"
    for step in ({"stage": "mql"}, {"stage": "sal"}):
        patch(api, lead_url, step)
    recycled = patch(api, lead_url, {"stage": "recycled", "stage_reason": "no budget yet"})

    # Then each fired exactly on the moves its from/to accept
    d, le = deal["id"], lead["id"]
    assert deal["custom"] == {"deal_to_proposal": True}
    assert fired(api, "deal-to-proposal") == [("created", d), ("updated", d)]
    assert fired(api, "deal-proposal-to-negotiation") == [("updated", d), ("updated", d)]
    assert fired(api, "lead-to-mql") == [("updated", le)]
    assert fired(api, "lead-recycled") == [("updated", le)]
    assert recycled["custom"] == {"lead_to_mql": True, "lead_recycled": True}


def test_score_threshold_fires_once_per_crossing(api) -> None:
    # Given a hand-over at 50 points upward, and a warning when the score falls below 50
    listen(api, "score-up", "lead", {"type": "score_threshold", "threshold": 50})
    listen(
        api,
        "score-down",
        "lead",
        {"type": "score_threshold", "field": "score", "threshold": 50, "direction": "down"},
    )
    lead = new_lead(api, score=10)
    url = f"/api/v1/leads/{lead['id']}"
    seen = []

    # When the score goes 10 → 60 → 70 → 40 → 80
    for score in (60, 70, 40, 80):
        patch(api, url, {"score": score})
        seen.append((score, len(fired(api, "score-up")), len(fired(api, "score-down"))))

    # Then upward it fired on 60 and 80 only (not again at 70), downward on 40 only
    assert seen == [(60, 1, 0), (70, 1, 0), (40, 1, 1), (80, 2, 1)]


def test_lead_acquired_fires_for_new_deals_with_their_own_or_their_contacts_source(api) -> None:
    # Given a lead-acquisition workflow and an outreach effort that found a contact
    listen(api, "acquired", "deal", {"type": "lead_acquired"})
    outreach = post(api, "/api/v1/outreach", {"type": "call", "phone": "+1 555 0100"})
    sourced_contact = post(
        api, "/api/v1/contacts", {"name": "Peter Gibbons", "outreach_id": outreach["id"]}
    )
    plain_contact = post(api, "/api/v1/contacts", {"name": "Samir Nagheenanajar"})

    # When deals are created with a source, through the contact's source, and with none
    own = post(api, "/api/v1/deals", {"title": "Own source", "outreach_id": outreach["id"]})
    inherited = post(
        api, "/api/v1/deals", {"title": "Inherited", "contact_id": sourced_contact["id"]}
    )
    none = post(api, "/api/v1/deals", {"title": "No source", "contact_id": plain_contact["id"]})
    # and the first one is updated later
    patch(api, f"/api/v1/deals/{own['id']}", {"title": "Own source, renamed"})

    # Then only the two sourced creations fired
    assert inherited["outreach_id"] == outreach["id"]
    assert own["custom"] == inherited["custom"] == {"acquired": True}
    assert none["custom"] == {}
    assert fired(api, "acquired") == [("created", own["id"]), ("created", inherited["id"])]
