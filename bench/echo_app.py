"""The baseline: a bare Litestar endpoint that parses a JSON body and returns it."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, post


@post("/echo", sync_to_thread=False)
def echo(data: dict[str, Any]) -> dict[str, Any]:
    return data


app = Litestar([echo])
