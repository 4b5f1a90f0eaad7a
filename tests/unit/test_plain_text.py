"""Free text refuses control and invisible formatting characters, and keeps every ordinary character."""

from __future__ import annotations

import re

import pytest

from wabacast.text import check_plain_text, find_control_character


@pytest.mark.parametrize(
    ("text", "position", "description"),
    [
        ("a\x00b", 1, "control character U+0000"),
        ("tab\there", 3, "control character U+0009"),
        ("x\x7f", 1, "control character U+007F"),
        ("x\x85", 1, "control character U+0085"),
        ("abc\u202egnp", 3, "bidirectional override U+202E"),
        ("\u2066isolated", 0, "bidirectional isolate U+2066"),
        ("zero\u200bwidth", 4, "zero-width space U+200B"),
        ("\ufeffbom", 0, "zero-width no-break space U+FEFF"),
        ("soft\u00adhyphen", 4, "control character U+00AD"),
        ("line\u2028break", 4, "line separator U+2028"),
    ],
)
def test_a_refused_character_is_found_and_named(text: str, position: int, description: str) -> None:
    # GIVEN / WHEN text with one refused character is checked
    found = find_control_character(text)

    # THEN its position and a description come back, and the validator raises naming both
    assert found == (position, description)
    with pytest.raises(ValueError, match=re.escape(f"{description} at {position}")):
        check_plain_text(text)


@pytest.mark.parametrize("text", ["Spring sale", "Soldes d'été", "夏のセール", "Распродажа", "مرحبا", "🎉 50% off", ""])
def test_ordinary_text_in_any_script_passes_unchanged(text: str) -> None:
    # GIVEN / WHEN / THEN text without control characters is returned as it is
    assert check_plain_text(text) == text
