"""The price table, money in micro-units, Twilio's Price, and a job's cost recorded once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from wabacast.domain.jobs import Counter, DeliveryState, Job, JobStatus
from wabacast.domain.receipts import Receipt, ReceiptPricing, ReceiptStatus, apply_receipt
from wabacast.pricing import (
    REST_OF_WORLD,
    PriceTable,
    country_of,
    default_price_table,
    format_micros,
    to_micros,
    twilio_price_micros,
)
from wabacast.providers.webhooks import TwilioCallback, twilio_receipt

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
TABLE = PriceTable.from_json(
    """{"currency": "USD", "effective": "2025-07-01", "rates": {
        "ES": {"marketing": "0.0615", "utility": "0.02", "authentication": "0.034"},
        "*": {"marketing": "0.06", "utility": "0.007", "authentication": "0.017"}}}"""
)


def test_amounts_convert_to_exact_micro_units_and_back() -> None:
    # GIVEN decimal amounts as a rate card prints them
    # WHEN converted
    # THEN they are exact integers, formatted back with six places
    assert to_micros("0.0250") == 25_000
    assert to_micros("1") == 1_000_000
    assert to_micros("-0.0050") == -5_000
    assert sum(to_micros("0.1") for _ in range(10)) == 1_000_000  # no float drift
    assert format_micros(25_000) == "0.025000"
    assert format_micros(1_234_567) == "1.234567"


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity", "0.0000001"])
def test_amounts_that_are_not_micro_exact_decimals_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"amount|precision"):
        to_micros(bad)


@pytest.mark.parametrize(
    ("price", "expected"), [("-0.0050", 5_000), ("-0.03", 30_000), ("0.0050", 5_000), ("", None), (None, None)]
)
def test_twilio_price_is_a_positive_cost_or_nothing(price: str | None, expected: int | None) -> None:
    assert twilio_price_micros(price) == expected


@pytest.mark.parametrize(
    ("number", "country"),
    [("+34600000001", "ES"), ("+14155552671", "US"), ("+5215512345678", "MX"), ("+447700900123", "GB")],
)
def test_the_country_comes_from_the_calling_code(number: str, country: str) -> None:
    assert country_of(number) == country


def test_lookup_by_country_and_category_with_rest_of_world_fallback() -> None:
    # GIVEN a table with a row for Spain and a rest-of-world row
    # WHEN priced
    # THEN Spain uses its row per category, a country without a row the rest of the world's
    assert TABLE.price("+34600000001", "marketing") == 61_500
    assert TABLE.price("+34600000001", "utility") == 20_000
    assert TABLE.price("+34600000001", "AUTHENTICATION") == 34_000
    assert TABLE.price("+33612345678", "utility") == 7_000
    # an unknown category is priced as marketing (the dearest: an estimate that errs high is noticed)
    assert TABLE.price("+34600000001", "service") == 61_500
    assert TABLE.price("+34600000001", None) == 61_500


def test_a_table_without_rest_of_world_or_with_a_missing_category_is_refused() -> None:
    with pytest.raises(ValueError, match="rest-of-world"):
        PriceTable.from_json('{"currency": "USD", "effective": "2025-07-01", "rates": {}}')
    with pytest.raises(ValueError, match="utility"):
        PriceTable.from_json(
            '{"currency": "USD", "effective": "2025-07-01", "rates": {"*": {"marketing": "1", "authentication": "1"}}}'
        )


def test_the_shipped_table_is_dated_in_usd_with_the_countries_it_names() -> None:
    table = default_price_table()
    assert table.currency == "USD"
    assert table.effective.isoformat() == "2025-07-01"
    assert {"US", "MX", "BR", "CO", "ES", "IN", "GB", "EC", "AR", REST_OF_WORLD} <= set(table.rates)


def sent_job(**changes: object) -> Job:
    base = Job(
        id="job_1",
        queue_id="q_1",
        business_id="biz_1",
        phone_number="+34600000001",
        variables={},
        seq=1,
        status=JobStatus.SENT,
        attempts=1,
        account_id="acc_1",
        provider_message_id="wamid.1",
        created_at=T0,
        updated_at=T0,
    )
    return base.model_copy(update=changes)


def priced(status: ReceiptStatus, pricing: ReceiptPricing | None, minutes: int = 1) -> Receipt:
    return Receipt(status=status, provider_message_id="wamid.1", at=T0 + timedelta(minutes=minutes), pricing=pricing)


MARKETING = ReceiptPricing(category="marketing")


@pytest.mark.parametrize(
    "order",
    list(
        itertools.permutations(
            [ReceiptStatus.SENT, ReceiptStatus.DELIVERED, ReceiptStatus.READ, ReceiptStatus.DELIVERED]
        )
    ),
)
def test_a_job_is_priced_once_whatever_the_order_and_duplicates(order: tuple[ReceiptStatus, ...]) -> None:
    # GIVEN a sent job and Meta's statuses, each carrying pricing (as sent and delivered do), in any order, one twice
    current, cost_total = sent_job(), 0
    # WHEN each is applied to the job as it stands
    for index, status in enumerate(order):
        move = apply_receipt(current, priced(status, MARKETING, index), now=T0 + timedelta(seconds=index), prices=TABLE)
        if move is not None:
            current = move.job
            cost_total += move.counter_deltas.get(Counter.COST, 0)
    # THEN the cost is recorded once, from the table for Spain and marketing
    assert current.cost_micros == 61_500
    assert cost_total == 61_500


def test_a_priced_sent_receipt_for_a_sent_job_waits_for_the_delivery() -> None:
    # GIVEN a job the sender recorded SENT
    # WHEN Meta's "sent" status carries pricing
    move = apply_receipt(sent_job(), priced(ReceiptStatus.SENT, MARKETING), now=T0, prices=TABLE)
    # THEN it writes nothing: the delivery records the cost in the write it makes anyway
    assert move is None
    delivered = apply_receipt(sent_job(), priced(ReceiptStatus.DELIVERED, MARKETING), now=T0, prices=TABLE)
    assert delivered is not None
    assert delivered.counter_deltas == {Counter.DELIVERED: 1, Counter.COST: 61_500}


def test_a_priced_status_after_an_unpriced_delivery_records_the_cost_alone() -> None:
    # GIVEN a job already read (Meta's read statuses carry no pricing), its delivered status late
    read = sent_job(delivery=DeliveryState.READ)
    # WHEN the priced delivered status arrives
    move = apply_receipt(read, priced(ReceiptStatus.DELIVERED, MARKETING), now=T0, prices=TABLE)
    # THEN it records the cost, and nothing else moves
    assert move is not None
    assert move.job.cost_micros == 61_500
    assert move.counter_deltas == {Counter.COST: 61_500}


def test_not_billable_records_zero_once_and_counts_nothing() -> None:
    not_billable = priced(ReceiptStatus.DELIVERED, ReceiptPricing(billable=False))
    move = apply_receipt(sent_job(), not_billable, now=T0, prices=TABLE)
    assert move is not None
    assert move.job.cost_micros == 0
    assert Counter.COST not in move.counter_deltas
    # a later billable-looking status does not price it again
    again = apply_receipt(move.job, priced(ReceiptStatus.READ, MARKETING), now=T0, prices=TABLE)
    assert again is not None
    assert again.job.cost_micros == 0
    assert Counter.COST not in again.counter_deltas


def test_the_providers_own_amount_wins_over_the_table_and_category_falls_back_to_the_queues() -> None:
    own = apply_receipt(
        sent_job(), priced(ReceiptStatus.DELIVERED, ReceiptPricing(amount_micros=5_000)), now=T0, prices=TABLE
    )
    assert own is not None
    assert own.job.cost_micros == 5_000
    from_queue = apply_receipt(
        sent_job(), priced(ReceiptStatus.DELIVERED, ReceiptPricing()), now=T0, prices=TABLE, category="utility"
    )
    assert from_queue is not None
    assert from_queue.job.cost_micros == 20_000


def test_a_failure_is_never_priced() -> None:
    # GIVEN a Twilio "failed" callback that carries a Price
    callback = TwilioCallback.model_validate(
        {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "63016", "Price": "-0.0050"}
    )
    # WHEN parsed
    receipt = twilio_receipt(callback, T0)
    # THEN it carries no pricing
    assert receipt is not None
    assert receipt.pricing is None


def test_twilio_price_in_the_tables_currency_is_used_else_delivery_is_priced_from_the_table() -> None:
    with_price = twilio_receipt(
        TwilioCallback.model_validate(
            {"MessageSid": "SM1", "MessageStatus": "sent", "Price": "-0.0050", "PriceUnit": "USD"}
        ),
        T0,
    )
    assert with_price is not None
    assert with_price.pricing == ReceiptPricing(amount_micros=5_000)
    other_currency = twilio_receipt(
        TwilioCallback.model_validate(
            {"MessageSid": "SM1", "MessageStatus": "sent", "Price": "-0.0050", "PriceUnit": "EUR"}
        ),
        T0,
    )
    assert other_currency is not None
    assert other_currency.pricing is None
    delivered = twilio_receipt(TwilioCallback.model_validate({"MessageSid": "SM1", "MessageStatus": "delivered"}), T0)
    assert delivered is not None
    assert delivered.pricing == ReceiptPricing()
