"""What a message costs: the dated price table (one settings file, whatsapp_prices.json) and money in micro-units.

Money is an integer number of micro-units of the table's currency (1 USD = 1,000,000), never a float: totals are
exact sums and DynamoDB ADDs them as plain numbers. Where the defaults come from: docs/pricing.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources

MICROS_PER_UNIT = 1_000_000
# The row for every country the table does not name.
REST_OF_WORLD = "*"
CATEGORIES = ("marketing", "utility", "authentication")
# A category the table does not know (e.g. Meta's "service") is priced as marketing, the dearest: an estimate that
# errs high is noticed, one that errs low is not.
FALLBACK_CATEGORY = "marketing"


def to_micros(amount: str) -> int:
    """ "0.0250" -> 25000. Exact (Decimal), rejecting anything that is not a finite decimal number or that has more
    precision than a micro-unit."""
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not a decimal amount") from None
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not a finite amount")
    micros = value * MICROS_PER_UNIT
    if micros != micros.to_integral_value():
        raise ValueError(f"{amount!r} has more precision than a micro-unit")
    return int(micros)


def format_micros(micros: int) -> str:
    """25000 -> "0.025000": a decimal string with six places, what the API shows."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS_PER_UNIT)
    return f"{sign}{whole}.{fraction:06d}"


def twilio_price_micros(price: str | None) -> int | None:
    """Twilio's `Price` ("-0.0050": what the account was charged, negative) as a positive cost; None when Twilio has
    not priced the message yet (empty or missing) or sent something that is not an amount."""
    if price is None or not price.strip():
        return None
    try:
        return abs(to_micros(price))
    except ValueError:
        return None


def country_of(phone_number: str) -> str | None:
    """The ISO country (e.g. "ES") of an E.164 number: the one its number plan says, else the main country of its
    calling code (+1: US, +44: GB); None when neither is known."""
    # Imported here: phonenumbers is loaded only on the paths that price a message (docs/performance.md).
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if not region and parsed.country_code is not None:
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return region if region and region != "ZZ" else None


@dataclass(frozen=True)
class PriceTable:
    currency: str
    effective: date
    # country (ISO alpha-2, or REST_OF_WORLD) -> category -> micro-units per message
    rates: dict[str, dict[str, int]]

    def price(self, phone_number: str, category: str | None) -> int:
        """Micro-units for one message to `phone_number` in `category`, from its country's row or the rest of the
        world's."""
        row = self.rates.get(country_of(phone_number) or REST_OF_WORLD) or self.rates[REST_OF_WORLD]
        key = (category or FALLBACK_CATEGORY).lower()
        return row.get(key, row[FALLBACK_CATEGORY])

    @classmethod
    def from_json(cls, text: str) -> PriceTable:
        data = json.loads(text)
        rates = {
            country: {category: to_micros(str(amount)) for category, amount in row.items()}
            for country, row in data["rates"].items()
        }
        if REST_OF_WORLD not in rates:
            raise ValueError(f"the price table needs a rest-of-world row ({REST_OF_WORLD!r})")
        for country, row in rates.items():
            missing = [category for category in CATEGORIES if category not in row]
            if missing:
                raise ValueError(f"price table row {country}: no price for {', '.join(missing)}")
        return cls(currency=str(data["currency"]), effective=date.fromisoformat(data["effective"]), rates=rates)


@cache
def default_price_table() -> PriceTable:
    """The table shipped with the code (read once per process, on first use)."""
    text = resources.files(__package__).joinpath("whatsapp_prices.json").read_text(encoding="utf-8")
    return PriceTable.from_json(text)
