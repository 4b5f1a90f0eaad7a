"""Account readers: Meta's Graph reads through httpx's MockTransport, the mapping of the providers' values, and
how every failure becomes an AccountReadError that never shows a credential."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from wabacast.domain.health import AccountReadError, TemplateStatus
from wabacast.domain.models import (
    Account,
    AccountLimits,
    AccountStatus,
    CredentialsSummary,
    MessagingTier,
    Provider,
    QualityRating,
    TemplateCategory,
    VerificationStatus,
)
from wabacast.providers.account_readers import (
    ProviderAccountReaders,
    messaging_tier_of,
    quality_rating_of,
    template_category_of,
    template_status_of,
    twilio_messaging_tier_of,
)
from wabacast.providers.factory import SecretVersion
from wabacast.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TOKEN = "EAAG-meta-access-token-0123456789"
META_SECRET = {
    "phone_number_id": "106540352242922",
    "waba_id": "102290129340398",
    "access_token": TOKEN,
    "app_secret": "0123456789abcdef0123456789abcdef",
}
Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def account(provider: Provider = Provider.META, account_id: str = "acc_1") -> Account:
    return Account(
        id=account_id,
        business_id="biz_1",
        display_name="Sender",
        phone_number="+15550783881",
        provider=provider,
        status=AccountStatus.PENDING,
        is_primary=True,
        is_default=False,
        limits=AccountLimits(),
        verification_status=VerificationStatus.UNKNOWN,
        quality_rating=QualityRating.UNKNOWN,
        messaging_tier=MessagingTier.TIER_250,
        credentials=CredentialsSummary(configured=provider is not Provider.SANDBOX),
        created_at=T0,
        updated_at=T0,
    )


class Graph:
    """A MockTransport handler playing Graph: routes by path, records every request."""

    def __init__(self, routes: dict[str, Handler | dict[str, Any]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get(request.url.path)
        if route is None:
            return httpx.Response(404, json={"error": {"message": "Unknown path", "code": 100}})
        if callable(route):
            return route(request)
        return httpx.Response(200, json=route)


def meta_readers(graph: Graph | Handler, **settings: Any) -> ProviderAccountReaders:
    client = httpx.Client(transport=httpx.MockTransport(graph))
    values: dict[str, Any] = {"table_name": "wabacast", "sandbox_base_url": "http://sandbox.local"}
    values.update(settings)
    return ProviderAccountReaders(Settings(**values), lambda name: dict(META_SECRET), client, now=lambda: T0)


PHONE_PATH = "/v24.0/106540352242922"
TEMPLATES_PATH = "/v24.0/102290129340398/message_templates"


def paged_templates(request: httpx.Request) -> httpx.Response:
    after = parse_qs(request.url.query.decode()).get("after")
    return httpx.Response(
        200, json=fixture("meta/message_templates_page_2.json" if after else "meta/message_templates_page_1.json")
    )


def test_meta_reads_the_number_and_every_page_of_templates_with_the_token_in_the_header_only() -> None:
    # GIVEN Graph answering the documented phone number node and two pages of templates
    graph = Graph({PHONE_PATH: fixture("meta/phone_number.json"), TEMPLATES_PATH: paged_templates})

    # WHEN the account is read
    snapshot = meta_readers(graph).for_account(account(), "secret").read()

    # THEN the number's health is Meta's, mapped
    phone = snapshot.phone
    assert phone.display_phone_number == "+15550783881"
    assert phone.verified_name == "Jasper's Market"
    assert phone.quality_rating is QualityRating.GREEN
    assert phone.provider_status == "CONNECTED"
    assert phone.throughput == "STANDARD"
    assert phone.messaging_tier is MessagingTier.TIER_2K
    assert snapshot.read_at == T0
    # AND the current limit field is asked for, not the deprecated one
    fields = parse_qs(graph.requests[0].url.query.decode())["fields"][0].split(",")
    assert "whatsapp_business_manager_messaging_limit" in fields
    assert "messaging_limit_tier" not in fields
    assert {"display_phone_number", "quality_rating", "status", "throughput", "verified_name"} <= set(fields)
    # AND the templates of both pages are there, mapped
    assert snapshot.templates is not None
    by_name = {template.name: template for template in snapshot.templates}
    assert list(by_name) == ["spring_sale", "order_update", "login_code", "new_state"]
    assert by_name["spring_sale"].status is TemplateStatus.APPROVED
    assert by_name["spring_sale"].category is TemplateCategory.MARKETING
    assert by_name["spring_sale"].provider_template_id == "1689556908129832"
    assert by_name["spring_sale"].components[1]["type"] == "BODY"
    assert by_name["order_update"].status is TemplateStatus.PAUSED
    assert by_name["login_code"].category is TemplateCategory.AUTHENTICATION
    assert by_name["login_code"].reason == "INVALID_FORMAT"
    assert by_name["login_code"].language == "es"
    assert by_name["new_state"].status is TemplateStatus.UNKNOWN
    assert by_name["new_state"].category is None
    # AND the first template page asked for 100 with the fields; the second followed paging.next without the
    # token of its query: every request carries the token in the Authorization header and nowhere else
    first, second = graph.requests[1], graph.requests[2]
    assert parse_qs(first.url.query.decode())["limit"] == ["100"]
    assert parse_qs(second.url.query.decode())["after"] == ["MQZDZD"]
    for request in graph.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "access_token" not in request.url.query.decode()
        assert TOKEN not in str(request.url)


def test_without_templates_only_the_number_is_read() -> None:
    # GIVEN Graph
    graph = Graph({PHONE_PATH: fixture("meta/phone_number.json"), TEMPLATES_PATH: paged_templates})

    # WHEN the account is read without templates
    snapshot = meta_readers(graph).for_account(account(), "secret").read(include_templates=False)

    # THEN one call, and no template listing
    assert snapshot.templates is None
    assert [request.url.path for request in graph.requests] == [PHONE_PATH]


def test_the_deprecated_tier_field_and_a_numeric_limit_are_understood() -> None:
    # GIVEN numbers answering the older field, or a number of recipients
    older = {"id": "1", "display_phone_number": "15550783881", "messaging_limit_tier": "TIER_10K"}
    numeric = {"id": "1", "display_phone_number": "15550783881", "whatsapp_business_manager_messaging_limit": -1}

    # WHEN each is read
    tiers = []
    for node in (older, numeric):
        graph = Graph({PHONE_PATH: node})
        tiers.append(meta_readers(graph).for_account(account(), "s").read(include_templates=False).phone.messaging_tier)

    # THEN both are tiers
    assert tiers == [MessagingTier.TIER_10K, MessagingTier.TIER_UNLIMITED]


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        ("TIER_50", MessagingTier.TIER_50),
        ("TIER_250", MessagingTier.TIER_250),
        ("TIER_1K", MessagingTier.TIER_1K),
        ("TIER_2K", MessagingTier.TIER_2K),
        ("TIER_10K", MessagingTier.TIER_10K),
        ("TIER_100K", MessagingTier.TIER_100K),
        ("TIER_UNLIMITED", MessagingTier.TIER_UNLIMITED),
        ("tier_10k", MessagingTier.TIER_10K),
        (2000, MessagingTier.TIER_2K),
        (1999, MessagingTier.TIER_1K),
        ("100000", MessagingTier.TIER_100K),
        (-1, MessagingTier.TIER_UNLIMITED),
        (10, None),
        ("TIER_NOT_SET", None),
        ("SOMETHING", None),
        (None, None),
        (True, None),
    ],
)
def test_meta_messaging_limits_map_to_tiers(value: object, tier: MessagingTier | None) -> None:
    assert messaging_tier_of(value) is tier


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        ("10K Customers/24hr", MessagingTier.TIER_10K),
        ("1K Customers/24hr", MessagingTier.TIER_1K),
        ("250 Customers/24hr", MessagingTier.TIER_250),
        ("Unlimited", MessagingTier.TIER_UNLIMITED),
        ("TIER_100K", MessagingTier.TIER_100K),
        ("", None),
        (None, None),
    ],
)
def test_twilio_messaging_limits_map_to_tiers(value: object, tier: MessagingTier | None) -> None:
    assert twilio_messaging_tier_of(value) is tier


@pytest.mark.parametrize(
    ("value", "rating"),
    [
        ("GREEN", QualityRating.GREEN),
        ("YELLOW", QualityRating.YELLOW),
        ("RED", QualityRating.RED),
        ("NA", QualityRating.UNKNOWN),
        ("UNKNOWN", QualityRating.UNKNOWN),
        ("HIGH", QualityRating.GREEN),
        ("MEDIUM", QualityRating.YELLOW),
        ("LOW", QualityRating.RED),
        (None, QualityRating.UNKNOWN),
    ],
)
def test_quality_ratings_map_and_anything_else_is_unknown(value: object, rating: QualityRating) -> None:
    assert quality_rating_of(value) is rating


def test_template_statuses_and_categories_map() -> None:
    assert template_status_of("APPROVED") is TemplateStatus.APPROVED
    assert template_status_of("approved") is TemplateStatus.APPROVED
    assert template_status_of("received") is TemplateStatus.PENDING
    assert template_status_of("DISABLED") is TemplateStatus.DISABLED
    assert template_status_of("BRAND_NEW") is TemplateStatus.UNKNOWN
    assert template_status_of(None) is TemplateStatus.UNKNOWN
    assert template_category_of("UTILITY") is TemplateCategory.UTILITY
    assert template_category_of("AUTHENTICATION") is TemplateCategory.AUTHENTICATION
    assert template_category_of("MARKETING") is TemplateCategory.MARKETING
    assert template_category_of("SERVICE") is None
    assert template_category_of(None) is None


def error_response(status: int, body: Any) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="<html>")

    return answer


@pytest.mark.parametrize(
    ("status", "body", "code", "refused"),
    [
        (401, fixture("meta/error_token_expired.json"), "190", True),
        (400, fixture("meta/error_unknown_object.json"), "100", False),
        (403, {"error": {"message": "(#200) Permissions error", "code": 200}}, "200", True),
        (401, None, "HTTP_401", True),
        (403, None, "HTTP_403", True),
        (503, None, "HTTP_503", False),
        (500, {"error": {"message": "An unknown error occurred", "code": 1}}, "1", False),
        (429, None, "HTTP_429", False),
    ],
)
def test_meta_errors_keep_metas_code_and_say_when_the_credentials_were_refused(
    status: int, body: Any, code: str, refused: bool
) -> None:
    # GIVEN Graph answering the number with an error
    graph = Graph({PHONE_PATH: error_response(status, body)})

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        meta_readers(graph).for_account(account(), "secret").read()

    # THEN the error carries Meta's code (or the HTTP status), whether the credentials were refused, and no token
    assert raised.value.code == code
    assert raised.value.credentials_refused is refused
    assert TOKEN not in str(raised.value)


def test_a_subcode_is_named_in_the_message() -> None:
    graph = Graph({PHONE_PATH: error_response(400, fixture("meta/error_unknown_object.json"))})
    with pytest.raises(AccountReadError) as raised:
        meta_readers(graph).for_account(account(), "secret").read()
    assert "(subcode 33)" in raised.value.message


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (httpx.ConnectError("connection refused"), "UNREACHABLE"),
        (httpx.ReadTimeout("timed out"), "TIMEOUT"),
        (httpx.ConnectTimeout("timed out"), "TIMEOUT"),
        (httpx.RemoteProtocolError("server disconnected"), "UNREACHABLE"),
    ],
)
def test_network_failures_are_read_errors(failure: Exception, code: str) -> None:
    # GIVEN a transport that fails
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        meta_readers(fail).for_account(account(), "secret").read()

    # THEN a clear local code, never a credential refusal
    assert raised.value.code == code
    assert raised.value.credentials_refused is False


def test_a_success_without_a_json_object_is_an_invalid_response() -> None:
    graph = Graph({PHONE_PATH: error_response(200, None)})
    with pytest.raises(AccountReadError) as raised:
        meta_readers(graph).for_account(account(), "secret").read()
    assert raised.value.code == "INVALID_RESPONSE"


def test_a_next_page_on_another_host_is_not_followed() -> None:
    # GIVEN a template page whose next link leaves Graph's host
    page = fixture("meta/message_templates_page_1.json")
    page["paging"]["next"] = "https://elsewhere.example/v24.0/1/message_templates?access_token=x&after=Y"
    graph = Graph({PHONE_PATH: fixture("meta/phone_number.json"), TEMPLATES_PATH: page})

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        meta_readers(graph).for_account(account(), "secret").read()

    # THEN the read fails without sending anything there, and the message shows no URL
    assert raised.value.code == "INVALID_RESPONSE"
    assert all(request.url.host == "graph.facebook.com" for request in graph.requests)
    assert "elsewhere" not in str(raised.value)


def test_a_next_link_that_never_ends_is_bounded() -> None:
    # GIVEN Graph whose every page links to a new next page
    def endless(request: httpx.Request) -> httpx.Response:
        after = int(parse_qs(request.url.query.decode()).get("after", ["0"])[0]) + 1
        next_url = f"https://graph.facebook.com{TEMPLATES_PATH}?limit=100&after={after}"
        return httpx.Response(200, json={"data": [], "paging": {"next": next_url}})

    graph = Graph({PHONE_PATH: fixture("meta/phone_number.json"), TEMPLATES_PATH: endless})

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        meta_readers(graph).for_account(account(), "secret").read()

    # THEN it stops at the bound with a read error
    assert raised.value.code == "INVALID_RESPONSE"
    assert len(graph.requests) == 1 + 100


def test_a_next_link_that_repeats_is_a_read_error() -> None:
    page = fixture("meta/message_templates_page_1.json")
    graph = Graph({PHONE_PATH: fixture("meta/phone_number.json"), TEMPLATES_PATH: page})
    with pytest.raises(AccountReadError) as raised:
        meta_readers(graph).for_account(account(), "secret").read()
    assert raised.value.code == "INVALID_RESPONSE"
    assert len(graph.requests) == 3


def test_sandbox_accounts_read_the_sandbox_with_the_account_id_as_number_and_waba() -> None:
    # GIVEN the sandbox answering Graph reads
    graph = Graph(
        {
            "/v24.0/acc_9": {"id": "acc_9", "display_phone_number": "+15550000000", "quality_rating": "YELLOW"},
            "/v24.0/acc_9/message_templates": {"data": []},
        }
    )

    # WHEN a sandbox account is read
    snapshot = meta_readers(graph).for_account(account(Provider.SANDBOX, "acc_9"), "unused").read()

    # THEN both reads went to the sandbox under the account id
    assert snapshot.phone.quality_rating is QualityRating.YELLOW
    assert snapshot.templates == ()
    assert {request.url.host for request in graph.requests} == {"sandbox.local"}


def test_a_sandbox_account_without_a_sandbox_url_is_a_config_error() -> None:
    graph = Graph({})
    readers = meta_readers(graph, sandbox_base_url=None)
    with pytest.raises(AccountReadError) as raised:
        readers.for_account(account(Provider.SANDBOX), "unused").read()
    assert raised.value.code == "PROVIDER_CONFIG"
    assert graph.requests == []


def test_invalid_stored_credentials_name_the_fields_never_the_values() -> None:
    # GIVEN a stored Meta secret with a broken token and no WABA id
    secret = {"phone_number_id": "106540352242922", "access_token": "short", "app_secret": "x"}
    readers = ProviderAccountReaders(Settings(table_name="wabacast"), lambda name: secret, httpx.Client())

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        readers.for_account(account(), "secret").read()

    # THEN a config error naming the fields
    assert raised.value.code == "PROVIDER_CONFIG"
    assert "access_token" in raised.value.message
    assert "waba_id" in raised.value.message
    assert "short" not in raised.value.message


def test_a_versioned_secrets_source_is_read_fresh_on_every_read() -> None:
    # GIVEN a versioned secrets source that counts its reads
    class Versions:
        def __init__(self) -> None:
            self.fresh_reads = 0

        def current(self, name: str) -> SecretVersion:
            raise AssertionError("a sync reads the secret as it is now")

        def fresh(self, name: str) -> SecretVersion:
            self.fresh_reads += 1
            return SecretVersion(dict(META_SECRET), "v1")

    versions = Versions()
    graph = Graph({PHONE_PATH: fixture("meta/phone_number.json")})
    readers = ProviderAccountReaders(
        Settings(table_name="wabacast"), versions, httpx.Client(transport=httpx.MockTransport(graph))
    )
    reader = readers.for_account(account(), "secret")

    # WHEN the same reader reads twice
    reader.read(include_templates=False)
    reader.read(include_templates=False)

    # THEN the secret was read each time (nothing at for_account)
    assert versions.fresh_reads == 2


def test_building_a_reader_reads_nothing_and_shows_no_secret() -> None:
    # GIVEN readers whose secrets source must not be called yet
    def no_secret(name: str) -> dict[str, Any]:
        raise AssertionError("read at for_account")

    readers = ProviderAccountReaders(Settings(table_name="wabacast"), no_secret, httpx.Client())

    # WHEN a reader is made
    reader = readers.for_account(account(), "secret")

    # THEN nothing was read, and its repr names the account only
    assert "acc_1" in repr(reader)
    assert TOKEN not in repr(reader)


def test_the_graph_version_and_host_come_from_the_settings() -> None:
    graph = Graph({"/v26.0/106540352242922": fixture("meta/phone_number.json")})
    readers = meta_readers(graph, meta_base_url="https://graph.example.test", meta_api_version="v26.0")
    readers.for_account(account(), "secret").read(include_templates=False)
    assert urlsplit(str(graph.requests[0].url)).netloc == "graph.example.test"


@pytest.mark.parametrize(
    ("display", "expected"),
    [("+1 555-078-3881", "+15550783881"), ("15550783881", "+15550783881"), ("", None), (None, None)],
)
def test_metas_display_number_is_read_as_e164_and_a_missing_one_proves_nothing(
    display: str | None, expected: str | None
) -> None:
    # GIVEN Graph naming the number in one of its formats, or not at all
    node: dict[str, Any] = {"id": "106540352242922", "quality_rating": "GREEN"}
    if display is not None:
        node["display_phone_number"] = display
    graph = Graph({PHONE_PATH: node})

    # WHEN the account is read
    phone = meta_readers(graph).for_account(account(), "secret").read(include_templates=False).phone

    # THEN the number is E.164, comparable with the account's; without one, nothing is proven
    assert phone.display_phone_number == expected


def test_importing_the_readers_loads_no_http_library() -> None:
    # GIVEN a fresh interpreter with the shared package on its path
    script = (
        "import json, sys\n"
        "import wabacast.providers.account_readers\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'twilio', 'requests'))))\n"
    )
    shared = Path(__file__).resolve().parents[3] / "layers" / "shared"

    # WHEN the readers module is imported
    completed = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(shared)},
        check=True,
    )

    # THEN no HTTP library came with it (the first read imports the HTTP readers)
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
