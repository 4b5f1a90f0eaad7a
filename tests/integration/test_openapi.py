"""The published contract: the OpenAPI document and Swagger UI, served without a key."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import ApiClient, new_api_client
from wabacast.settings import Settings


@pytest.fixture(scope="module")
def module_anonymous(module_settings: Settings) -> ApiClient:
    return new_api_client()


@pytest.fixture(scope="module")
def schema(module_anonymous: ApiClient) -> dict[str, Any]:
    response = module_anonymous.get("/api/openapi.json")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document: dict[str, Any] = response.body
    return document


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/whatsapp/accounts", {"get", "post"}),
        ("/api/whatsapp/accounts/{account_id}", {"get", "put", "delete"}),
        ("/api/whatsapp/queue", {"get", "post"}),
        ("/api/whatsapp/queue/{queue_id}", {"get", "put", "delete"}),
        ("/api/whatsapp/contacts", {"get", "post"}),
        ("/api/whatsapp/contacts/{phone_number}", {"delete"}),
        ("/api/whatsapp/opt-outs", {"get", "post"}),
        ("/api/whatsapp/opt-outs/{phone_number}", {"delete"}),
        ("/api/admin/businesses", {"get", "post"}),
        ("/api/admin/businesses/{business_id}/keys", {"get", "post"}),
        ("/api/admin/businesses/{business_id}/keys/{key_id}", {"delete"}),
    ],
)
def test_schema_documents_every_route(schema: dict[str, Any], path: str, methods: set[str]) -> None:
    # GIVEN the OpenAPI document served without a key
    # WHEN a route is looked up
    operations = schema["paths"].get(path)

    # THEN it is documented with its methods
    assert operations is not None, sorted(schema["paths"])
    assert methods <= set(operations)


def test_schema_describes_the_error_envelope(schema: dict[str, Any]) -> None:
    # GIVEN the components
    schemas = schema["components"]["schemas"]

    # WHEN the error models are read
    envelope = schemas["ErrorResponse"]
    body = schemas["ErrorBody"]

    # THEN {"error": {"code", "message", "field", "details"}} is described
    assert envelope["properties"]["error"]["$ref"] == "#/components/schemas/ErrorBody"
    assert {"code", "message", "field", "details"} <= set(body["properties"])
    assert set(body["required"]) == {"code", "message"}


def test_write_routes_document_their_errors_with_the_envelope(schema: dict[str, Any]) -> None:
    # GIVEN the account creation operation
    responses = schema["paths"]["/api/whatsapp/accounts"]["post"]["responses"]

    # WHEN its error responses are read
    documented = {status for status in responses if status.startswith(("4", "5"))}

    # THEN 400, 401, 403, 409, 415 and 422 answer the ErrorResponse model
    assert {"400", "401", "403", "409", "415", "422"} <= documented
    for status in ("400", "401", "403", "409", "415", "422"):
        content = responses[status]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/ErrorResponse"}, status


def test_schema_declares_bearer_authentication(schema: dict[str, Any]) -> None:
    # GIVEN / WHEN the security declarations are read
    schemes = schema["components"]["securitySchemes"]

    # THEN every operation needs the bearer API key
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"].lower() == "bearer"
    assert schema["security"] == [{"bearerAuth": []}]


def test_credentials_are_write_only_in_the_schema(schema: dict[str, Any]) -> None:
    # GIVEN the account output model
    account_out = schema["components"]["schemas"]["AccountOut"]

    # WHEN its credentials property is read
    credentials = account_out["properties"]["credentials"]

    # THEN it is the summary, which has no secret fields
    assert credentials == {"$ref": "#/components/schemas/CredentialsSummary"}
    assert set(schema["components"]["schemas"]["CredentialsSummary"]["properties"]) == {"configured", "hint"}


def test_swagger_ui_is_served_without_a_key(module_anonymous: ApiClient) -> None:
    # GIVEN no API key
    # WHEN the docs page is requested
    response = module_anonymous.get("/api/docs")

    # THEN an HTML page loading Swagger UI
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html" in response.body.lower()
    assert "swagger" in response.body.lower()
