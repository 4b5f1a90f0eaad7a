"""Phone numbers enter the system in one place: parsed, validated and normalized to E.164 by `phonenumbers`."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo


def normalize_phone_number(raw: str) -> str:
    """Return the E.164 form of an international number, or raise ValueError saying why it is not one."""
    # Imported here, not at the top: phonenumbers is loaded only by code paths that parse a number (the API's
    # writes), not by every cold start of every function (docs/performance.md, "Cold imports").
    import phonenumbers

    candidate = raw.strip()
    if not candidate.startswith("+"):
        # Without a country the number is ambiguous; we refuse to guess a region for a multi-tenant sender.
        if candidate.startswith("00"):
            candidate = "+" + candidate[2:]
        else:
            raise ValueError("must be an international number starting with + and the country code (E.164)")
    try:
        parsed = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"is not a phone number ({error._msg})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("is not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Validation context flag for values read back from our own storage: they were normalized on the way in,
# and re-parsing every number of a 1,000-recipient queue on each read costs more than the read itself.
FROM_STORAGE = "from_storage"


def _validate_phone_number(raw: str, info: ValidationInfo) -> str:
    if isinstance(info.context, dict) and info.context.get(FROM_STORAGE):
        return raw
    return normalize_phone_number(raw)


# Use in every pydantic model where a number enters: the stored value is always E.164.
PhoneNumber = Annotated[
    str,
    Field(min_length=3, max_length=32, examples=["+14155552671"], description="Phone number; stored as E.164"),
    AfterValidator(_validate_phone_number),
]
