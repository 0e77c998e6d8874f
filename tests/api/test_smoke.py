"""A deal created through the API on both backends."""


def test_create_deal(api) -> None:
    resp = api.post("/api/v1/deals", json={"title": "Website", "amount": 1000, "probability": 30})
    assert resp.status_code == 201, resp.text
    assert resp.json()["weighted_amount"] == 300.0
