"""The OpenAPI contract, checked by a generic client: every operation the running local stack describes at
/api/openapi.json is driven by schemathesis with generated requests (valid and invalid ones), and every answer must
be documented: no 5xx, a documented status, a documented content type, a body matching the documented schema.
It runs as a business of its own (created through the admin API), so the demo business other tests use is untouched.

`schemathesis.pytest.from_fixture` breaks on pytest 9.2 and `@schema.parametrize()` needs the schema at collection
time, before the session's stack runs; so one test walks the operations itself, one subtest each.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import RunningLocalStack

pytestmark = pytest.mark.e2e

# Bounded and deterministic: the same requests on every run; 12 per operation, about 20 s for the whole schema.
EXAMPLES_PER_OPERATION = 12
CONTRACT_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: a failure already comes with the request that caused it (as a curl command).
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

ERROR_RESPONSE = {"$ref": "#/components/schemas/ErrorResponse"}

# The other e2e tests register accounts with numbers of this block (+14155552671 is also the schema's example,
# so schemathesis sends it); a phone number belongs to one business only, so this test keeps out of it.
OTHER_TESTS_NUMBERS = re.compile(r"^\+?1415555")
# Numbers of this test's own business (phonenumbers accepts them as valid US numbers).
SEEDED_ACCOUNT_NUMBER = "+12025550123"
GENERATED_ACCOUNT_NUMBER = "+12025550187"
RECIPIENT_NUMBER = "+12025550150"
CONTACT_NUMBER = "+12025550160"
OPTED_OUT_NUMBER = "+12025550170"


@dataclass(frozen=True)
class ContractTenant:
    """A business of this test's own, with one of each resource, so that generated requests also reach real data."""

    api_key: str
    path_parameters: dict[str, str]


@pytest.fixture(scope="module")
def contract_tenant(local_stack: RunningLocalStack) -> ContractTenant:
    with httpx.Client(
        base_url=local_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {local_stack.admin_api_key}"}
    ) as admin:
        business = _created(admin.post("/api/admin/businesses", json={"name": f"Contract {uuid.uuid4().hex[:8]}"}))
        # A second key, for the revoke route to revoke (revoking the test's own key would end the test's access).
        spare_key = _created(admin.post(f"/api/admin/businesses/{business['id']}/keys", json={"label": "spare"}))
    with httpx.Client(
        base_url=local_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {business['apiKey']}"}
    ) as api:
        account = _created(
            api.post(
                "/api/whatsapp/accounts",
                json={"displayName": "Contract", "phoneNumber": SEEDED_ACCOUNT_NUMBER, "provider": "sandbox"},
            )
        )
        queue = _created(
            api.post(
                "/api/whatsapp/queue",
                json={
                    "name": "Contract",
                    "accountId": account["id"],
                    "template": {"name": "contract", "language": "en_US"},
                    "audience": {"recipients": [{"phoneNumber": RECIPIENT_NUMBER}], "contactTags": ["vip"]},
                },
            )
        )
        contacts = api.post(
            "/api/whatsapp/contacts",
            json={
                "contacts": [
                    {"phoneNumber": CONTACT_NUMBER, "name": "Ada", "tags": ["vip"], "attributes": {"city": "Madrid"}}
                ]
            },
        )
        assert contacts.status_code == 200, contacts.text
        _created(api.post("/api/whatsapp/opt-outs", json={"phoneNumber": OPTED_OUT_NUMBER, "reason": "contract"}))
    return ContractTenant(
        api_key=business["apiKey"],
        path_parameters={
            "business_id": business["id"],
            "key_id": spare_key["keyId"],
            "account_id": account["id"],
            "queue_id": queue["id"],
            "phone_number": CONTACT_NUMBER,
        },
    )


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_operation_documents_its_bodies_in_the_api_format(local_stack: RunningLocalStack) -> None:
    # GIVEN the schema the running stack serves
    document = httpx.get(f"{local_stack.api_url}/api/openapi.json", timeout=30).json()

    # WHEN the responses of every operation are read
    problems = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            label = f"{method.upper()} {path}"
            if not any(status.startswith("2") for status in responses):
                problems.append(f"{label}: no success status")
            for status, response in responses.items():
                content = response.get("content", {})
                if status == "204" and content:
                    problems.append(f"{label} 204: documents a body; a 204 has none")
                if status.startswith(("4", "5")) and content != {"application/json": {"schema": ERROR_RESPONSE}}:
                    problems.append(f"{label} {status}: {content}, not the API's error body")

    # THEN every one documents a success, and its errors (a generic client's fuzzing cannot reach them all, e.g. a
    # 422 for a body sent to a route that takes none) with the body the API sends
    assert not problems, "\n".join(problems)


def test_every_operation_answers_as_documented(
    local_stack: RunningLocalStack, contract_tenant: ContractTenant, subtests: pytest.Subtests
) -> None:
    schema = schemathesis.openapi.from_url(f"{local_stack.api_url}/api/openapi.json", timeout=30)
    operations: list[APIOperation[Any, Any, Any, Any]] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(f"schemathesis cannot read an operation: {result.err()}")
        operations.append(result.ok())
    assert operations, "the schema describes no operation"
    # Deletions last, so that the operations before them still find the seeded resources.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")

    for operation in operations:
        with subtests.test(operation.label):
            _exercise(operation, local_stack, contract_tenant)


def _exercise(
    operation: APIOperation[Any, Any, Any, Any], local_stack: RunningLocalStack, tenant: ContractTenant
) -> None:
    __tracebackhide__ = True
    key = local_stack.admin_api_key if operation.path.startswith("/api/admin/") else tenant.api_key
    headers = {"Authorization": f"Bearer {key}"}
    known = {name: value for name, value in tenant.path_parameters.items() if f"{{{name}}}" in operation.path}
    if "opt-outs" in operation.path and "phone_number" in known:
        known["phone_number"] = OPTED_OUT_NUMBER
    strategies = [
        operation.as_strategy(mode, headers=headers, path_parameters=path_parameters)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        # Generated identifiers find nothing (404); the seeded ones reach real resources and their real bodies.
        for path_parameters in ([None, known] if known else [None])
    ]
    # The schema's own examples (e.g. a valid phone number) too: random strings rarely pass the API's rules.
    strategies += operation.get_strategies_from_examples(headers=headers, path_parameters=known or None)

    @CONTRACT_SETTINGS
    @given(case=st.one_of(strategies).map(_keep_off_numbers_of_other_tests))
    def check(case: Case[Any]) -> None:
        case.call_and_validate(base_url=local_stack.api_url, checks=CHECKS, timeout=30)

    check()


def _keep_off_numbers_of_other_tests(case: Case[Any]) -> Case[Any]:
    if isinstance(case.body, dict) and OTHER_TESTS_NUMBERS.match(str(case.body.get("phoneNumber", ""))):
        case.body = {**case.body, "phoneNumber": GENERATED_ACCOUNT_NUMBER}
    return case
