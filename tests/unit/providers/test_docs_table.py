"""docs/providers.md shows the classification table as it is in code, row for row."""

from __future__ import annotations

import re
from pathlib import Path

from wabacast.domain.jobs import ErrorClass
from wabacast.providers.errors import (
    ERROR_TABLES,
    HTTP_FALLBACK,
    LOCAL_RULES,
    classify,
    render_class_table,
    render_fallback_table,
    render_markdown_table,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "providers.md"
ROW = re.compile(
    r"^\| (?P<provider>meta|twilio|any) \| (?P<code>[^|]+?) \| (?P<meaning>[^|]+?) \| `(?P<cls>[a-z_]+)` \|"
)


def doc_rows() -> list[tuple[str, str, str, ErrorClass]]:
    rows = []
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows.append((match["provider"], match["code"], match["meaning"], ErrorClass(match["cls"])))
    return rows


def table_key(shown: str) -> tuple[str, int | None, int | None]:
    """ "100 (subcode 33)" -> ("100/33", 100, 33); "200-299" -> ("200", 200, 299); "21610" -> ("21610", ...)."""
    subcode = re.fullmatch(r"(\d+) \(subcode (\d+)\)", shown)
    if subcode:
        return f"{subcode[1]}/{subcode[2]}", int(subcode[1]), int(subcode[2])
    span = re.fullmatch(r"(\d+)-(\d+)", shown)
    if span:
        return span[1], int(span[1]), int(span[2])
    return shown, None, None


def test_the_doc_embeds_the_generated_tables_verbatim() -> None:
    # GIVEN docs/providers.md
    text = DOC.read_text()

    # WHEN compared with the tables rendered from code
    # THEN each appears exactly (regenerate with `python -m wabacast.providers.errors`)
    assert render_class_table() in text
    assert render_markdown_table() in text
    assert render_fallback_table() in text


def test_every_code_in_the_doc_matches_the_dicts_and_back() -> None:
    # GIVEN the provider rows of the doc, parsed independently of the renderer
    rows = [row for row in doc_rows() if row[0] != "any"]
    documented: dict[tuple[str, str], ErrorClass] = {}
    for provider, shown, meaning, error_class in rows:
        key, _, _ = table_key(shown)
        assert (provider, key) not in documented, f"{provider} {shown} is listed twice"
        documented[(provider, key)] = error_class
        # THEN the meaning and class of each documented row are the dict's
        rule = ERROR_TABLES[provider][key]
        assert (rule.meaning, rule.error_class) == (meaning, error_class), (provider, shown)

    # AND every dict row is documented
    in_code = {(provider, key): rule.error_class for provider, table in ERROR_TABLES.items()
               for key, rule in table.items()}  # fmt: skip
    assert documented == in_code


def test_classify_agrees_with_every_documented_row() -> None:
    # GIVEN each documented provider row
    for provider, shown, _, error_class in doc_rows():
        if provider == "any":
            continue
        key, first, second = table_key(shown)
        # WHEN classify() is asked with that code (its subcode, or both ends of its range)
        # THEN it answers the documented class, whatever the HTTP status
        if "/" in key:
            assert classify(provider, first, 400, subcode=second) is error_class, shown
        elif second is not None:
            assert classify(provider, first, 403) is error_class, shown
            assert classify(provider, second, 403) is error_class, shown
        else:
            for status in (400, 429, 500):
                assert classify(provider, key, status) is error_class, (provider, shown, status)


def test_the_fallback_and_local_rows_match_the_code() -> None:
    # GIVEN the doc's rows for HTTP fallbacks and wabacast's own codes
    rows = {code: error_class for provider, code, _, error_class in doc_rows() if provider == "any"}

    # WHEN compared with the dicts
    # THEN they are the same, and the documented statuses classify as shown
    expected = {f"HTTP {status}": rule.error_class for status, rule in HTTP_FALLBACK.items()}
    expected.update({code: rule.error_class for code, rule in LOCAL_RULES.items()})
    assert rows == expected
    for status_text, error_class in rows.items():
        status = status_text.removeprefix("HTTP ").replace("xx", "99")
        if status.isdigit():
            assert classify("meta", None, int(status)) is error_class, status_text
