"""The web console in headless Chromium against a running local stack: what an operator does, click by click.

The stack is this module's own (a fresh demo business, so the screenshots in docs/ show only what these tests
made). Chromium is Debian's package, installed on first use (browser_install.py); axe-core comes with the
axe-playwright-python wheel and runs in the page.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.e2e.browser_install import BrowserUnavailableError, ensure_chromium
from tests.e2e.local_stack_process import LocalStackProcess

pytestmark = pytest.mark.e2e

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# The local pipeline sends about 10-25 messages/s through moto on 2 cores: 500 take well under this.
COMPLETION_TIMEOUT_MS = 240_000
# WCAG 2.1 A and AA rules of axe-core.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}

# Playwright's default of 5 s per expectation is short on a loaded 2-core machine, where an API call through the
# local stack can take seconds; the expectations still fail when the page never gets there.
expect.set_options(timeout=30_000)

_numbers = itertools.count(1)


def unique_number() -> str:
    """A valid US number not used by another test of this module (one number belongs to one business)."""
    return f"+1415555{next(_numbers):04d}"


def many_numbers(how_many: int, area: str) -> list[str]:
    return [f"+1{area}555{index:04d}" for index in range(how_many)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    process = LocalStackProcess(
        tmp_path_factory.mktemp("console-stack"), "--sandbox-latency-ms", "5", "--sandbox-jitter-ms", "10"
    )
    try:
        yield process.wait_until_ready()
    finally:
        exit_code = process.stop()
    assert exit_code == 0, process.logs()


@pytest.fixture(scope="module")
def api(stack: dict[str, Any]) -> Iterator[httpx.Client]:
    """The demo business over the API, for setting up what a test is not about."""
    with httpx.Client(
        base_url=stack["apiUrl"], timeout=30, headers={"Authorization": f"Bearer {stack['apiKey']}"}
    ) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        chromium = ensure_chromium()
    except BrowserUnavailableError as error:
        pytest.fail(str(error))
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    # An exception in the console's code fails the test even when the page looked right.
    assert errors == []


def sign_in(page: Page, stack: dict[str, Any], key: str | None = None) -> None:
    page.goto(stack["consoleUrl"])
    page.get_by_label("API key").fill(key or stack["apiKey"])
    page.get_by_role("button", name="Sign in").click()


def signed_in(page: Page, stack: dict[str, Any]) -> Page:
    sign_in(page, stack)
    expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()
    return page


def add_account(api: httpx.Client, name: str, *, rate: int = 1000) -> dict[str, Any]:
    response = api.post(
        "/api/whatsapp/accounts",
        json={
            "displayName": name,
            "phoneNumber": unique_number(),
            "provider": "sandbox",
            "limits": {"messagesPerSecond": rate, "dailyRecipientLimit": 100_000},
        },
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


def open_queues(page: Page) -> None:
    page.get_by_role("tab", name="Queues").click()
    expect(page.get_by_role("heading", name="Queues", exact=True)).to_be_visible()


def create_queue_in_dialog(page: Page, name: str, account: dict[str, Any], numbers: list[str]) -> None:
    page.get_by_role("button", name="New queue").click()
    dialog = page.get_by_role("dialog", name="New queue")
    dialog.get_by_label("Name", exact=True).fill(name)
    dialog.get_by_label("Account", exact=True).select_option(account["id"])
    dialog.get_by_label("Template name").fill("welcome")
    dialog.get_by_label("Variables").fill("1={{contact.phoneNumber}}\n2=Spring sale")
    dialog.get_by_label("Phone numbers, one per line or separated by commas").fill("\n".join(numbers))
    dialog.get_by_role("button", name="Create queue").click()


def queue_card(page: Page, name: str) -> Locator:
    return page.get_by_role("article", name=name, exact=True)


def axe_violations(page: Page) -> str:
    results = Axe().run(page, options=AXE_OPTIONS)
    return "" if results.violations_count == 0 else results.generate_report()


# ---------------------------------------------------------------------------------------------------------------


def test_a_key_that_is_not_accepted_gets_a_clear_message_and_stays_on_sign_in(page, stack):
    # GIVEN the console
    # WHEN someone signs in with a key that was never issued
    sign_in(page, stack, key="wbk_not-a-real-key")

    # THEN the sign-in form says why, next to the key field, and no key is kept
    error = page.locator("#api-key-error")
    expect(error).to_contain_text("not accepted (401)")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("tab", name="Accounts")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_key_lives_in_session_storage_only(page, stack):
    # GIVEN / WHEN the operator signs in with the demo key
    signed_in(page, stack)

    # THEN the key is in this tab's session storage and nowhere the browser keeps
    assert page.evaluate("Object.values(sessionStorage)") == [stack["apiKey"]]
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []


def test_operator_creates_a_sandbox_account_and_sends_a_500_recipient_queue_to_completion(page, stack):
    # GIVEN the operator signed in with the demo key
    signed_in(page, stack)

    # WHEN they create a sandbox account with a high rate limit
    page.get_by_role("button", name="Add account").click()
    dialog = page.get_by_role("dialog", name="Add account")
    dialog.get_by_label("Display name").fill("Campaigns")
    dialog.get_by_label("Phone number", exact=True).fill(unique_number())
    dialog.get_by_label("Provider").select_option("sandbox")
    dialog.get_by_label("Messages per second").fill("1000")
    dialog.get_by_label("Daily recipient limit").fill("100000")
    dialog.get_by_label("Quality rating").select_option("GREEN")
    dialog.get_by_role("button", name="Save account").click()

    # THEN it is listed with its provider and limit
    row = page.get_by_role("row", name="Campaigns")
    expect(row).to_contain_text("sandbox")
    expect(row).to_contain_text("1,000/s")
    expect(row.get_by_text("GREEN")).to_be_visible()
    account_id = row.get_attribute("data-account-id")
    assert account_id

    # WHEN they create a queue for 500 pasted numbers on that account and press Process on its card
    open_queues(page)
    create_queue_in_dialog(page, "Spring sale", {"id": account_id}, many_numbers(500, "212"))
    card = queue_card(page, "Spring sale")
    expect(card.get_by_text("DRAFT", exact=True)).to_be_visible()
    card.get_by_role("button", name="Process Spring sale").click()

    # THEN the card goes live and its progress bar reaches 100% with every message sent
    expect(card.get_by_text("PROCESSING", exact=True).or_(card.get_by_text("COMPLETED", exact=True))).to_be_visible()
    bar = card.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=COMPLETION_TIMEOUT_MS)
    expect(card.get_by_text("COMPLETED", exact=True)).to_be_visible(timeout=30_000)
    expect(card.get_by_text("Sent 500")).to_be_visible()
    expect(card.get_by_text("Pending 0")).to_be_visible()


def test_operator_pauses_and_resumes_a_running_queue_made_from_a_csv_of_contacts(page, stack, api):
    # GIVEN a second account, and a CSV of 150 contacts with names, a tag column and an extra attribute
    account = add_account(api, "Reminders")
    rows = [
        "phoneNumber,name,tags,city",
        *(f"{n},Customer {i},clients,Oslo" for i, n in enumerate(many_numbers(150, "312"))),
    ]
    signed_in(page, stack)
    open_queues(page)

    # WHEN the operator creates a queue from that file, saved as contacts under a tag, and presses Process
    page.get_by_role("button", name="New queue").click()
    dialog = page.get_by_role("dialog", name="New queue")
    dialog.get_by_label("Name", exact=True).fill("Reminders")
    dialog.get_by_label("Account", exact=True).select_option(account["id"])
    dialog.get_by_label("Template name").fill("reminder")
    dialog.get_by_label("Variables").fill("1={{contact.name}}\n2={{contact.attributes.city}}")
    dialog.get_by_label("CSV file of contacts").check()
    dialog.get_by_label("CSV file (columns").set_input_files(
        files=[{"name": "reminders.csv", "mimeType": "text/csv", "buffer": "\r\n".join(rows).encode()}]
    )
    expect(dialog.get_by_text("reminders.csv: 150 contacts")).to_be_visible()
    dialog.get_by_label("Tag for these contacts").fill("reminders-nov")
    dialog.get_by_role("button", name="Create queue").click()
    card = queue_card(page, "Reminders")
    expect(card).to_contain_text("contacts tagged reminders-nov")
    saved = api.get("/api/whatsapp/contacts", params={"tag": "reminders-nov", "limit": 100}).json()["items"]
    assert len(saved) == 100  # a full first page of the 150
    assert saved[0]["name"].startswith("Customer ")
    assert saved[0]["attributes"] == {"city": "Oslo"}
    assert sorted(saved[0]["tags"]) == ["clients", "reminders-nov"]
    card.get_by_role("button", name="Process Reminders").click()
    expect(card.get_by_text("PROCESSING", exact=True)).to_be_visible()

    # WHEN they press Pause
    card.get_by_role("button", name="Pause Reminders").click()

    # THEN the card shows PAUSED and offers Resume instead of Pause
    expect(card.get_by_text("PAUSED", exact=True)).to_be_visible()
    expect(card.get_by_role("button", name="Resume Reminders")).to_be_visible()
    expect(card.get_by_role("button", name="Pause Reminders")).to_have_count(0)

    # WHEN they press Resume
    card.get_by_role("button", name="Resume Reminders").click()

    # THEN it sends again, to every contact of the tag
    expect(card.get_by_text("PROCESSING", exact=True).or_(card.get_by_text("COMPLETED", exact=True))).to_be_visible()
    expect(card.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100", timeout=COMPLETION_TIMEOUT_MS)
    expect(card.get_by_text("Sent 150")).to_be_visible()


def test_a_bad_phone_number_is_reported_next_to_the_numbers_field(page, stack, api):
    # GIVEN an account and the operator creating a queue
    account = add_account(api, "Typos")
    signed_in(page, stack)
    open_queues(page)

    # WHEN the pasted numbers contain one that is not a phone number
    create_queue_in_dialog(page, "Typo queue", account, ["+14155550100", "+1415555", "+14155550101"])

    # THEN the API's validation error is shown under the numbers field, naming the line, and the dialog stays open
    numbers = page.get_by_label("Phone numbers, one per line or separated by commas")
    expect(numbers).to_have_attribute("aria-invalid", "true")
    error_id = numbers.get_attribute("aria-describedby")
    assert error_id
    error = page.locator(f"#{error_id}")
    expect(error).to_contain_text("Line 2 (+1415555)")
    expect(error).to_contain_text("not a valid phone number")
    assert error.evaluate("(node) => node.previousElementSibling.id") == "queue-numbers"
    expect(page.get_by_role("dialog", name="New queue")).to_be_visible()


def test_operator_edits_an_account_and_the_table_shows_the_change(page, stack, api):
    # GIVEN an account
    add_account(api, "Night shift", rate=20)
    signed_in(page, stack)

    # WHEN the operator edits its name and rate limit
    page.get_by_role("button", name="Edit Night shift").click()
    dialog = page.get_by_role("dialog", name="Edit Night shift")
    dialog.get_by_label("Display name").fill("Night line")
    dialog.get_by_label("Messages per second").fill("40")
    dialog.get_by_role("button", name="Save account").click()

    # THEN the table shows the new values
    row = page.get_by_role("row", name="Night line")
    expect(row).to_contain_text("40/s")
    expect(page.get_by_role("row", name="Night shift")).to_have_count(0)


def test_a_key_revoked_while_signed_in_sends_the_operator_back_to_sign_in(page, stack):
    # GIVEN a second key of the demo business, with the operator signed in with it
    admin = {"Authorization": f"Bearer {stack['adminApiKey']}"}
    keys = f"{stack['apiUrl']}/api/admin/businesses/{stack['demoBusinessId']}/keys"
    issued = httpx.post(keys, headers=admin, json={"label": "console test"}, timeout=30).json()
    sign_in(page, stack, key=issued["apiKey"])
    expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()

    # WHEN the key is revoked and the console calls the API again
    assert httpx.delete(f"{keys}/{issued['keyId']}", headers=admin, timeout=30).status_code == 204
    page.get_by_role("button", name="Refresh").click()

    # THEN it is back on sign-in, saying why, and has forgotten the key
    expect(page.locator("#api-key-error")).to_contain_text("no longer accepted (401)")
    expect(page.get_by_role("tab", name="Accounts")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_deleting_the_primary_account_shows_a_readable_message(page, stack, api):
    # GIVEN a business with more than one account (the first one created is its primary)
    add_account(api, "Spare")
    signed_in(page, stack)
    primary_row = page.get_by_role("row").filter(has=page.get_by_text("Primary", exact=True))
    expect(primary_row).to_have_count(1)
    name = primary_row.get_by_role("rowheader").inner_text()

    # WHEN the operator deletes the primary account and confirms
    primary_row.get_by_role("button", name=f"Delete {name}").click()
    page.get_by_role("dialog", name=f"Delete {name}?").get_by_role("button", name="Delete").click()

    # THEN the API's 409 is shown as a sentence, and the account is still there
    message = page.locator("#accounts-message")
    expect(message).to_contain_text(f"{name} was not deleted: The primary account cannot be deleted")
    expect(message).to_contain_text("make another account primary first")
    expect(page.get_by_role("row", name=name)).to_have_count(1)


def test_console_passes_axe_and_is_keyboard_reachable_on_laptop_and_phone(browser, stack, api):
    # GIVEN a draft queue (a card with controls) on an account of its own
    account = add_account(api, "Drafts")
    draft = {
        "name": "Autumn preview",
        "accountId": account["id"],
        "template": {"name": "preview", "language": "en_US"},
        "audience": {"recipients": [{"phoneNumber": unique_number()}]},
    }
    assert api.post("/api/whatsapp/queue", json=draft).status_code == 201

    for viewport in (LAPTOP, PHONE):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        try:
            # WHEN the sign-in page, both tabs and the create dialog are checked at this size
            page.goto(stack["consoleUrl"])
            expect(page.get_by_label("API key")).to_be_visible()
            # THEN axe-core finds no WCAG 2.1 A/AA violation (labels, contrast, names, roles, ...)
            assert axe_violations(page) == "", f"sign-in page at {viewport}"
            signed_in(page, stack)
            expect(page.get_by_role("row", name="Drafts")).to_be_visible()
            assert axe_violations(page) == "", f"accounts tab at {viewport}"
            open_queues(page)
            expect(queue_card(page, "Autumn preview")).to_be_visible()
            assert axe_violations(page) == "", f"queues tab at {viewport}"
            page.get_by_role("button", name="New queue").click()
            expect(page.get_by_role("dialog", name="New queue")).to_be_visible()
            assert axe_violations(page) == "", f"new queue dialog at {viewport}"
            page.keyboard.press("Escape")

            # AND the queues tab's controls, down to a card's buttons, are reached with the Tab key alone
            page.get_by_role("tab", name="Queues").focus()
            reached: set[str] = set()
            for _ in range(80):
                page.keyboard.press("Tab")
                reached.add(page.evaluate("document.activeElement.id || document.activeElement.ariaLabel || ''"))
            for control in ("queues-refresh", "queue-add", "filter-status", "filter-account", "Process Autumn preview"):
                assert control in reached, f"{control} not reachable by keyboard at {viewport}: {sorted(reached)}"
        finally:
            context.close()


def test_the_accessibility_check_reports_a_violation_it_is_shown(page, stack):
    # GIVEN the sign-in page with an input that has no label and grey-on-white text, added on purpose
    page.goto(stack["consoleUrl"])
    expect(page.get_by_label("API key")).to_be_visible()
    page.evaluate(
        """() => {
            const form = document.querySelector('#login-form');
            form.append(Object.assign(document.createElement('input'), {type: 'text'}));
            const faint = Object.assign(document.createElement('p'), {textContent: 'faint text'});
            faint.style.setProperty('color', '#bbbbbb');
            form.append(faint);
        }"""
    )

    # WHEN axe-core checks it
    report = axe_violations(page)

    # THEN both problems are reported: the check above can fail
    assert "label" in report
    assert "color-contrast" in report


def test_screenshots_of_both_tabs_for_the_docs(page, stack):
    # GIVEN the accounts and queues the tests above made
    signed_in(page, stack)
    expect(page.get_by_role("row", name="Campaigns")).to_be_visible()

    # WHEN both tabs are captured at laptop size
    page.screenshot(path=DOCS_DIR / "console-accounts.png", full_page=True)
    open_queues(page)
    expect(queue_card(page, "Spring sale").get_by_text("COMPLETED", exact=True)).to_be_visible()
    page.screenshot(path=DOCS_DIR / "console-queues.png", full_page=True)

    # THEN the README shows them
    readme = (DOCS_DIR.parent / "README.md").read_text()
    assert "docs/console-accounts.png" in readme
    assert "docs/console-queues.png" in readme
