"""The list response shape and the paging parameters every list endpoint takes."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Items per page (1–200).")]
Cursor = Annotated[
    str | None,
    QueryParameter(description="The `next_cursor` of the previous page; omit for the first."),
]


IdFilter = Annotated[
    int | None, QueryParameter(ge=1, le=2**63 - 1, description="Only records referencing this id.")
]
"""An id to filter by; out-of-range ids are refused like any invalid parameter."""


class Page(msgspec.Struct, Generic[T]):
    """One page of a list, in id order. ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None


def page(items: list[T], next_cursor: str | None) -> Page[T]:
    return Page(items=items, next_cursor=next_cursor)
