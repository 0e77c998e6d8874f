"""What a route handler takes from a request, read once from its signature: the type of its JSON
body and the names of its query parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.params import BodyKwarg


@dataclass(frozen=True)
class Expected:
    """One handler's inputs, as :func:`expected` found them."""

    body: msgspec.json.Decoder[Any] | None
    """A strict decoder for the handler's ``data`` type, or None when it takes no JSON body."""
    query: frozenset[str] | None
    """The query parameters it declares (its dependencies' too), or None when it takes the
    whole query string (a ``query`` argument)."""


_FOUND: dict[tuple[HTTPRouteHandler, frozenset[str]], Expected] = {}
"""By handler and path parameter names (a handler may serve several paths); kept for the
handler's lifetime, which is the app's."""


def _body_decoder(handler: HTTPRouteHandler) -> msgspec.json.Decoder[Any] | None:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    kwarg = data.kwarg_definition
    if isinstance(kwarg, BodyKwarg) and kwarg.media_type != RequestEncodingType.JSON:
        return None
    try:
        # strict=True (msgspec's default for JSON, spelled out): a "12" for a number is an
        # error, while what JSON cannot say natively still decodes (ISO dates and times,
        # an integer for a float).
        return msgspec.json.Decoder(data.annotation, strict=True)
    except TypeError:
        # A type msgspec cannot decode by itself: Litestar's own parsing handles it.
        return None


def expected(handler: HTTPRouteHandler, path_params: dict[str, Any]) -> Expected:
    """What ``handler`` takes on the route whose path parameters are ``path_params``."""
    key = (handler, frozenset(path_params))
    found = _FOUND.get(key)
    if found is None:
        # Only the names of the path parameters matter: they are not query parameters.
        model = handler.create_kwargs_model(
            path_parameters=dict.fromkeys(path_params)  # type: ignore[arg-type]
        )
        query = (
            None
            if "query" in model.expected_reserved_kwargs
            else frozenset(p.field_alias for p in model.expected_query_params)
        )
        found = _FOUND[key] = Expected(_body_decoder(handler), query)
    return found
