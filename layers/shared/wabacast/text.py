"""Free text (names, labels, reasons, template variable values) is printable text: no control characters.

NUL and the other C0/C1 controls break logs and downstream systems; bidirectional overrides and zero-width
characters make a name display as something other than what it is (a queue "invoice" that reads as another, a
sender name spoofing another business). Template parameters with tabs or new lines are also refused by WhatsApp.
Such text is refused, not silently changed, so what is stored is what the client sent.
"""

from __future__ import annotations

import unicodedata

# Invisible characters that change how the text around them displays (format characters, category Cf, are
# checked too; these are named for the error message).
_NAMED = {
    "\u200b": "zero-width space",
    "\u200c": "zero-width non-joiner",
    "\u200d": "zero-width joiner",
    "\u2060": "word joiner",
    "\ufeff": "zero-width no-break space",
    "\u200e": "left-to-right mark",
    "\u200f": "right-to-left mark",
    "\u061c": "Arabic letter mark",
    "\u202a": "bidirectional embedding",
    "\u202b": "bidirectional embedding",
    "\u202c": "bidirectional formatting",
    "\u202d": "bidirectional override",
    "\u202e": "bidirectional override",
    "\u2066": "bidirectional isolate",
    "\u2067": "bidirectional isolate",
    "\u2068": "bidirectional isolate",
    "\u2069": "bidirectional isolate",
    "\u2028": "line separator",
    "\u2029": "paragraph separator",
}
# Unicode categories refused: controls (Cc: NUL, tab, new line, DEL, C1), format characters (Cf), surrogates
# (Cs) and unassigned code points (Cn).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn"})


def find_control_character(value: str) -> tuple[int, str] | None:
    """The position and a description of the first refused character of `value`, or None."""
    for position, character in enumerate(value):
        if character in _NAMED or unicodedata.category(character) in _REFUSED_CATEGORIES:
            description = _NAMED.get(character, "control character")
            return position, f"{description} U+{ord(character):04X}"
    return None


def check_plain_text(value: str) -> str:
    """Pydantic validator: return `value`, or raise ValueError naming the refused character and where it is."""
    found = find_control_character(value)
    if found is not None:
        position, description = found
        raise ValueError(f"must not contain control or invisible formatting characters ({description} at {position})")
    return value
