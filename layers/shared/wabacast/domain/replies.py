"""Opt-out and opt-in keywords in replies: a reply whose whole text is a stop keyword opts its sender out of the
business, one that is a start keyword opts it back in. "stop please" is a conversation, not a keyword.

Matching ignores case, accents and spaces: "  Baja ", "bája" and "B A J A" all read as BAJA. A business may set
its own lists (Business.stop_keywords / start_keywords); an unset list means the defaults below.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from wabacast.text import check_plain_text

DEFAULT_STOP_KEYWORDS: tuple[str, ...] = (
    # English
    "STOP",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "STOPALL",
    "OPTOUT",
    "REVOKE",
    # Spanish
    "BAJA",
    "PARAR",
    "DETENER",
    "CANCELAR",
    "ALTO",
)
DEFAULT_START_KEYWORDS: tuple[str, ...] = ("START", "ALTA", "SUSCRIBIR")

MAX_KEYWORDS = 20
MAX_KEYWORD_LENGTH = 30


class ReplyAction(StrEnum):
    """What a reply's keyword did to its sender."""

    OPTED_OUT = "optedOut"
    OPTED_IN = "optedIn"


def normalize_keyword(text: str) -> str:
    """Upper case, no accents (NFKD, combining marks dropped), no whitespace anywhere."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(
        character for character in decomposed if not unicodedata.combining(character) and not character.isspace()
    ).upper()


def could_be_keyword(text: str) -> bool:
    """Whether `text` is short enough to be any business's keyword (keywords are at most MAX_KEYWORD_LENGTH
    characters once normalized): a longer reply is conversation, and needs no look at the keywords."""
    return 0 < len(normalize_keyword(text)) <= MAX_KEYWORD_LENGTH


def _check_keyword(value: str) -> str:
    check_plain_text(value)
    normalized = normalize_keyword(value)
    if not normalized:
        raise ValueError("must contain a visible character")
    if len(normalized) > MAX_KEYWORD_LENGTH:
        # NFKD can lengthen a character (a ligature); replies are compared in this form
        raise ValueError(f"must be at most {MAX_KEYWORD_LENGTH} characters once normalized")
    return value


def _check_keywords(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        normalized = normalize_keyword(value)
        if normalized in seen:
            raise ValueError(f"'{value}' repeats another keyword once case, accents and spaces are ignored")
        seen.add(normalized)
    return values


Keyword = Annotated[str, Field(min_length=1, max_length=MAX_KEYWORD_LENGTH), AfterValidator(_check_keyword)]
Keywords = Annotated[list[Keyword], Field(min_length=1, max_length=MAX_KEYWORDS), AfterValidator(_check_keywords)]


class ReplyKeywords:
    """The normalized stop and start keywords of one business."""

    def __init__(self, stop: Iterable[str] | None, start: Iterable[str] | None) -> None:
        self._stop = frozenset(normalize_keyword(word) for word in (stop or DEFAULT_STOP_KEYWORDS))
        self._start = frozenset(normalize_keyword(word) for word in (start or DEFAULT_START_KEYWORDS))

    def action(self, text: str) -> ReplyAction | None:
        """The keyword's effect when the whole `text` is one; stop wins if a business lists a word in both."""
        word = normalize_keyword(text)
        if word in self._stop:
            return ReplyAction.OPTED_OUT
        if word in self._start:
            return ReplyAction.OPTED_IN
        return None
