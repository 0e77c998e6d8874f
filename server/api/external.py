"""What the upsert-by-external-id endpoints share: path parameter, list filter, answer."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from litestar import Request, Response
from litestar.openapi import ResponseSpec
from litestar.params import PathParameter, QueryParameter

from server.core.errors import InvalidInput

T = TypeVar("T")

ExternalIdPath = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=200,
        description="The record's id in the system it comes from (1–200 characters; "
        "percent-encode reserved characters, and a `/` cannot be used).",
    ),
]

ExternalIdFilter = Annotated[
    str | None,
    QueryParameter(
        min_length=1, max_length=200, description="Only the record with this external id."
    ),
]


def created_spec(out: type[Any]) -> dict[int, ResponseSpec]:
    """The OpenAPI answer of an upsert that created the record (200 is the handler's own)."""
    return {
        201: ResponseSpec(
            data_container=out,
            description="Created: no record of the team had this external id. "
            "`Location` is the record's URL.",
        )
    }


def upserted(
    request: Request[Any, Any, Any], record: T, created: bool, read: str, **path: Any
) -> Response[Any]:
    """201 with the record's ``Location`` when it was created, 200 when it was updated.

    An ``ingest`` key gets only the record's ``id`` and ``external_id``: it may write records,
    not read them, and the whole record of an existing external id would be a read."""
    body: Any = record
    if getattr(request.user, "scope", None) == "ingest":
        body = {"id": getattr(record, "id"), "external_id": getattr(record, "external_id")}
    if not created:
        return Response(body, status_code=200)
    location = request.app.route_reverse(read, **path)
    return Response(body, status_code=201, headers={"Location": location})


def missing_external_id() -> InvalidInput:
    """What ``PUT …/external/`` (an empty external id) answers instead of a bare 404."""
    return InvalidInput(
        "external_id: the path needs the record's external id (1–200 characters) "
        "after /external/",
        field="external_id",
    )
