"""The Twilio account reader against a local fake of Twilio's REST hosts (real HTTP on 127.0.0.1, no internet)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from wabacast.providers.account_readers import ProviderAccountReaders
from wabacast.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "twilio"
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SID = "AC" + "a" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
NUMBER = "+34900000000"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class FakeTwilio:
    """Answers by path: a JSON body (200), or (status, body). Records each request's path, query and auth."""

    routes: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, list[str]], str | None]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            fake.requests.append((parts.path, query, self.headers.get("Authorization")))
            key = parts.path
            if parts.path == "/v2/Channels/Senders" and query.get("Page") == ["1"]:
                key = "/v2/Channels/Senders?Page=1"
            route = fake.routes.get(key, (404, {"code": 20404, "message": "Not found", "status": 404}))
            status, body = route if isinstance(route, tuple) else (200, route)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def account() -> Account:
    return Account(
        id="acc_1",
        business_id="biz_1",
        display_name="Sender",
        phone_number=NUMBER,
        provider=Provider.TWILIO,
        status=AccountStatus.PENDING,
        is_primary=True,
        is_default=False,
        limits=AccountLimits(),
        verification_status=VerificationStatus.UNKNOWN,
        quality_rating=QualityRating.UNKNOWN,
        messaging_tier=MessagingTier.TIER_250,
        credentials=CredentialsSummary(configured=True),
        created_at=T0,
        updated_at=T0,
    )


def readers(fake: FakeTwilio) -> ProviderAccountReaders:
    settings = Settings(
        table_name="wabacast",
        twilio_api_base_url=fake.url,
        twilio_messaging_base_url=fake.url,
        twilio_content_base_url=fake.url,
        provider_timeout_s=5,
    )
    secret = {"account_sid": SID, "auth_token": TOKEN}
    return ProviderAccountReaders(settings, lambda name: secret, httpx.Client(), now=lambda: T0)


def senders_pages(fake: FakeTwilio) -> None:
    first = fixture("senders_page_1.json")
    second = fixture("senders_page_2.json")
    # The fake's own host, as Twilio's next_page_url names Twilio's.
    first["meta"]["next_page_url"] = f"{fake.url}/v2/Channels/Senders?Channel=whatsapp&PageSize=1&Page=1"
    fake.routes["/v2/Channels/Senders"] = first
    fake.routes["/v2/Channels/Senders?Page=1"] = second


def test_the_whatsapp_sender_proves_the_number_and_gives_quality_tier_and_templates(twilio: FakeTwilio) -> None:
    # GIVEN Twilio listing the number's WhatsApp sender on its second page, and the account's content templates
    senders_pages(twilio)
    twilio.routes["/v1/ContentAndApprovals"] = fixture("content_and_approvals.json")

    # WHEN the account is read
    snapshot = readers(twilio).for_account(account(), "secret").read()

    # THEN the number is proven (Twilio knows it with these credentials) and the sender's properties are mapped
    phone = snapshot.phone
    assert phone.display_phone_number == NUMBER
    assert phone.provider_status == "ONLINE"
    assert phone.quality_rating is QualityRating.GREEN
    assert phone.messaging_tier is MessagingTier.TIER_10K
    assert phone.verified_name == "Demo Shop"
    # AND the templates submitted to WhatsApp are listed with their approval; the unsubmitted one is not
    assert snapshot.templates is not None
    by_name = {template.name: template for template in snapshot.templates}
    assert set(by_name) == {"order_update", "black_friday", "winter_promo"}
    assert by_name["order_update"].status is TemplateStatus.APPROVED
    assert by_name["order_update"].category is TemplateCategory.UTILITY
    assert by_name["order_update"].provider_template_id == "HX" + "a" * 32
    assert by_name["order_update"].language == "en"
    assert by_name["black_friday"].status is TemplateStatus.REJECTED
    assert by_name["black_friday"].reason == "Promotional content in a utility template"
    assert by_name["winter_promo"].status is TemplateStatus.PENDING
    # AND every request used Basic auth with the account's own SID and token; the senders were asked for WhatsApp
    expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert {auth for _, _, auth in twilio.requests} == {expected}
    assert twilio.requests[0][1]["Channel"] == ["whatsapp"]
    assert [path for path, _, _ in twilio.requests].count("/v2/Channels/Senders") == 2


def test_without_a_sender_the_incoming_number_proves_ownership(twilio: FakeTwilio) -> None:
    # GIVEN no WhatsApp sender for the number, but the number among the account's incoming numbers
    twilio.routes["/v2/Channels/Senders"] = {"senders": [], "meta": {"next_page_url": None}}
    twilio.routes[f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json"] = fixture("incoming_phone_numbers.json")

    # WHEN the account is read without templates
    snapshot = readers(twilio).for_account(account(), "secret").read(include_templates=False)

    # THEN the number is proven, with nothing else known about it; the number was looked up by PhoneNumber
    assert snapshot.phone.display_phone_number == NUMBER
    assert snapshot.phone.quality_rating is QualityRating.UNKNOWN
    assert snapshot.phone.messaging_tier is None
    assert snapshot.templates is None
    lookup = [query for path, query, _ in twilio.requests if path.endswith("IncomingPhoneNumbers.json")]
    assert lookup == [{"PhoneNumber": [NUMBER]}]


def test_a_number_twilio_does_not_know_is_not_proven(twilio: FakeTwilio) -> None:
    # GIVEN an account whose senders API is not open (404) and whose incoming numbers do not include the number
    twilio.routes[f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json"] = {"incoming_phone_numbers": []}

    # WHEN the account is read
    snapshot = readers(twilio).for_account(account(), "secret").read(include_templates=False)

    # THEN the read succeeds and says nothing proves the number
    assert snapshot.phone.display_phone_number is None


def test_refused_credentials_are_a_credentials_refusal(twilio: FakeTwilio) -> None:
    # GIVEN Twilio refusing the SID and token
    twilio.routes["/v2/Channels/Senders"] = (401, fixture("error_authenticate.json"))

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        readers(twilio).for_account(account(), "secret").read()

    # THEN Twilio's code, a credential refusal, no token in the message
    assert raised.value.code == "20003"
    assert raised.value.credentials_refused is True
    assert TOKEN not in str(raised.value)


def test_a_twilio_outage_is_a_read_error(twilio: FakeTwilio) -> None:
    # GIVEN Twilio answering 503 without a body we know
    twilio.routes["/v2/Channels/Senders"] = (503, "unavailable")

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        readers(twilio).for_account(account(), "secret").read()

    # THEN the HTTP status is the code, and it is not a credential refusal
    assert raised.value.code == "HTTP_503"
    assert raised.value.credentials_refused is False


def test_an_unreachable_twilio_is_a_read_error() -> None:
    # GIVEN Twilio's hosts on a port where nothing listens
    fake = FakeTwilio(url="http://127.0.0.1:9")

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        readers(fake).for_account(account(), "secret").read()

    # THEN a local code
    assert raised.value.code == "UNREACHABLE"


def test_a_next_page_on_another_host_is_not_followed(twilio: FakeTwilio) -> None:
    # GIVEN a senders page whose next page is on another host
    page = fixture("senders_page_1.json")
    page["meta"]["next_page_url"] = "https://elsewhere.example/v2/Channels/Senders?Page=1"
    twilio.routes["/v2/Channels/Senders"] = page

    # WHEN the account is read
    with pytest.raises(AccountReadError) as raised:
        readers(twilio).for_account(account(), "secret").read()

    # THEN it is a read error, and the credentials went nowhere else
    assert raised.value.code == "INVALID_RESPONSE"
    assert len(twilio.requests) == 1
