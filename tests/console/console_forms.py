"""The console's forms as a browser posts them: the CSRF token of a page, the sign-in."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(page: str) -> str:
    """The CSRF token in a page's first form."""
    match = TOKEN.search(page)
    assert match, page
    return match.group(1)


def sign_in(client: TestClient[Litestar], **fields: str) -> Any:
    """Post the sign-in form as a browser would (the form's token and cookie included)."""
    token = form_token(client.get("/console/sign-in").text)
    return client.post(
        "/console/sign-in", data={"csrf_token": token, **fields}, follow_redirects=False
    )
