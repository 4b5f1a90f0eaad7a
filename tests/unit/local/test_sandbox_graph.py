"""The sandbox's Graph reads and their control calls, over real HTTP on 127.0.0.1, read by the real account reader."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from wabacast.domain.health import TemplateStatus
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
from wabacast_local.sandbox import SandboxServer
from wabacast_local.sandbox_callbacks import CallbackDispatcher, status_notification
from wabacast_local.sandbox_graph import DEFAULT_TEMPLATES, SandboxGraph

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "meta"
APP_SECRET = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Posts:
    """Stands in for the stack's webhook: keeps what the sandbox posted."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        self.bodies.append((raw, headers))
        return 200, "ok"

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 5
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [json.loads(raw) for raw, _ in self.bodies]


@pytest.fixture
def posts() -> Posts:
    return Posts()


@pytest.fixture
def sandbox(posts: Posts) -> Iterator[SandboxServer]:
    server = SandboxServer(callback_url="http://stack.local/api/webhooks/meta", app_secret=APP_SECRET, read_rate=0)
    server.callbacks = CallbackDispatcher(post=posts)
    with server:
        yield server


def account(account_id: str = "acc_7") -> Account:
    return Account(
        id=account_id,
        business_id="biz_1",
        display_name="Sandbox",
        phone_number="+15550000000",
        provider=Provider.SANDBOX,
        status=AccountStatus.ACTIVE,
        is_primary=True,
        is_default=False,
        limits=AccountLimits(),
        verification_status=VerificationStatus.UNKNOWN,
        quality_rating=QualityRating.UNKNOWN,
        messaging_tier=MessagingTier.TIER_250,
        credentials=CredentialsSummary(configured=False),
        created_at=T0,
        updated_at=T0,
    )


def read(sandbox: SandboxServer, account_id: str = "acc_7") -> Any:
    settings = Settings(table_name="wabacast", sandbox_base_url=sandbox.url)
    with httpx.Client() as client:
        return ProviderAccountReaders(settings, lambda name: {}, client).for_account(account(account_id), "-").read()


def send(sandbox: SandboxServer, account_id: str, name: str, language: str = "en_US") -> httpx.Response:
    body = {
        "messaging_product": "whatsapp",
        "to": "34600000001",
        "type": "template",
        "template": {"name": name, "language": {"code": language}},
    }
    return httpx.post(
        f"{sandbox.url}/v24.0/{account_id}/messages", json=body, headers={"Authorization": "Bearer sandbox"}
    )


def test_a_new_number_reads_green_connected_unlimited_with_the_default_catalogue(sandbox: SandboxServer) -> None:
    # GIVEN a sandbox that has never heard of the account
    # WHEN the account reader reads it
    snapshot = read(sandbox)

    # THEN the defaults, and every default template APPROVED with its category
    assert snapshot.phone.quality_rating is QualityRating.GREEN
    assert snapshot.phone.provider_status == "CONNECTED"
    assert snapshot.phone.messaging_tier is MessagingTier.TIER_UNLIMITED
    assert snapshot.phone.throughput == "STANDARD"
    assert snapshot.phone.display_phone_number
    assert snapshot.templates is not None
    assert {(t.name, t.language) for t in snapshot.templates} == {(n, lang) for n, lang, _ in DEFAULT_TEMPLATES}
    assert {t.status for t in snapshot.templates} == {TemplateStatus.APPROVED}
    by_name = {t.name: t for t in snapshot.templates}
    assert by_name["spring_promo"].category is TemplateCategory.MARKETING
    assert by_name["welcome"].category is TemplateCategory.UTILITY


def test_template_pages_follow_graphs_paging_and_only_asked_fields_come_back(sandbox: SandboxServer) -> None:
    # GIVEN the sandbox
    headers = {"Authorization": "Bearer sandbox"}

    # WHEN templates are listed 4 at a time, following `paging.next`, and a number is read with two fields
    names: list[str] = []
    url: str | None = f"{sandbox.url}/v24.0/acc_1/message_templates?limit=4"
    pages = 0
    while url:
        body = httpx.get(url, headers=headers).json()
        names += [item["name"] for item in body["data"]]
        url = body.get("paging", {}).get("next")
        pages += 1
    node = httpx.get(f"{sandbox.url}/v24.0/acc_1?fields=quality_rating,status", headers=headers).json()

    # THEN every template once, over several pages; the node has the fields asked for and its id
    assert sorted(names) == sorted(name for name, _, _ in DEFAULT_TEMPLATES)
    assert pages == 3
    assert node == {"id": "acc_1", "quality_rating": "GREEN", "status": "CONNECTED"}


def test_graph_reads_need_a_bearer_token(sandbox: SandboxServer) -> None:
    # GIVEN the sandbox requiring a given token
    sandbox.configure(access_token="right-token")

    # WHEN the number is read without a token and with a wrong one
    missing = httpx.get(f"{sandbox.url}/v24.0/acc_1")
    wrong = httpx.get(f"{sandbox.url}/v24.0/acc_1", headers={"Authorization": "Bearer wrong"})

    # THEN Meta's 190
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["code"] == wrong.json()["error"]["code"] == 190


def test_a_quality_change_is_read_and_posted_as_metas_signed_quality_webhook(
    sandbox: SandboxServer, posts: Posts
) -> None:
    # GIVEN the number's display number set, then its quality and tier changed through the control API
    httpx.post(f"{sandbox.url}/numbers/acc_7", json={"displayPhoneNumber": "+15550783881"})
    answer = httpx.post(f"{sandbox.url}/numbers/acc_7", json={"qualityRating": "RED", "messagingTier": "TIER_250"})

    # WHEN the account is read, and the webhook arrives
    snapshot = read(sandbox)
    [notification] = posts.wait_for(1)

    # THEN the read shows the change
    assert answer.status_code == 200
    assert answer.json()["qualityRating"] == "RED"
    assert snapshot.phone.quality_rating is QualityRating.RED
    assert snapshot.phone.messaging_tier is MessagingTier.TIER_250
    assert snapshot.phone.display_phone_number == "+15550783881"
    # AND the webhook has the shape of Meta's documented one, for this WABA, signed with the app secret
    documented = json.loads((FIXTURES / "phone_number_quality_update.json").read_text())
    change = notification["entry"][0]["changes"][0]
    assert change["field"] == documented["entry"][0]["changes"][0]["field"]
    assert set(documented["entry"][0]["changes"][0]["value"]) <= set(change["value"])
    assert notification["entry"][0]["id"] == "acc_7"
    assert change["value"] == {
        "display_phone_number": "15550783881",
        "event": "DOWNGRADE",
        "current_limit": "TIER_250",
        "max_daily_conversations_per_business": "TIER_250",
        "old_limit": "TIER_UNLIMITED",
    }
    raw, headers = posts.bodies[0]
    assert headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()


def test_a_template_status_change_is_read_posted_and_refuses_sends(sandbox: SandboxServer, posts: Posts) -> None:
    # GIVEN spring_promo paused for one account, and a new template added for it
    paused = httpx.post(
        f"{sandbox.url}/templates",
        json={"wabaId": "acc_7", "name": "spring_promo", "language": "en_US", "status": "PAUSED"},
    )
    httpx.post(
        f"{sandbox.url}/templates",
        json={"wabaId": "acc_7", "name": "renewal", "language": "es", "category": "UTILITY", "status": "PENDING"},
    )

    # WHEN the account is read, the webhooks arrive, and both accounts send spring_promo
    snapshot = read(sandbox)
    notifications = posts.wait_for(2)
    refused = send(sandbox, "acc_7", "spring_promo")
    other = send(sandbox, "acc_8", "spring_promo")

    # THEN the read shows both
    assert paused.json()["status"] == "PAUSED"
    assert snapshot.templates is not None
    by_name = {t.name: t for t in snapshot.templates}
    assert by_name["spring_promo"].status is TemplateStatus.PAUSED
    assert by_name["renewal"].status is TemplateStatus.PENDING
    assert by_name["renewal"].category is TemplateCategory.UTILITY
    # AND Meta's template webhook was posted for each, in the documented shape
    documented = json.loads((FIXTURES / "message_template_status_update.json").read_text())
    values = [n["entry"][0]["changes"][0]["value"] for n in notifications]
    assert {v["message_template_name"]: v["event"] for v in values} == {"spring_promo": "PAUSED", "renewal": "PENDING"}
    assert all(set(documented["entry"][0]["changes"][0]["value"]) <= set(v) for v in values)
    # AND the paused template is refused as Meta refuses it, for that account only
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 132015
    assert other.status_code == 200


def test_a_template_outside_the_catalogue_is_sent_and_billed_as_marketing(sandbox: SandboxServer) -> None:
    # GIVEN sends of a utility template of the catalogue and of a template the catalogue does not have
    utility = send(sandbox, "acc_7", "welcome")
    unknown = send(sandbox, "acc_7", "never_heard_of")

    # WHEN their status callbacks are built
    records = {record["template"]: record for record in sandbox.messages("acc_7")}
    sent = {name: status_notification(records[name], "sent", 1_764_400_000) for name in records}

    # THEN both were accepted; each is priced in its catalogue category, marketing when unknown
    assert utility.status_code == unknown.status_code == 200

    def pricing(notification: dict[str, Any]) -> str:
        return str(notification["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"]["category"])

    assert pricing(sent["welcome"]) == "utility"
    assert pricing(sent["never_heard_of"]) == "marketing"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/numbers/acc_1", {"qualityRating": "PURPLE"}, "qualityRating"),
        ("/numbers/acc_1", {"messagingTier": "TIER_3"}, "messagingTier"),
        ("/numbers/acc_1", {"colour": "RED"}, "colour"),
        ("/templates", {"name": "x", "language": "en", "category": "MARKETING"}, "wabaId"),
        ("/templates", {"wabaId": "a", "name": "new_one", "language": "en"}, "category"),
        ("/templates", {"wabaId": "a", "name": "welcome", "language": "en_US", "status": "GONE"}, "status"),
    ],
)
def test_bad_control_calls_are_400_naming_the_field(
    sandbox: SandboxServer, path: str, body: dict[str, Any], field: str
) -> None:
    answer = httpx.post(f"{sandbox.url}{path}", json=body)
    assert answer.status_code == 400
    assert field in answer.json()["error"]["message"]


def test_control_reads_show_a_number_and_a_catalogue(sandbox: SandboxServer) -> None:
    number = httpx.get(f"{sandbox.url}/numbers/acc_3").json()
    catalogue = httpx.get(f"{sandbox.url}/templates", params={"wabaId": "acc_3"}).json()["templates"]
    assert number["qualityRating"] == "GREEN"
    assert number["messagingTier"] == "TIER_UNLIMITED"
    assert len(catalogue) == len(DEFAULT_TEMPLATES)
    assert httpx.get(f"{sandbox.url}/templates").status_code == 400


def test_without_callbacks_a_change_posts_nothing(posts: Posts) -> None:
    # GIVEN a sandbox without a callback target
    server = SandboxServer()
    server.callbacks = CallbackDispatcher(post=posts)
    with server:
        # WHEN a number's quality changes
        server.update_number("acc_1", {"qualityRating": "YELLOW"})
        scheduled = server.callbacks.summary()["scheduled"]

    # THEN nothing was planned nor posted
    assert scheduled == 0
    assert posts.bodies == []


def test_an_unchanged_status_and_an_unchanged_number_post_nothing() -> None:
    graph = SandboxGraph()
    _, _, first = graph.put_template({"wabaId": "a", "name": "welcome", "language": "en_US", "status": "APPROVED"}, 1)
    _, second = graph.update_number("a", {"status": "FLAGGED"}, 1)
    _, third = graph.update_number("a", {"qualityRating": "YELLOW"}, 1)
    assert first is None
    assert second is None
    assert third is not None
    assert third.body["entry"][0]["changes"][0]["value"]["event"] == "FLAGGED"
