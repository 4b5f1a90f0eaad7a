"""The local stack end to end: a real process, real HTTP, the real handlers, moto as AWS."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e

ACCOUNT = {"displayName": "Main", "phoneNumber": "+14155552671", "provider": "sandbox"}
QUEUE = {
    "name": "Welcome",
    "template": {"name": "welcome", "language": "en_US"},
    "audience": {"recipients": [{"phoneNumber": "+14155552672"}]},
}


def test_state_file_describes_the_running_stack(local_stack):
    # GIVEN / WHEN the stack has started
    # THEN local.json has what tools need to reach it
    assert local_stack.api_url.startswith("http://localhost:")
    assert local_stack.state["docsUrl"] == f"{local_stack.api_url}/api/docs"
    assert local_stack.state["consoleUrl"] == f"{local_stack.api_url}/"
    assert local_stack.admin_api_key
    assert local_stack.api_key
    assert local_stack.admin_api_key != local_stack.api_key


def test_api_description_is_served_without_a_key(anonymous):
    # GIVEN no API key
    # WHEN the OpenAPI document is requested
    response = anonymous.get("/api/openapi.json")

    # THEN it is served
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_request_without_a_key_is_refused_by_the_gateway(anonymous):
    # GIVEN no Authorization header
    # WHEN a business route is called
    response = anonymous.get("/api/whatsapp/accounts")

    # THEN API Gateway answers 401 before any function runs
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_unknown_key_gets_the_api_error_format(anonymous):
    # GIVEN a key that was never issued
    # WHEN a business route is called with it
    response = anonymous.get("/api/whatsapp/accounts", headers={"Authorization": "Bearer wbk_not-a-real-key"})

    # THEN the API answers 401 in its own error format
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"]
    assert error["message"]


def test_the_root_serves_the_console_and_unknown_paths_are_not_found(anonymous):
    # GIVEN / WHEN the root, a path outside /api that is no console file, and an unknown API path are requested
    console = anonymous.get("/")
    missing = anonymous.get("/no-such-page")
    unknown_api = anonymous.post("/api")

    # THEN the console's page is served without a key, and the others are 404
    assert console.status_code == 200
    assert "<title>wabacast console</title>" in console.text
    assert missing.status_code == 404
    assert unknown_api.status_code == 404
    assert unknown_api.json() == {"message": "Not Found"}


def test_business_creates_and_lists_accounts(demo_business):
    # GIVEN the demo business key
    # WHEN it creates a sandbox account
    created = demo_business.post("/api/whatsapp/accounts", json=ACCOUNT)

    # THEN the account is created and listed
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["displayName"] == "Main"
    assert account["phoneNumber"] == "+14155552671"
    assert account["provider"] == "sandbox"

    listed = demo_business.get("/api/whatsapp/accounts")
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["nextToken"] is None
    assert account["id"] in [item["id"] for item in page["items"]]


def test_business_creates_and_lists_queues(demo_business):
    # GIVEN the demo business key, and an account to send from (a queue uses the default account, else the primary;
    # its own phone number, so that this test does not depend on the account test)
    sender = demo_business.post("/api/whatsapp/accounts", json={**ACCOUNT, "phoneNumber": "+14155552680"})
    assert sender.status_code == 201, sender.text

    # WHEN it creates a queue
    created = demo_business.post("/api/whatsapp/queue", json=QUEUE)

    # THEN the queue starts as a draft and is listed
    assert created.status_code == 201, created.text
    queue = created.json()
    assert queue["status"] == "DRAFT"
    assert queue["name"] == "Welcome"

    listed = demo_business.get("/api/whatsapp/queue")
    assert listed.status_code == 200, listed.text
    assert queue["id"] in [item["id"] for item in listed.json()["items"]]


def test_businesses_cannot_see_each_other(local_stack, admin, demo_business):
    # GIVEN an account of the demo business, and a second business created through the admin API
    # (a phone number belongs to one WhatsApp account only, so this one differs from ACCOUNT's)
    account = demo_business.post(
        "/api/whatsapp/accounts", json={**ACCOUNT, "displayName": "Private", "phoneNumber": "+14155552699"}
    )
    assert account.status_code == 201, account.text
    account_id = account.json()["id"]
    second = admin.post("/api/admin/businesses", json={"name": f"Second {uuid.uuid4().hex[:8]}", "timezone": "UTC"})
    assert second.status_code == 201, second.text

    with httpx.Client(
        base_url=local_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {second.json()['apiKey']}"}
    ) as other_business:
        # WHEN the second business reads the first one's account, and lists its own
        fetched = other_business.get(f"/api/whatsapp/accounts/{account_id}")
        listed = other_business.get("/api/whatsapp/accounts")

    # THEN it cannot see it, and has none of its own
    assert fetched.status_code == 404, fetched.text
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


def test_business_key_cannot_use_admin_routes(demo_business):
    # GIVEN a business key
    # WHEN it calls an admin route
    response = demo_business.post("/api/admin/businesses", json={"name": "Sneaky", "timezone": "UTC"})

    # THEN it is refused in the API's error format
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"]
