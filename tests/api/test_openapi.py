"""The OpenAPI document and the docs page: public, complete, and true to what the API accepts."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from server.core.services.communications import CommunicationIn, CommunicationPatch
from server.core.services.contacts import ContactIn, ContactPatch
from server.core.services.deals import DealIn, DealPatch
from server.core.services.leads import LeadIn, LeadPatch
from server.core.services.outreach import OutreachIn, OutreachPatch
from server.core.services.teams import TeamUpdate

RESOURCES = {
    "/api/v1/outreach": {"get", "post"},
    "/api/v1/outreach/{outreach_id}": {"get", "patch", "delete"},
    "/api/v1/contacts": {"get", "post"},
    "/api/v1/contacts/{contact_id}": {"get", "patch", "delete"},
    "/api/v1/contacts/{contact_id}/communications": {"get", "post"},
    "/api/v1/contacts/{contact_id}/communications/{communication_id}": {"get", "patch", "delete"},
    "/api/v1/deals": {"get", "post"},
    "/api/v1/deals/{deal_id}": {"get", "patch", "delete"},
    "/api/v1/leads": {"get", "post"},
    "/api/v1/leads/{lead_id}": {"get", "patch", "delete"},
    "/api/v1/leads/{lead_id}/history": {"get"},
    "/api/v1/team": {"get", "put"},
}

# Each write operation and the struct the server decodes its body into.
BODIES = {
    ("/api/v1/outreach", "post"): OutreachIn,
    ("/api/v1/outreach/{outreach_id}", "patch"): OutreachPatch,
    ("/api/v1/contacts", "post"): ContactIn,
    ("/api/v1/contacts/{contact_id}", "patch"): ContactPatch,
    ("/api/v1/contacts/{contact_id}/communications", "post"): CommunicationIn,
    (
        "/api/v1/contacts/{contact_id}/communications/{communication_id}",
        "patch",
    ): CommunicationPatch,
    ("/api/v1/deals", "post"): DealIn,
    ("/api/v1/deals/{deal_id}", "patch"): DealPatch,
    ("/api/v1/leads", "post"): LeadIn,
    ("/api/v1/leads/{lead_id}", "patch"): LeadPatch,
    ("/api/v1/team", "put"): TeamUpdate,
}


@pytest.fixture
def doc(client) -> dict[str, Any]:
    resp = client.get("/schema/openapi.json")
    assert resp.status_code == 200, resp.text
    return resp.json()


def body_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation = doc["paths"][path][method]
    assert operation["requestBody"]["required"] is True
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_openapi_document_is_public(client) -> None:
    resp = client.get("/schema/openapi.json")
    assert resp.status_code == 200
    assert "json" in resp.headers["content-type"]
    assert "authorization" not in {k.lower() for k in resp.request.headers}


def test_openapi_version_is_3_1(doc) -> None:
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] == "Dealflow"


def test_every_resource_and_method_is_documented(doc) -> None:
    documented = {
        path: {m for m in ops if m in {"get", "post", "put", "patch", "delete"}}
        for path, ops in doc["paths"].items()
    }
    for path, methods in RESOURCES.items():
        assert path in documented, path
        assert documented[path] == methods, path


def test_health_check_is_not_documented(doc) -> None:
    assert "/healthz" not in doc["paths"]


def test_bearer_security_scheme_is_declared(doc) -> None:
    schemes = doc["components"]["securitySchemes"]
    bearer = [
        name for name, s in schemes.items() if s["type"] == "http" and s["scheme"] == "bearer"
    ]
    assert bearer


def test_every_api_operation_requires_the_bearer_scheme(doc) -> None:
    schemes = doc["components"]["securitySchemes"]
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in ops.items():
            names = {name for requirement in operation["security"] for name in requirement}
            assert names, (path, method)
            assert all(schemes[n]["scheme"] == "bearer" for n in names), (path, method)


def test_deal_in_requires_title(doc) -> None:
    schema = body_schema(doc, "/api/v1/deals", "post")
    assert schema["required"] == ["title"]
    assert schema["properties"]["title"]["minLength"] == 1


@pytest.mark.parametrize(("path", "method"), list(BODIES), ids=lambda v: str(v))
def test_request_body_schema_documents_every_field_and_requirement(
    doc, path: str, method: str
) -> None:
    # Given: the struct the server decodes this body into
    struct = BODIES[(path, method)]
    fields = msgspec.structs.fields(struct)
    # When
    schema = body_schema(doc, path, method)
    # Then: every field it accepts is documented, and every field it needs is marked required
    assert set(schema["properties"]) == {f.encode_name for f in fields}
    assert set(schema.get("required", [])) == {f.encode_name for f in fields if f.required}


def test_docs_page_is_html(client) -> None:
    resp = client.get("/schema")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "<html" in resp.text.lower()
    assert "Dealflow" in resp.text
