"""Small assertions the API tests share."""

from __future__ import annotations

import datetime as dt
from typing import Any


def at(value: str) -> dt.datetime:
    """An ISO 8601 timestamp as an aware datetime."""
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value!r} has no offset"
    return parsed


def assert_problem(resp: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """A problem-details answer with this status, naming ``field`` when given; its body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status
    if field is not None:
        assert body["field"] == field, body
        assert body["errors"][0]["field"] == field, body
    return body
